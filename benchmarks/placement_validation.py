"""Validation runs that chose the render-and-compare settings (never the test scenes).

Each call evaluates the default chain with some settings changed on the validation splits
(seed 0: 16 procedural, 12 pybullet, 12 any-face/stacked scenes) and appends one line to
``benchmarks/placement/validation.jsonl``; docs/MODELS.md tabulates them.

    python benchmarks/placement_validation.py '{"samples": 8, "keep": 10}'
    python benchmarks/placement_validation.py '{"samples": 8}' --consistency   # on vs off

Validation scenes (generated if missing):
    scenemaker data generate --out data/procedural_val --objects procedural --split val --scenes 40
    scenemaker data generate --out data/pybullet_val --objects pybullet --split val --scenes 40
    scenemaker data generate --out data/procedural_val_anyface --objects procedural --split val \\
        --scenes 20 --any-face 0.5 --stack 0.4
    (and the same with --seed 1 into data/*_s1: 40 procedural, 20 pybullet, 20 any-face)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from scenemaker.eval.pose_benchmark import (
    evaluate_scenes,
    generator_like,
    make_perturbation,
    summarize,
)
from scenemaker.pipeline_config import PipelineConfig
from scenemaker.pose.chain import ProposeVerifyEstimator
from scenemaker.pose.estimator import DiTPoseEstimator
from scenemaker.refine.render_compare import RenderCompareRefiner, RenderCompareSettings

ROOT = Path(__file__).resolve().parent.parent
ANYFACE = ("--any-face", "0.5", "--stack", "0.4")
SETS = {  # folder: (source, scenes generated, scenes used, extra generate flags[, seed])
    "procedural_val": ("procedural", 40, 16, ()),
    "pybullet_val": ("pybullet", 40, 12, ()),
    "procedural_val_anyface": ("procedural", 20, 12, ANYFACE),
}
# a second, larger draw of validation scenes (seed 1) for choices the first sets leave open
# (a one-scene difference there moves a mean by ~0.02); run with --sets
MORE = {
    "procedural_val_s1": ("procedural", 40, 40, (), 1),
    "pybullet_val_s1": ("pybullet", 20, 20, (), 1),
    "procedural_val_anyface_s1": ("procedural", 20, 20, ANYFACE, 1),
}


def ensure(name: str) -> Path:
    source, scenes, _, extra, *seed = {**SETS, **MORE}[name]
    out = ROOT / "data" / name
    if not (out / "manifest.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "scenemaker.cli", "data", "generate", "--out", str(out),
             "--objects", source, "--split", "val", "--scenes", str(scenes),
             "--seed", str(seed[0] if seed else 0),
             *extra, "--quiet"],
            check=True,
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="?", default="{}", help="JSON: RenderCompareSettings "
                        "fields, plus 'samples' (pose model samples) and 'dit_steps' (its sampling steps)")  # fmt: skip
    parser.add_argument("--consistency", action="store_true", help="compare it on vs off")
    parser.add_argument("--perturb", default="none", help="eval pose's --perturb (e.g. dense)")
    parser.add_argument("--sets", default=",".join(SETS), help="validation sets to run")
    parser.add_argument("--held-out", action="store_true", help="the sets' other scenes (those "
                        "the settings were not chosen on), to confirm a choice")  # fmt: skip
    args = parser.parse_args()
    try:
        perturb = make_perturbation(args.perturb)
    except ValueError as exc:
        parser.error(f"--perturb {args.perturb}: {exc}")
    sets = args.sets.split(",")
    if not sets or not set(sets) <= set(SETS) | set(MORE):
        parser.error(f"--sets {args.sets}: expected a comma-separated subset of "
                     f"{','.join([*SETS, *MORE])}")  # fmt: skip
    if args.held_out and set(sets) & set(MORE):
        parser.error(f"--held-out: the seed-1 sets ({','.join(MORE)}) are used whole")
    try:
        settings = json.loads(args.settings)
        # as `scenemaker run --stretch auto` with the generator these meshes stand for
        like = PipelineConfig(generator=generator_like(args.perturb))
        settings.setdefault("stretch", like.stretches)
        samples = int(settings.pop("samples", 8))
        dit_steps = settings.pop("dit_steps", None)
        variants = [False, True] if args.consistency else [None]
        methods = {}
        dit = DiTPoseEstimator(samples=samples, steps=None if dit_steps is None else int(dit_steps))
        for c in variants:
            extra = {} if c is None else {"consistency": c}
            refiner = RenderCompareRefiner(RenderCompareSettings(**settings, **extra))
            methods["default" if c is None else f"consistency={c}"] = ProposeVerifyEstimator(
                dit, refiner
            )
    except (ValueError, TypeError) as exc:
        parser.error(f"settings {args.settings!r}: {exc}")
    line = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
            "settings": {**settings, "samples": samples,
                         **({} if dit_steps is None else {"dit_steps": int(dit_steps)}),
                         **({} if args.perturb == "none" else {"perturb": args.perturb}),
                         **({} if sets == list(SETS) else {"sets": sets}),
                         **({"held_out": True} if args.held_out else {})},
            "results": {}}  # fmt: skip
    seconds = {}  # method: every scene's seconds (pose model + refinement), all sets
    for name in sets:
        generated, used = {**SETS, **MORE}[name][1:3]
        start, count = (used, generated - used) if args.held_out else (0, used)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = evaluate_scenes(
                [ensure(name)], methods, max_scenes=count, progress=False,
                physics=args.consistency, perturb=perturb, start=start,
            )  # fmt: skip
        for method, s in summarize(records).items():
            keys = ("iou_b", "add_s", "size_err", "seconds_per_scene", "confidence_auroc",
                    "interpenetration", "contact_gap")  # fmt: skip
            line["results"].setdefault(method, {})[name] = {k: s.get(k) for k in keys}
            mine = [r.seconds for r in records if r.method == method and r.objects]
            line["results"][method][name]["seconds_median"] = float(np.median(mine))
            seconds.setdefault(method, []).extend(mine)
    for method, values in seconds.items():  # the timing figure: median over all scenes
        line["results"][method]["seconds_median"] = float(np.median(values))
        line["results"][method]["iou_b_mean"] = float(
            np.mean([line["results"][method][name]["iou_b"] for name in sets])
        )
    out = ROOT / "benchmarks" / "placement" / "validation.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))


if __name__ == "__main__":
    main()
