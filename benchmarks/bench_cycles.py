"""Cycles vs the fast renderer: views per second of `data generate --renderer cycles` and of
the default fast renderer on the same scenes, in one run, and how well their ids and depths
agree (same seed: same layouts and cameras, so the images can be compared pixel by pixel).

Timed end to end as `data generate` runs them (object loading, layout, view picking with
the fast renderer, Blender start, Cycles, PNG/NPZ writing), one worker (Cycles uses every
core by itself).

    python benchmarks/bench_cycles.py [--scenes 3] [--views 4] [--resolution 256] [--samples 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_section

from scenemaker.synth.cameras import ViewConfig
from scenemaker.synth.cycles import near_id_edge
from scenemaker.synth.generate import GenerateConfig, generate_dataset
from scenemaker.synth.layout import LayoutConfig


def run(out: Path, renderer: str, args) -> dict:
    config = GenerateConfig(
        objects="procedural",
        layout=LayoutConfig(min_objects=3, max_objects=5),
        views=ViewConfig(views=args.views, width=args.resolution, height=args.resolution),
        renderer=renderer,
        samples=args.samples,
    )
    start = time.perf_counter()
    generate_dataset(out, args.scenes, config, workers=1, progress=False)
    seconds = time.perf_counter() - start
    views = args.scenes * args.views
    return {"renderer": renderer, "views": views, "seconds": seconds, "vps": views / seconds}


def agreement(fast: Path, cycles: Path) -> dict:
    """Instance-id agreement away from id edges (1 px) and |depth| differences (PNG, mm)."""
    from scenemaker.synth.images import read_depth, read_image

    agree, total, diffs = 0, 0, []
    for ids_path in sorted(fast.glob("scene_*/views/*_instance.png")):
        rel = ids_path.relative_to(fast)
        a, b = read_image(ids_path), read_image(cycles / rel)
        away = ~(near_id_edge(a) | near_id_edge(b))
        agree += int((a == b)[away].sum())
        total += int(away.sum())
        depth = str(rel).replace("_instance.png", "_depth.png")
        da, db = read_depth(fast / depth), read_depth(cycles / depth)
        both = (da > 0) & (db > 0)
        diffs.append(np.abs(da - db)[both])
    d = np.concatenate(diffs)
    return {"ids": agree / max(total, 1), "median_mm": 1000 * float(np.median(d)),
            "p99_mm": 1000 * float(np.percentile(d, 99))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cycles_"))
    try:
        load = os.getloadavg()[0]
        fast = run(tmp / "fast", "fast", args)
        print(fast)
        cycles = run(tmp / "cycles", "cycles", args)
        print(cycles)
        match = agreement(tmp / "fast", tmp / "cycles")
        print(match)
        load = max(load, os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        f"## Cycles vs fast renderer ({args.resolution} px, {args.samples} samples, "
        f"{args.scenes} scenes x {args.views} views, 3-5 procedural objects)",
        "",
        "`data generate --renderer cycles` (Blender 5.0.1 Cycles on the CPU, OIDN denoiser, one",
        "Blender process per scene) against the default fast renderer on the same scenes, one",
        "worker, timed end to end.",
        "",
        "| renderer | views | seconds | views/s | s/view |",
        "|---|---|---|---|---|",
    ]
    for r in (fast, cycles):
        lines.append(
            f"| {r['renderer']} | {r['views']} | {r['seconds']:.1f} | {r['vps']:.2f} | "
            f"{r['seconds'] / r['views']:.2f} |"
        )
    lines += [
        "",
        f"Same seed, same layouts and cameras: instance ids agree on {100 * match['ids']:.2f} % "
        "of the pixels away from id edges (1 px); depth (16-bit mm PNGs) differs by a median "
        f"of {match['median_mm']:.2f} mm (99th percentile {match['p99_mm']:.2f} mm). "
        f"Load average during the run: {load:.1f} (other jobs shared the cores).",
    ]
    write_section("bench_cycles", "\n".join(lines))


if __name__ == "__main__":
    main()
