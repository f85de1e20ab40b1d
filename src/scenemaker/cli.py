"""The ``scenemaker`` command. Heavy imports live inside the subcommands so --help is instant."""

from __future__ import annotations

import argparse
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
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run scenes as Ray tasks: alone, on a local Ray instance with --workers CPUs; "
        "auto or HOST:PORT, on a running cluster whose nodes share --out (pip extra 'ray')",
    )
    p.add_argument(
        "--renderer",
        default="fast",
        choices=["fast", "cycles"],
        help="fast: moderngl rasteriser (default); cycles: Blender's path tracer, the paper's "
        "renderer (needs `scenemaker blender setup`; seconds per view)",
    )
    p.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel (default 16)")
    p.add_argument(
        "--hdri",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="folder of HDRIs (.exr, .hdr) lighting Cycles scenes (default: Blender's bundled "
        "studio-light HDRIs)",
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
    from .cli_pose import add_eval_pose, add_train_pose

    add_train_pose(train)
    add_train(train)
    evaluate = sub.add_parser("eval", help="benchmarks").add_subparsers(dest="eval_command")
    add_eval_pose(evaluate)
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
    if args.samples < 1:
        raise CliError(f"--samples {args.samples}: expected an integer >= 1")
    if args.renderer != "cycles" and (args.hdri is not None or args.samples != 16):
        raise CliError("--samples and --hdri set Cycles: use them with --renderer cycles")
    if args.renderer == "cycles":
        from .blender import blender_python
        from .synth.cycles import hdri_files

        if blender_python() is None:
            raise CliError(
                "--renderer cycles needs Blender (bpy): run `scenemaker blender setup` first"
            )
        hdri_files(args.hdri)  # a missing or empty --hdri folder: one line, before any work


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
        renderer=args.renderer,
        samples=args.samples,
        hdri=str(args.hdri.resolve()) if args.hdri is not None else None,
    )
    result = generate_dataset(
        args.out,
        args.scenes,
        config,
        workers=args.workers,
        progress=not args.quiet,
        ray_address=args.ray,
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
