"""End-to-end pipeline benchmark: seconds and peak memory per stage, quality vs ground truth.

Runs ``scenemaker demo`` (synthetic RGB-D frames of test-split objects, user masks + depth,
classical de-occlusion, the embedded generator, shipped PoseDiT, render-and-compare
refinement) for each generator,
plus the oracle meshes (placement alone), and writes its section of RESULTS.md.

    python benchmarks/bench_pipeline.py [--scenes 10] [--generators retrieval,lift]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _results import write_section

from scenemaker.demo import run_demo
from scenemaker.io_utils import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("perception", "deocclusion", "object3d", "pose", "refine", "export", "total")
KEYS = ("cd_s", "f_score_s", "cd_o", "f_score_o", "iou_b", "mask_iou")


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=384)
    parser.add_argument("--generators", default="retrieval,lift")
    parser.add_argument(
        "--no-deocclusion", action="store_true",
        help="also run the first generator without de-occlusion (its downstream effect)",
    )  # fmt: skip
    args = parser.parse_args()
    results = {}
    runs = [(gen, "classical") for gen in args.generators.split(",")]
    if args.no_deocclusion:
        runs.append((runs[0][0], "none"))
    for gen, deocc in runs:
        report = run_demo(
            ROOT / "out" / "bench_pipeline" / f"{gen}_{deocc}", scenes=args.scenes,
            resolution=args.resolution, generator=gen, progress=False, deocclusion=deocc,
        )  # fmt: skip
        label = gen if deocc == "classical" else f"{gen}, no de-occlusion"
        for name, key in ((label, "pipeline"), ("oracle", "oracle")):
            runs = [s[key] for s in report["scenes"]]
            results.setdefault(name, {
                "quality": {k: _mean([r.get(k) for r in runs]) for k in KEYS},
                "seconds": {s: _mean([r["seconds"].get(s) for r in runs]) for s in STAGES},
                "peak_rss_mb": {
                    s: max((r["peak_rss_mb"].get(s) or 0) for r in runs) for s in STAGES[:-1]
                },
                "objects": int(sum(s["objects"] for s in report["scenes"])),
                "placed": int(sum(r.get("placed", 0) for r in runs)),
            })  # fmt: skip
    atomic_write_json(ROOT / "benchmarks" / "pipeline" / "metrics.json", results)
    lines = [
        f"## End-to-end pipeline ({args.scenes} synthetic scenes, {args.resolution} px, "
        "test-split objects)",
        "",
        f"`python benchmarks/bench_pipeline.py --scenes {args.scenes} --resolution "
        f"{args.resolution} --generators {args.generators}"
        + (" --no-deocclusion" if args.no_deocclusion else "")
        + "`: each scene's view as a user's "
        "RGB-D frame (image, 16-bit depth, label PNG, K) through `SceneMakerPipeline` "
        "(classical de-occlusion unless said, shipped PoseDiT with 8 samples, render-and-compare "
        "refinement: the defaults). `oracle` uses the ground-truth "
        "meshes (placement alone). `mask_iou`: the output scene re-rendered from its exported "
        "camera vs the input masks. Metrics as in PAPER.md (per scene, then averaged).",
        "",
        "| meshes | placed / objects | " + " | ".join(KEYS) + " |",
        "|---|---|" + "---|" * len(KEYS),
    ]
    for name, r in results.items():
        q = r["quality"]
        lines.append(
            f"| {name} | {r['placed']} / {r['objects']} | "
            + " | ".join("-" if q[k] is None else f"{q[k]:.3f}" for k in KEYS)
            + " |"
        )
    lines += [
        "",
        "Seconds per scene by stage (mean) and peak resident memory by stage (max, MiB):",
        "",
        "| meshes | " + " | ".join(STAGES) + " | peak MiB (" + ", ".join(STAGES[:-1]) + ") |",
        "|---|" + "---|" * (len(STAGES) + 1),
    ]
    for name, r in results.items():
        sec = r["seconds"]
        peak = r["peak_rss_mb"]
        lines.append(
            f"| {name} | "
            + " | ".join("-" if sec[s] is None else f"{sec[s]:.2f}" for s in STAGES)
            + " | "
            + ", ".join(f"{peak[s]:.0f}" for s in STAGES[:-1])
            + " |"
        )
    write_section("bench_pipeline", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
