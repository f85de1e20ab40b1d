"""Data-generation throughput: views per second for 5-object scenes at 256 px.

Everything a user pays for is timed: object loading and canonical surface sampling, layout,
rendering (RGB, depth, instance ids, one amodal pass per object), candidate views rejected
because an object was hidden, PNG / NPZ writing and the manifest. Target (issue 2): at least
20 views/s on the 2-core dev machine (Blender Cycles: ~1 s per view). With Ray installed
(pip extra 'ray'), the same run as Ray tasks on a local Ray instance of 1 and 2 CPUs
(`data generate --ray`); the instance's start is timed apart.

    python benchmarks/bench_datagen.py [--scenes 24] [--views 20] [--no-ray]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _results import write_section

from scenemaker.render.scene import SceneRenderer
from scenemaker.synth.cameras import ViewConfig
from scenemaker.synth.generate import GenerateConfig, generate_dataset
from scenemaker.synth.layout import LayoutConfig


def run(
    objects: str, scenes: int, views: int, workers: int, resolution: int, ray: bool = False
) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_datagen_")) / "data"
    config = GenerateConfig(
        objects=objects,
        split="train",
        layout=LayoutConfig(min_objects=5, max_objects=5),
        views=ViewConfig(views=views, width=resolution, height=resolution),
    )
    ray_start = None
    if ray:  # started here, so that its start is timed apart; generate_dataset joins it
        import ray as ray_module

        from scenemaker.synth.distributed import start_local

        start = time.perf_counter()
        start_local(workers)
        ray_start = time.perf_counter() - start
    start = time.perf_counter()
    try:
        result = generate_dataset(
            out,
            scenes,
            config,
            workers=workers,
            progress=False,
            ray_address="local" if ray else None,
        )
    finally:
        if ray:
            ray_module.shutdown()
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out.parent)
    return {
        "objects": objects,
        "workers": f"{workers} (Ray)" if ray else workers,
        "ray_start": ray_start,
        "scenes": len(result["scenes"]),
        "views": scenes * views,
        "seconds": seconds,
        "views_per_s": scenes * views / seconds,
        "mb_per_scene": size / scenes / 1e6,
    }


def render_only(resolution: int, frames: int = 200) -> float:
    """Milliseconds per frame of the renderer alone (5 boxes, with amodal passes)."""
    import numpy as np
    import trimesh

    from scenemaker.render.scene import RenderObject
    from scenemaker.scene import Camera
    from scenemaker.synth.cameras import look_at

    objs = []
    for k in range(5):
        mesh = trimesh.creation.icosphere(3)
        mesh.apply_translation((k - 2.0, 1.0, 0.0))
        objs.append(RenderObject(mesh.vertices, mesh.faces, k + 2, (0.7, 0.4, 0.2)))
    renderer = SceneRenderer(resolution, resolution)
    renderer.set_scene(objs)
    cam = Camera.from_fov(np.radians(55), resolution, resolution, look_at([0, 2, 6], [0, 0.8, 0]))
    renderer.render(cam)
    start = time.perf_counter()
    for _ in range(frames):
        renderer.render(cam)
    ms = (time.perf_counter() - start) / frames * 1000
    renderer.release()
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    rows = []
    for objects in ("procedural", "pybullet"):
        for workers in (1, 2):
            row = run(objects, args.scenes, args.views, workers, args.resolution)
            print(row)
            rows.append(row)
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed (pip extra 'ray'): no Ray rows")
        else:
            for workers in (1, 2):
                row = run("procedural", args.scenes, args.views, workers, args.resolution, True)
                print(row)
                rows.append(row)
    ms = render_only(args.resolution)
    best = max(r["views_per_s"] for r in rows)
    verdict = "met" if best >= 20 else "MISSED"
    lines = [
        f"## Data generation ({args.resolution} px, 5 objects per scene, {args.views} views)",
        "",
        f"Target: >= 20 views/s on the 2-core machine: **{verdict}** (best {best:.1f} views/s).",
        "Timed end to end: object loading + surface sampling, layout, rendering with one amodal",
        "pass per object, rejected candidate views, PNG/NPZ writing, manifest.",
        "",
        "| objects | workers | scenes | views | seconds | views/s | MB/scene |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['objects']} | {r['workers']} | {r['scenes']} | {r['views']} | "
            f"{r['seconds']:.1f} | {r['views_per_s']:.1f} | {r['mb_per_scene']:.2f} |"
        )
    starts = [r["ray_start"] for r in rows if r["ray_start"] is not None]
    if starts:
        lines += [
            "",
            "Rows marked (Ray): `data generate --ray` on a local Ray instance of that many CPUs "
            f"(its start, {max(starts):.1f} s at most, is not in the seconds; "
            "`--ray` pays it once per command).",
        ]
    lines += [
        "",
        f"Renderer alone (5 icospheres, RGB + depth + ids + 5 amodal passes): "
        f"{ms:.1f} ms per frame.",
    ]
    write_section("bench_datagen", "\n".join(lines))


if __name__ == "__main__":
    main()
