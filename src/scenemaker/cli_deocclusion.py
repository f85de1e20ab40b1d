"""De-occlusion commands: ``data deocclusion``, ``train deocclusion``, ``eval deocclusion``."""

from __future__ import annotations

import json
from pathlib import Path


def add_data(data_sub) -> None:
    p = data_sub.add_parser(
        "deocclusion", help="occlusion triplets (input crop, prompt, complete target), resumable"
    )
    p.add_argument("--scenes", nargs="+", required=True, type=Path, help="rendered scene folders")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--mix", default=None,
                   help="share of each mask type, e.g. 'scene=0.4,cutout=0.2,border=0.2,brush=0.2'")  # fmt: skip
    p.add_argument("--size", type=int, default=512, help="crop side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-per-scene", type=int, default=None)
    p.add_argument("--balance", type=float, default=2.0,
                   help="cap each occlusion bin at this multiple of the smallest (0: no balancing)")  # fmt: skip
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data, interrupt_hint="; finished scenes are kept, rerun to resume")


def add_train(train_sub) -> None:
    p = train_sub.add_parser("deocclusion", help="LoRA finetuning of FLUX.1-Kontext (resumable)")
    p.add_argument("triplets", type=Path, help="folder made by `scenemaker data deocclusion`")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--preset", default="paper", help="paper | tiny (CPU test)")
    p.add_argument("--model", default=None, help="FLUX.1-Kontext id or local folder")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--rank", type=int, default=None)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--val", type=Path, default=None, help="held-out triplet folder")
    p.set_defaults(func=cmd_train, interrupt_hint="; rerun the same command to resume")


def add_eval(eval_sub) -> None:
    p = eval_sub.add_parser("deocclusion", help="de-occlusion methods on held-out triplets")
    p.add_argument("triplets", type=Path)
    p.add_argument("--methods", default="none,classical",
                   help="comma-separated: none, classical, flux-kontext")  # fmt: skip
    p.add_argument("--model", default=None, help="FLUX.1-Kontext id or local folder")
    p.add_argument("--lora", default=None, help="LoRA for flux-kontext (adds flux-kontext+lora)")
    p.add_argument("--split", default="val", choices=["val", "all"],
                   help="val: the held-out scenes of the training split rule")  # fmt: skip
    p.add_argument("--max-items", type=int, default=None)
    p.add_argument(
        "--clip", default=None, help="CLIP id or folder for CLIP similarity; 'none' skips"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, type=Path, help="writes OUT/metrics.json and table.md")
    p.set_defaults(func=cmd_eval)


def cmd_data(args) -> int:
    from .deocclusion.data import build_triplets
    from .deocclusion.triplets import parse_mix

    summary = build_triplets(
        args.scenes, args.out, mix=parse_mix(args.mix) if args.mix else None, size=args.size,
        seed=args.seed, max_per_scene=args.max_per_scene,
        balance_factor=args.balance if args.balance > 0 else None, progress=not args.quiet,
    )  # fmt: skip
    keys = ("triplets", "mask_types", "occlusion_bins", "skipped", "dropped", "handled")
    print(json.dumps({k: summary.get(k) for k in keys if k in summary}, indent=1))
    return 0


def cmd_train(args) -> int:
    from .deocclusion.train import train_deocclusion_lora
    from .deocclusion.train_config import preset

    overrides = {
        "max_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
        "rank": args.rank, "size": args.size, "max_minutes": args.max_minutes,
    }  # fmt: skip
    config = preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})
    last = train_deocclusion_lora(args.triplets, args.out, config, pipeline=args.model,
                                  val_data=args.val)  # fmt: skip
    print(json.dumps(last, indent=1, default=str))
    return 0


def cmd_eval(args) -> int:
    from .deocclusion.evaluate import evaluate_deocclusion, format_table
    from .deocclusion.train_config import preset
    from .deocclusion.triplet_dataset import TripletDataset
    from .io_utils import atomic_write_bytes, atomic_write_json

    dataset = TripletDataset(args.triplets)
    rule = preset("paper")  # the held-out scenes are those the trainer holds out
    items = dataset.split(rule.val_fraction, rule.seed)[1] if args.split == "val" else dataset
    from .backends import build_backend, names
    from .errors import InputError
    from .pipeline import PipelineConfig

    methods = {}
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not wanted:
        raise InputError(f"--methods {args.methods!r}: expected a comma-separated list of methods")
    for name in wanted:  # built by the registry `scenemaker run` uses, from the same config
        if name not in names("deoccluder"):
            raise InputError(
                f"--methods: unknown de-occlusion method {name!r} "
                f"(choose from {', '.join(names('deoccluder'))})"
            )
        config = PipelineConfig(deocclusion=name, deocclusion_model=args.model, device=args.device)
        methods[name] = build_backend("deoccluder", config)
        if name == "flux-kontext" and args.lora:
            config.lora = args.lora
            methods[name + "+lora"] = build_backend("deoccluder", config)
    clip_kw = {} if args.clip is None else {"clip": None if args.clip == "none" else args.clip}
    results = evaluate_deocclusion(items, methods, max_items=args.max_items, keep_items=False,
                                   progress=True, **clip_kw)  # fmt: skip
    atomic_write_json(args.out / "metrics.json", results)
    table = format_table(results)
    atomic_write_bytes(args.out / "table.md", table.encode())
    print(table)
    return 0
