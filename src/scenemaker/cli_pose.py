"""``scenemaker train pose``, ``train pose-pack`` / ``pose-unpack`` (a bare GPU machine),
``train ship-pose`` and ``eval pose``. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _cli_error(message: str):
    from .cli import CliError

    return CliError(message)


def add_train_pose(sub) -> None:
    p = sub.add_parser("pose", help="train the pose diffusion transformer (resumable)")
    p.add_argument("--data", nargs="+", required=True, type=Path, help="training scene folders")
    p.add_argument("--val", nargs="*", default=[], type=Path, help="validation scene folders")
    p.add_argument("--out", type=Path, default=Path("out/pose"), help="run folder")
    p.add_argument("--preset", default="cpu", help="tiny | cpu | paper")
    p.add_argument("--attention", default=None, choices=["full", "global_local", "global"])
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--mixed-precision", default=None, choices=["no", "bf16"])
    p.add_argument(
        "--views-per-scene",
        type=int,
        default=None,
        help="views of each scene used for training (default all)",
    )
    p.add_argument("--depth-noise", type=int, default=0, choices=[0, 1, 2],
                   help="prepare the observed points from depth degraded as estimators give it "
                   "(augmentation; levels as in `eval pose --depth-noise`)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_pose)
    pack = sub.add_parser(
        "pose-pack",
        help="a folder (<= 64 MiB) to train the pose model on a bare GPU machine: "
        "prepared data, the package, wheels, train.py",
    )
    pack.add_argument("--data", nargs="+", required=True, type=Path, help="training scenes")
    pack.add_argument("--out", type=Path, required=True, help="the pack folder (new)")
    pack.add_argument("--preset", default="cpu", help="tiny | cpu | paper")
    pack.add_argument("--views-per-scene", type=int, default=None)
    pack.add_argument("--depth-noise", type=int, default=0, choices=[0, 1, 2])
    pack.add_argument("--max-steps", type=int, default=None)
    pack.add_argument("--max-minutes", type=float, default=None)
    pack.add_argument("--batch-size", type=int, default=None)
    pack.add_argument("--seed", type=int, default=0)
    pack.set_defaults(func=cmd_pose_pack)
    unpack = sub.add_parser(
        "pose-unpack",
        help="a GPU run's results (python PACK/train.py --out RESULTS) -> a run folder for "
        "ship-pose, validated against the shipped weights",
    )
    unpack.add_argument("results", type=Path)
    unpack.add_argument("--out", type=Path, required=True, help="run folder")
    unpack.add_argument("--val", nargs="*", default=[], type=Path, help="validation scenes")
    unpack.set_defaults(func=cmd_pose_unpack)
    ship = sub.add_parser("ship-pose", help="copy a run's best weights into the package (fp16)")
    ship.add_argument("run", type=Path)
    ship.add_argument(
        "--out", type=Path, default=None, help="destination (default: the package's pose/weights)"
    )
    ship.add_argument("--checkpoint", default="best", choices=["best", "checkpoint"])
    ship.add_argument(
        "--force", action="store_true", help="replace shipped weights even if they validate better"
    )
    ship.set_defaults(func=cmd_ship_pose)


def cmd_pose_pack(args) -> int:
    from .pose.train_gpu import pack_pose_training

    overrides = {"max_steps": args.max_steps, "max_minutes": args.max_minutes,
                 "batch_size": args.batch_size}  # fmt: skip
    for root in args.data:
        if not root.is_dir():
            raise _cli_error(f"--data {root}: not a folder of generated scenes")
    record = pack_pose_training(args.data, args.out, args.preset, args.views_per_scene,
                                args.depth_noise, args.seed, overrides)  # fmt: skip
    print(f"wrote {args.out} ({record['size_mib']} MiB, {record['data']['views']} views); "
          f"there: python {args.out.name}/train.py --out RESULTS")  # fmt: skip
    return 0


def cmd_pose_unpack(args) -> int:
    from .pose.train_gpu import unpack_pose_results

    report = unpack_pose_results(args.results, args.out, args.val)
    print(json.dumps(report, indent=1))
    if report["new"] and report["shipped"]:
        better = report["new"]["val_add_s"] < report["shipped"]["val_add_s"]
        print(
            f"validation ADD-S: new {report['new']['val_add_s']:.4f}, shipped "
            f"{report['shipped']['val_add_s']:.4f}: "
            + ("ship it: scenemaker train ship-pose " + str(args.out) if better
               else "keep the shipped weights")
        )  # fmt: skip
    return 0


def _check_prepared(path: Path, roots: list[Path], views_per_scene, depth_noise=0) -> None:
    """A cached prepared file must come from the same scene folders, views and depth noise."""
    if not path.is_file():
        return
    import numpy as np

    with np.load(path) as data:
        meta = json.loads(data["meta"].tobytes())
    same = (
        meta.get("roots") == [str(r) for r in roots]
        and meta.get("views_per_scene") == views_per_scene
        and meta.get("depth_noise", 0) == depth_noise
    )
    if not same:
        raise _cli_error(
            f"{path}: prepared from other data ({meta.get('roots')}, views per scene "
            f"{meta.get('views_per_scene')}); use a new --out"
        )


def cmd_train_pose(args) -> int:
    from dataclasses import replace

    from .pose.config import preset
    from .pose.data import prepare_pose_data
    from .pose.train import train_pose

    config = preset(args.preset, seed=args.seed)
    overrides = {
        "max_steps": args.max_steps,
        "max_minutes": args.max_minutes,
        "batch_size": args.batch_size,
        "mixed_precision": args.mixed_precision,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.attention:
        config = replace(config, model=replace(config.model, attention=args.attention))
    config.validate()  # before any data is prepared or written
    if args.out.exists() and not args.out.is_dir():
        raise _cli_error(f"{args.out}: output path is a file, expected a folder")
    prepared = args.out / "prepared"
    train_npz, val_npz = prepared / "train.npz", prepared / "val.npz"
    wanted = [train_npz] + ([val_npz] if args.val else [])
    if int(os.environ.get("RANK", "0")) == 0:  # prepared once (by one process), reused on resume
        _check_prepared(train_npz, args.data, args.views_per_scene, args.depth_noise)
        if args.val:
            _check_prepared(val_npz, args.val, args.views_per_scene)
        if not train_npz.is_file():
            print(prepare_pose_data(args.data, train_npz, args.views_per_scene, seed=args.seed,
                                    depth_noise=args.depth_noise))  # fmt: skip
        if args.val and not val_npz.is_file():
            print(prepare_pose_data(args.val, val_npz, args.views_per_scene, seed=args.seed))
    else:
        import time

        while not all(p.is_file() for p in wanted):  # other ranks wait for rank 0
            time.sleep(1.0)
    last = train_pose(train_npz, args.out, config, val_npz if args.val else None)
    print(json.dumps(last, indent=1))
    return 0


def cmd_ship_pose(args) -> int:
    from .pose.estimator import DEFAULT_WEIGHTS
    from .pose.train import ship_weights

    info = ship_weights(args.run, args.out or DEFAULT_WEIGHTS, args.checkpoint, args.force)
    print(json.dumps(info["validation"], indent=1))
    return 0


def cmd_eval_pose(args) -> int:
    from .eval.pose_benchmark import (
        build_methods,
        evaluate_scenes,
        format_table,
        generator_like,
        make_perturbation,
        summarize,
    )
    from .io_utils import atomic_write_json

    if args.out.exists() and not args.out.is_dir():
        raise _cli_error(f"{args.out}: output path is a file, expected a folder")
    if args.max_scenes is not None and args.max_scenes < 1:
        raise _cli_error(f"--max-scenes {args.max_scenes}: expected an integer >= 1")
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        raise _cli_error(f"--methods {args.methods!r}: expected a comma-separated list of methods")
    methods = build_methods(
        names,
        args.weights,
        args.steps,
        guidance=args.guidance,
        generator=generator_like(args.perturb),
    )
    records = evaluate_scenes(
        args.data, methods, max_scenes=args.max_scenes, perturb=make_perturbation(args.perturb),
        depth_noise=args.depth_noise,
    )  # fmt: skip
    summary = summarize(records)
    atomic_write_json(args.out / "metrics.json", summary)
    print(format_table(summary))
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


def add_eval_pose(evaluate) -> None:
    ev = evaluate.add_parser("pose", help="pose estimators on held-out scenes")
    ev.add_argument("--data", nargs="+", required=True, type=Path, help="test scene folders")
    ev.add_argument(
        "--methods",
        default="default,dit,box_fit,oracle",
        help="comma-separated: default (the chain `scenemaker run` uses: DiT samples + "
        "render-and-compare), dit, dit_icp, dit_fit, dit_box_fit, box_fit, box_fit_fit, "
        "registration, oracle",
    )
    ev.add_argument("--weights", type=Path, default=None, help="PoseDiT folder (default: shipped)")
    ev.add_argument(
        "--steps",
        type=int,
        default=None,
        help="sampling steps of the DiT (default: chosen when the weights shipped)",
    )
    ev.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance (default: chosen when the weights shipped)",
    )
    ev.add_argument("--max-scenes", type=int, default=None)
    ev.add_argument(
        "--perturb",
        default="none",
        choices=["none", "level1", "level2", "instance", "dense"],
        help="replace ground-truth meshes by perturbed ones (image-to-3D errors; dense: the "
        "same shapes split into 20,000+ faces, as scanned meshes are)",
    )
    ev.add_argument(
        "--depth-noise",
        type=int,
        default=0,
        choices=[0, 1, 2],
        help="degrade the observed depth as estimators do: 1 = +-5%% scale, 0.002 z^2 m noise, "
        "2%% holes on edges; 2 = +-15%%, 0.005 z^2, 6%%",
    )
    ev.add_argument("--out", type=Path, required=True, help="writes OUT/metrics.json")
    ev.set_defaults(func=cmd_eval_pose)
