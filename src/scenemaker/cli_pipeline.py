"""``scenemaker run`` (one image or a folder), ``scenemaker doctor``, ``scenemaker view``,
``scenemaker app`` and ``scenemaker demo``.

Heavy imports stay inside the commands: building the parser imports nothing but argparse.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def add_run(sub) -> None:
    from .pipeline import STAGES

    p = sub.add_parser(
        "run",
        help="photo or RGB-D frame in, 3D scene out (a folder of images: batch, resumable)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("input", type=Path, help="an image, or a folder of images (batch)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--from-stage", default="perception", choices=STAGES,
                   help="re-run from this stage on the results saved in --out")  # fmt: skip
    g = p.add_argument_group("perception")
    g.add_argument("--segmenter", default="auto",
                   help="auto | user | grounded-sam | sam-clicks (auto: user if --masks)")  # fmt: skip
    g.add_argument("--masks", default=None,
                   help="label PNG, folder of per-object PNGs, or COCO RLE JSON")  # fmt: skip
    g.add_argument("--prompt", default=None, help="grounded-sam text prompt, e.g. 'chair. lamp.'")
    g.add_argument("--clicks", default=None,
                   help="sam-clicks: 'x,y;x,y|x,y' (objects split by |, clicks by ;), pixels")  # fmt: skip
    g.add_argument("--segmenter-model", default=None, help="model id or local folder")
    g.add_argument("--depth", default="auto",
                   help="auto | user | moge | depth-anything | depth-pro (auto: user if --depth-file)")  # fmt: skip
    g.add_argument(
        "--depth-file", default=None, help="RGB-D depth: 16-bit PNG / TIFF, EXR, NPY or NPZ"
    )
    g.add_argument("--depth-scale", type=float, default=1000.0,
                   help="integer depth units per metre (float EXR / NPY depth is in metres)")  # fmt: skip
    g.add_argument("--invalid-depth", type=float, default=0.0, help="depth value meaning 'no data'")
    g.add_argument("--K", default=None, help="intrinsics fx,fy,cx,cy in pixels of the input image")
    g.add_argument("--fov", type=float, default=None, help="horizontal field of view, degrees")
    g.add_argument("--depth-model", default=None, help="model id or local folder")
    g = p.add_argument_group("de-occlusion, objects, pose")
    g.add_argument("--deocclusion", default="classical", help="classical | flux-kontext | none")
    g.add_argument("--deocclusion-model", default=None, help="model id or local folder")
    g.add_argument("--lora", default=None, help="de-occlusion LoRA (folder or .safetensors)")
    g.add_argument("--generator", default="retrieval",
                   help="retrieval | lift | oracle | shap-e | hunyuan3d | external")  # fmt: skip
    g.add_argument("--generator-model", default=None, help="model id or local folder")
    g.add_argument("--mesh-candidates", type=int, default=2,
                   help="retrieval: meshes proposed per object; the refine stage keeps the one "
                   "that explains the photo best")  # fmt: skip
    g.add_argument("--external-command", default=None,
                   help="command template run without a shell, e.g. 'python gen.py {image} {out_mesh}'")  # fmt: skip
    g.add_argument("--external-timeout", type=float, default=600.0, help="seconds per object")
    g.add_argument("--pose", default="dit", help="dit | box_fit | registration | initial")
    g.add_argument("--pose-weights", default=None, help="PoseDiT folder (default: shipped)")
    g.add_argument("--steps", type=int, default=None, help="pose sampling steps (default: shipped)")
    g.add_argument("--guidance", type=float, default=None)
    g.add_argument("--pose-samples", type=int, default=8,
                   help="pose model samples per scene: the hypotheses the refine stage verifies")  # fmt: skip
    g.add_argument("--refine", default="render", help="render | fit | icp | overlap | none")
    g.add_argument("--stretch", default="auto",
                   help="auto | on | off: the render refiner also fits each mesh's proportions "
                   "(auto: for --generator retrieval)")  # fmt: skip
    g = p.add_argument_group("export and compute")
    g.add_argument("--usd", action="store_true", help="also write scene.usda (usd-core)")
    g.add_argument("--refine-workers", type=int, default=0,
                   help="processes the render refiner searches objects in (0: one per core, up to 8; "
                   "1: this process only)")  # fmt: skip
    g.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    g.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16")
    g.add_argument("--cpu-offload", action="store_true", help="offload model parts to the CPU")
    g.add_argument("--max-side", type=int, default=2048, help="larger images are downscaled")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_run, interrupt_hint="; finished images are kept, rerun to resume")


def add_doctor(sub) -> None:
    p = sub.add_parser("doctor", help="backends, whether they import, local weights, licences")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)


def add_view(sub) -> None:
    p = sub.add_parser("view", help="(re)write OUT/report.html, one self-contained page of a run")
    p.add_argument("out", type=Path, help="a run's output folder (scenemaker run --out)")
    p.set_defaults(func=cmd_view)


def add_app(sub) -> None:
    p = sub.add_parser(
        "app",
        help="a local web app: upload a photo, turn the 3D scene around, re-run one object",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (0.0.0.0: every interface, reachable by others)")  # fmt: skip
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true",
                   help="also open a public Gradio share link (off: nothing leaves the machine)")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=None,
                   help="where runs are written (default: a new temporary folder)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.set_defaults(func=cmd_app, interrupt_hint="")


def cmd_app(args) -> int:
    from .app import serve

    try:
        import gradio  # noqa: F401
    except ImportError:
        from .errors import InputError

        raise InputError(
            "scenemaker app needs gradio 6: pip install 'scenemaker[app]' (scripts/setup.sh "
            "installs it)"
        ) from None
    serve(args.host, args.port, args.share, args.workdir, args.device)
    return 0


def cmd_view(args) -> int:
    import sys

    from .errors import InputError
    from .report_page import PAGE_NAME, write_report_page

    if not (args.out / "scene.json").is_file():
        raise InputError(f"{args.out}: no scene.json here (expected a finished run's folder)")
    for note in write_report_page(args.out):
        print(f"note: {note}", file=sys.stderr)
    print((args.out / PAGE_NAME).resolve())
    return 0


# PipelineConfig field -> the `run` option's argparse dest, where they differ
_DEST = {"pose_steps": "steps"}


def _config(args):
    """PipelineConfig from the `run` options: every field has its option (tests check that the
    options and their defaults match the config's)."""
    from dataclasses import fields

    from .pipeline import PipelineConfig

    values = {f.name: getattr(args, _DEST.get(f.name, f.name)) for f in fields(PipelineConfig)}
    from .pipeline_config import parse_clicks

    values["clicks"] = parse_clicks(args.clicks)
    return PipelineConfig(**values)


def _per_image(path: str | None, stem: str, kind: str) -> str | None:
    """In batch mode a --masks / --depth-file folder holds one file per image stem."""
    if path is None:
        return None
    from .errors import InputError

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{path}: in batch mode {kind} must be a folder with one file per image")
    hits = sorted(p for p in folder.iterdir() if p.stem == stem)
    if not hits:
        raise InputError(f"{folder}: no {kind} file for image '{stem}'")
    return str(hits[0])


def cmd_run(args) -> int:
    from dataclasses import replace

    from .errors import InputError
    from .pipeline import SceneMakerPipeline

    config = _config(args)
    config.validate()  # before any image: one line naming the option
    if not args.input.exists():
        raise InputError(f"{args.input}: no such image or folder")
    if args.input.is_file():
        report = (
            SceneMakerPipeline(config, progress=not args.quiet)
            .run(args.input, args.out, from_stage=args.from_stage)
            .report
        )
        _print_report(report, args.out)
        return 0
    images = sorted(p for p in args.input.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{args.input}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    from tqdm.auto import tqdm

    failures, done, skipped = {}, 0, 0
    for image in tqdm(images, desc="images", unit="image", disable=args.quiet):
        out = args.out / image.stem
        try:
            cfg = replace(
                config,
                masks=_per_image(config.masks, image.stem, "--masks"),
                depth_file=_per_image(config.depth_file, image.stem, "--depth-file"),
            )
            pipeline = SceneMakerPipeline(cfg, progress=False)
            if args.from_stage == "perception" and pipeline.is_finished(image, out):
                skipped += 1  # finished in an earlier run with these settings and files
                continue
            pipeline.run(image, out, from_stage=args.from_stage)
            done += 1
        except (OSError, ValueError, RuntimeError, ImportError) as exc:
            failures[image.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"{done} done, {skipped} already finished, {len(failures)} failed (of {len(images)})")
    for name, why in failures.items():
        print(f"  {name}: {why}")
    return 1 if failures else 0


def _print_report(report: dict, out: Path) -> None:
    print(
        f"{report['placed']} of {report['objects']} objects placed in {out / 'scene.glb'} "
        f"({report['seconds']['total']:.1f} s)"
    )
    for k, why in report["skipped"].items():
        print(f"  object {k} skipped: {why}")
    for note in report["notes"]:
        print(f"  note: {note}")


def cmd_doctor(args) -> int:
    from .backends import device_summary, doctor

    rows = doctor()
    device = device_summary()
    if args.json:
        print(json.dumps({"device": device, "backends": rows}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SceneMaker backends (device: {device})")
    for col in ("stage", "backend", "imports", "weights (local?)", "licence"):
        table.add_column(col)
    for r in rows:
        weights = ", ".join(f"{w} {'yes' if ok else 'no'}" for w, ok in r["weights"].items())
        imports = "yes" if r["imports"] else f"no (missing {', '.join(r['missing'])})"
        table.add_row(r["stage"], r["name"], imports, weights or "embedded", r["licence"])
    Console(width=200).print(table)
    return 0
