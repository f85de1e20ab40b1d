"""Where the placement search spends its time: candidate render cost against mesh faces and
tile size, and the default chain's seconds by part on 5-object validation scenes.

    python benchmarks/bench_render_cost.py [--scenes 6]

Run on idle cores: every figure is a wall-clock time.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
import traceback
import warnings

import numpy as np
from _results import write_section

from scenemaker.render import candidates as C

STAGES = ("_place", "visible_icp", "dense_refine", "local_search", "_evaluate", "_score_state")


def reference_render_ms() -> float:
    """This machine's speed, for comparing timings taken on other days: ms per candidate of
    the 1,280-face, 64 px row of :func:`render_cost`."""
    return next(ms for faces, tile, ms in render_cost((3,), (64,)) if faces == 1280)


def render_cost(subdivisions=(1, 2, 3, 4), tiles=(40, 64)) -> list[tuple[int, int, float]]:
    """(faces, tile px, ms per candidate) for icospheres of 80-5,120 faces, 640 random poses
    in batches of 64, best of 3."""
    import trimesh
    from scipy.spatial.transform import Rotation

    # every face drawn (no culling), as in the runs before culling: the reference stays the same
    renderer = C.CandidateRenderer(max_batch=64, max_tile=96, cull=False)
    K = np.array([[300.0, 0, 47.5], [0, 300.0, 47.5], [0, 0, 1]])
    R = Rotation.random(640, random_state=0).as_matrix()
    M = C.pose_matrices(R, np.tile([0.0, 0.0, 3.0], (640, 1)), np.ones(640))
    rows = []
    try:
        for sub in subdivisions:
            mesh = trimesh.creation.icosphere(subdivisions=sub)
            renderer.set_mesh(np.asarray(mesh.vertices) * [1.0, 0.6, 0.8], np.asarray(mesh.faces))
            for tile in tiles:
                Kc = K.copy()
                Kc[:2] *= tile / 96
                renderer.render(Kc, M[:64], tile, tile)  # warm
                draw = lambda K=Kc, t=tile: renderer.render(K, M, t, t)  # noqa: E731
                best = min(_timed(draw) for _ in range(3))
                rows.append((len(mesh.faces), tile, best / len(M) * 1e3))
    finally:
        renderer.release()
    return rows


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def chain_breakdown(scenes: int) -> dict:
    """Median seconds per 5-object validation scene: pose model, refinement, and the renders
    (count and seconds) by search stage; each scene run once to warm up, then timed."""
    from placement_validation import ensure

    from scenemaker.pose.estimator import DiTPoseEstimator, Observation
    from scenemaker.refine.render_compare import RenderCompareRefiner
    from scenemaker.synth.dataset import list_scenes

    # one process: the renders are counted here (the default searches objects in workers)
    dit, refiner = DiTPoseEstimator(samples=8), RenderCompareRefiner(workers=1)
    stat = collections.defaultdict(lambda: [0, 0.0])
    recording = [False]  # only the timed runs count
    original = C.CandidateRenderer.render

    def counted(self, K, M, w, h):
        names = [f.name for f in traceback.extract_stack(limit=12)]
        key = next((n for n in reversed(names) if n in STAGES), "other")
        key = f"second search: {key}" if "_rescue" in names else key
        start = time.perf_counter()
        z = original(self, K, M, w, h)
        if recording[0]:
            stat[key][0] += len(M)
            stat[key][1] += time.perf_counter() - start
        return z

    found = [s for name in ("procedural_val", "pybullet_val") for s in list_scenes(ensure(name))
             if len(s.scene.objects) == 5][:scenes]  # fmt: skip
    pose_s, refine_s = [], []
    C.CandidateRenderer.render = counted
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for scene in found:
                view = scene.view(0)
                objs = scene.scene.objects
                masks = [view.instance == o.instance_id for o in objs]
                obs = Observation(view.depth, view.camera.K, masks)
                meshes = [o.mesh for o in objs]
                for timed in (False, True):
                    recording[0] = timed
                    start = time.perf_counter()
                    proposed = dit.estimate(obs, meshes)
                    middle = time.perf_counter()
                    refiner.refine_detailed(proposed.poses, meshes, obs, proposed.hypotheses)
                    end = time.perf_counter()
                pose_s.append(middle - start)
                refine_s.append(end - middle)
    finally:
        C.CandidateRenderer.render = original
        refiner.close()
    n = len(found)
    return {
        "scenes": n,
        "pose_model_s": statistics.median(pose_s),
        "refine_s": statistics.median(refine_s),
        "total_s": statistics.median([a + b for a, b in zip(pose_s, refine_s, strict=True)]),
        "stages": {
            k: (v[0] / n, v[1] / n) for k, v in sorted(stat.items(), key=lambda kv: -kv[1][1])
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=6, help="5-object validation scenes")
    args = parser.parse_args()
    if args.scenes < 1:
        parser.error(f"--scenes {args.scenes}: expected >= 1")
    cost = render_cost()
    chain = chain_breakdown(args.scenes)
    lines = [
        "## Where the placement time goes (CPU rasteriser, llvmpipe)",
        "",
        "`python benchmarks/bench_render_cost.py`. Candidate depth renders of one mesh in "
        "batches of 64 (ms per candidate, best of 3):",
        "",
        "| faces | 40 px tile | 64 px tile |",
        "|---|---|---|",
    ]
    for faces in dict.fromkeys(f for f, _, _ in cost):
        ms = {tile: v for f, tile, v in cost if f == faces}
        lines.append(f"| {faces} | {ms[40]:.3f} | {ms[64]:.3f} |")
    total_renders = sum(v[0] for v in chain["stages"].values())
    total_render_s = sum(v[1] for v in chain["stages"].values())
    lines += [
        "",
        f"Default chain on {chain['scenes']} five-object validation scenes (warm, median per "
        f"scene): {chain['total_s']:.2f} s = pose model {chain['pose_model_s']:.2f} s + "
        f"refinement {chain['refine_s']:.2f} s, of which {total_render_s:.2f} s are "
        f"{total_renders:.0f} candidate renders (mean per scene, by stage):",
        "",
        "| stage | renders | seconds |",
        "|---|---|---|",
    ]
    for name, (count, seconds) in chain["stages"].items():
        lines.append(f"| {name} | {count:.0f} | {seconds:.3f} |")
    print("\n".join(lines))
    write_section("bench_render_cost", "\n".join(lines))


if __name__ == "__main__":
    main()
