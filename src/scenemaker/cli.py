"""The ``scenemaker`` command. Heavy imports live inside the subcommands so --help is instant."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class CliError(Exception):
    """An error to print as one line, without a traceback."""


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate synthetic open-set scenes (resumable)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--scenes", type=int, default=10, help="number of scenes (default 10)")
    p.add_argument("--views", type=int, default=20, help="views per scene (default 20)")
    p.add_argument(
        "--objects",
        default="procedural",
        help="procedural | pybullet | objaverse | objaverse:DIR | a folder of meshes",
    )
    p.add_argument(
        "--split",
        default="train",
        choices=["train", "val", "test", "all"],
        help="object split to draw from (disjoint by object)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--resolution", type=int, default=256, help="square image size in pixels")
    p.add_argument("--min-objects", type=int, default=2)
    p.add_argument("--max-objects", type=int, default=5)
    p.add_argument(
        "--arena",
        type=float,
        default=None,
        help="radius (m) that all objects must fit in; default unbounded",
    )
    p.add_argument(
        "--any-face",
        type=float,
        default=0.0,
        help="probability that an object rests on another face of its box (on its side, upside "
        "down) instead of upright (default 0)",
    )
    p.add_argument(
        "--stack",
        type=float,
        default=0.0,
        help="probability that an object is put on top of another one (default 0)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(
        func=cmd_generate,
        interrupt_hint="; finished scenes are kept, rerun the same command to resume",
    )


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="statistics and a contact sheet of a dataset")
    p.add_argument("dataset", type=Path)
    p.add_argument(
        "--sheet",
        type=Path,
        default=None,
        help="contact sheet PNG (default DATASET/contact_sheet.png)",
    )
    p.add_argument("--tiles", type=int, default=24)
    p.set_defaults(func=cmd_inspect)


def _add_train_pose(sub) -> None:
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


def cmd_pose_pack(args) -> int:
    from .pose.gpu_pack import pack_pose_training

    overrides = {"max_steps": args.max_steps, "max_minutes": args.max_minutes,
                 "batch_size": args.batch_size}  # fmt: skip
    for root in args.data:
        if not root.is_dir():
            raise CliError(f"--data {root}: not a folder of generated scenes")
    record = pack_pose_training(args.data, args.out, args.preset, args.views_per_scene,
                                args.depth_noise, args.seed, overrides)  # fmt: skip
    print(f"wrote {args.out} ({record['size_mib']} MiB, {record['data']['views']} views); "
          f"there: python {args.out.name}/train.py --out RESULTS")  # fmt: skip
    return 0


def cmd_pose_unpack(args) -> int:
    from .pose.gpu_pack import unpack_pose_results

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
        raise CliError(
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
        raise CliError(f"{args.out}: output path is a file, expected a folder")
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
        make_perturbation,
        summarize,
    )
    from .io_utils import atomic_write_json

    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"{args.out}: output path is a file, expected a folder")
    if args.max_scenes is not None and args.max_scenes < 1:
        raise CliError(f"--max-scenes {args.max_scenes}: expected an integer >= 1")
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        raise CliError(f"--methods {args.methods!r}: expected a comma-separated list of methods")
    methods = build_methods(
        names,
        args.weights,
        args.steps,
        guidance=args.guidance,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenemaker", description="SceneMaker: open-set 3D scenes from one image."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    data = sub.add_parser("data", help="synthetic datasets").add_subparsers(dest="data_command")
    _add_generate(data)
    _add_inspect(data)
    from .cli_deocclusion import add_data, add_eval, add_train

    add_data(data)
    train = sub.add_parser("train", help="train models").add_subparsers(dest="train_command")
    _add_train_pose(train)
    add_train(train)
    ship = train.add_parser("ship-pose", help="copy a run's best weights into the package (fp16)")
    ship.add_argument("run", type=Path)
    ship.add_argument(
        "--out", type=Path, default=None, help="destination (default: the package's pose/weights)"
    )
    ship.add_argument("--checkpoint", default="best", choices=["best", "checkpoint"])
    ship.add_argument(
        "--force", action="store_true", help="replace shipped weights even if they validate better"
    )
    ship.set_defaults(func=cmd_ship_pose)
    evaluate = sub.add_parser("eval", help="benchmarks").add_subparsers(dest="eval_command")
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
        choices=["none", "level1", "level2", "instance"],
        help="replace ground-truth meshes by perturbed ones (image-to-3D errors)",
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
    add_eval(evaluate)
    from .cli_pipeline import add_app, add_doctor, add_run, add_view

    add_run(sub)
    add_doctor(sub)
    add_view(sub)
    add_app(sub)
    demo = sub.add_parser(
        "demo",
        help="the main job on the embedded defaults: synthetic photo + depth + masks of unseen "
        "objects -> pipeline -> scene, compared with the ground truth",
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--scenes", type=int, default=3)
    demo.add_argument("--resolution", type=int, default=384)
    demo.add_argument("--generator", default="retrieval", help="retrieval | lift | oracle")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    export = sub.add_parser("export", help="export a scene.json to GLB and / or a .blend")
    export.add_argument("scene_json", type=Path)
    export.add_argument("--out", type=Path, default=None, help="output .glb")
    export.add_argument("--blend", type=Path, default=None,
                        help="output .blend whose camera and render settings reproduce the "
                        "photo's (needs `scenemaker blender setup`)")  # fmt: skip
    export.add_argument("--camera", type=int, default=0, help="camera index to include")
    export.set_defaults(func=cmd_export)
    blender = sub.add_parser("blender", help="Blender (bpy) in its own environment")
    blender_sub = blender.add_subparsers(dest="blender_command")
    setup = blender_sub.add_parser("setup", help="make .venv/blender (bpy 5.0.1, numpy<2)")
    setup.add_argument("--env", type=Path, default=None, help="default: .venv/blender")
    setup.add_argument("--quiet", action="store_true")
    setup.set_defaults(func=cmd_blender_setup)
    return parser


def _check_resolution(value: int) -> int:
    """``--resolution``: checked here so that no renderer is asked for a huge framebuffer."""
    from .synth.cameras import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE

    if not MIN_IMAGE_SIDE <= value <= MAX_IMAGE_SIDE:
        raise CliError(
            f"--resolution {value}: expected {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} pixels"
            " (the side of the square rendered images)"
        )
    return value


def _check_generate(args) -> None:
    """``data generate`` options, each named in one line before any work."""
    import math

    _check_resolution(args.resolution)
    for option, value in (("--scenes", args.scenes), ("--views", args.views),
                          ("--workers", args.workers), ("--min-objects", args.min_objects)):  # fmt: skip
        if value < 1:
            raise CliError(f"{option} {value}: expected an integer >= 1")
    if args.max_objects < args.min_objects:
        raise CliError(
            f"--max-objects {args.max_objects}: expected >= --min-objects {args.min_objects}"
        )
    for option, value in (("--any-face", args.any_face), ("--stack", args.stack)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise CliError(f"{option} {value}: expected a probability in [0, 1]")
    if args.arena is not None and not (math.isfinite(args.arena) and args.arena > 0):
        raise CliError(f"--arena {args.arena}: expected a radius in metres > 0")


def cmd_generate(args) -> int:
    from .synth.cameras import ViewConfig
    from .synth.generate import GenerateConfig, generate_dataset
    from .synth.layout import LayoutConfig

    _check_generate(args)
    config = GenerateConfig(
        objects=args.objects,
        split=args.split,
        seed=args.seed,
        layout=LayoutConfig(
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            arena_radius=args.arena,
            any_face=args.any_face,
            stack=args.stack,
        ),
        views=ViewConfig(views=args.views, width=args.resolution, height=args.resolution),
    )
    result = generate_dataset(
        args.out, args.scenes, config, workers=args.workers, progress=not args.quiet
    )
    run = result["run"]
    print(
        f"{len(result['scenes'])} scenes in {args.out} ({run['scenes_written']} written, "
        f"{run['scenes_kept']} already there) in {run['seconds']} s"
        + (f", {run['views_per_second']} views/s" if run["views_per_second"] else "")
    )
    if result["skipped_meshes"]:
        print(f"skipped {len(result['skipped_meshes'])} unreadable or degenerate meshes:")
        for name, why in sorted(result["skipped_meshes"].items()):
            print(f"  {name}: {why}")
    return 0


def cmd_inspect(args) -> int:
    from .synth.inspect import contact_sheet, dataset_statistics, load_scene_payloads

    if args.tiles < 1:
        raise CliError(f"--tiles must be >= 1, got {args.tiles}")
    scenes = load_scene_payloads(args.dataset)
    stats = dataset_statistics(scenes)
    sheet = contact_sheet(scenes, args.sheet or args.dataset / "contact_sheet.png", args.tiles)
    _print_stats(stats)
    print(f"contact sheet: {sheet}")
    return 0


def _print_stats(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{stats['scenes']} scenes, {stats['views']} views[/bold]")
    table = Table(title="objects per scene")
    table.add_column("objects")
    table.add_column("scenes", justify="right")
    for k, v in stats["objects_per_scene"].items():
        table.add_row(str(k), str(v))
    console.print(table)
    table = Table(title="occlusion (1 - visible / amodal pixels), object-views")
    table.add_column("bin")
    table.add_column("count", justify="right")
    table.add_column("", justify="left")
    total = max(1, sum(stats["occlusion_histogram"].values()))
    for k, v in stats["occlusion_histogram"].items():
        table.add_row(k, str(v), "#" * round(40 * v / total))
    console.print(table)
    console.print(
        f"mean occlusion {stats['mean_occlusion']:.3f}; object-views occluded over half: "
        f"{100 * stats['share_occluded_over_half']:.1f}%; views with an object occluded over "
        f"half: {100 * stats['share_views_with_object_occluded_over_half']:.1f}%; truncated: "
        f"{100 * stats['share_truncated']:.1f}%"
    )
    cats = ", ".join(f"{k} {v}" for k, v in stats["categories"].items())
    console.print(f"categories ({len(stats['categories'])}): {cats}")


def cmd_demo(args) -> int:
    from .demo import run_demo

    _check_resolution(args.resolution)
    run_demo(args.out, scenes=args.scenes, resolution=args.resolution,
             generator=args.generator, seed=args.seed)  # fmt: skip
    return 0


def cmd_export(args) -> int:
    import tempfile

    from .scene import Scene

    if args.out is None and args.blend is None:
        raise CliError("export: give --out X.glb and / or --blend X.blend")
    if args.blend is not None and args.blend.suffix.lower() != ".blend":
        raise CliError(f"--blend {args.blend}: expected a .blend path")
    scene = Scene.load_json(args.scene_json)
    if scene.cameras and not 0 <= args.camera < len(scene.cameras):
        raise CliError(f"--camera {args.camera}: the scene has {len(scene.cameras)} cameras")
    camera = args.camera if scene.cameras else None
    if args.out is not None:
        scene.export_glb(args.out, camera_index=camera)
        print(f"wrote {args.out} ({len(scene.objects)} objects)")
    if args.blend is not None:
        from .blender import export_blend

        with tempfile.TemporaryDirectory(prefix="scenemaker-export-") as tmp:
            glb = args.out if args.out is not None else Path(tmp) / "scene.glb"
            if args.out is None:
                scene.export_glb(glb, camera_index=camera)
            export_blend(scene, glb, args.blend, camera_index=camera or 0)
        print(f"wrote {args.blend} ({len(scene.objects)} objects, the photo's camera)")
    return 0


def cmd_blender_setup(args) -> int:
    from .blender import setup

    python = setup(args.env, quiet=args.quiet)
    print(f"Blender (bpy) is set up: {python}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not hasattr(args, "func"):
        # a group without its subcommand prints that group's help
        sub = {"data": "data", "train": "train", "eval": "eval", "blender": "blender"}.get(
            getattr(args, "command", None)
        )
        if sub:
            parser.parse_args([sub, "--help"])
        parser.print_help()
        return 2
    from .errors import SceneMakerError
    from .synth.generate import GenerationError
    from .synth.layout import LayoutError

    if os.environ.get("SCENEMAKER_DEBUG"):
        return args.func(args)  # full tracebacks for developers
    try:
        return args.func(args)
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "")
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except (
        CliError,
        SceneMakerError,
        GenerationError,
        LayoutError,
        OSError,
        ValueError,
        ImportError,
        RuntimeError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
