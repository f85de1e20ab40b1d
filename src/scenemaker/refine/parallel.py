"""Objects refined side by side: the render-and-compare search of each object runs in a pool
of worker processes (one per core, up to 8), each with its own OpenGL context.

Each object's search depends only on the frame (its crops, the observed points, the support
plane) and its own seeds, so the poses are exactly those one process finds; a worker process
that dies (out of memory, a driver crash) hands its objects back to this process. The pool is
``loky``'s reusable executor: started once (:func:`warm` starts it early, while other stages
run), kept between frames, and closed after ``IDLE_SECONDS`` without work.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..scene import Pose
from .scoring import CropObservation

IDLE_SECONDS = 300
MAX_DEFAULT_WORKERS = 8  # each worker holds its own GL context and meshes
# one rasteriser thread and one BLAS / OpenMP thread per worker: the workers fill the cores
_WORKER_ENV = {"LP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}  # fmt: skip


@dataclass
class ObjectTask:
    """What one object's search needs, and nothing of the rest of the frame."""

    k: int
    mesh: object  # geometry only (trimesh.Trimesh): cheap to send to a worker
    pool: list[Pose]
    fallback: Pose
    points: np.ndarray  # (N, 3) observed points of the object
    others: np.ndarray | None  # (M, 3) observed points of the other objects
    coarse: CropObservation
    fine: CropObservation
    choice: int = 0  # which of the object's candidate meshes (0: the first)
    precise: CropObservation | None = None  # the final alignment's crop (``precise_tile``)


def make_tasks(st, poses, meshes, observation, depth, hypotheses, alternatives=None):
    """(results, tasks): ``results[k]`` is already decided (an ObjectRefinement) for an object
    that cannot be searched (no pose, a broken mesh, too few observed points) and None for
    the others, which have a task per candidate mesh (``meshes[k]``, then each of
    ``alternatives[k]`` whose mesh is usable)."""
    import trimesh

    from ..geometry.validation import mesh_problem
    from .hypotheses import finite_pose, same_pose
    from .render_settings import ObjectRefinement
    from .scoring import crop_observation

    all_points = [  # the pose model read the same points: computed once per frame
        observation.points(k, 256, st.seed) if m.any() else None
        for k, m in enumerate(observation.masks)
    ]
    results, tasks = [], []
    for k, mesh in enumerate(meshes):
        results.append(None)
        pool = list(hypotheses[k]) if hypotheses is not None and hypotheses[k] else []
        if poses[k] is not None and not any(same_pose(p, poses[k]) for p in pool):
            pool.insert(0, poses[k])
        pool = [p for p in pool if finite_pose(p)]
        given = poses[k] if poses[k] is not None and finite_pose(poses[k]) else None
        if not pool:
            results[k] = ObjectRefinement(given, note="no pose hypothesis")
            continue
        fallback = given if given is not None else pool[0]
        extra = list(alternatives[k]) if alternatives is not None and alternatives[k] else []
        # a broken candidate mesh is simply not a candidate
        usable = [(j, m) for j, m in enumerate([mesh, *extra]) if not mesh_problem(m)]
        if not usable:
            results[k] = ObjectRefinement(fallback, note=mesh_problem(mesh))
            continue
        pts = all_points[k]
        if pts is None or len(pts) < st.min_points:
            n = 0 if pts is None else len(pts)
            results[k] = ObjectRefinement(fallback, note=f"only {n} observed points: pose kept")
            continue
        others = [p for j, p in enumerate(all_points) if j != k and p is not None and len(p)]
        mask = observation.masks[k]
        other = np.zeros_like(mask)
        for j, m in enumerate(observation.masks):
            if j != k:
                other |= m
        crops = (crop_observation(depth, observation.K, mask, other, max_tile=st.coarse_tile),
                 crop_observation(depth, observation.K, mask, other, max_tile=st.tile))  # fmt: skip
        precise = (crop_observation(depth, observation.K, mask, other, max_tile=st.precise_tile)
                   if st.precise_tile else None)  # fmt: skip
        for choice, candidate in usable:
            geometry = trimesh.Trimesh(np.asarray(candidate.vertices),
                                       np.asarray(candidate.faces), process=False)  # fmt: skip
            tasks.append(
                ObjectTask(k, geometry, pool, fallback, pts,
                           np.concatenate(others) if others else None, *crops, choice, precise)
            )  # fmt: skip
    return results, tasks


def choose_mesh(found: dict):
    """The ObjectRefinement of the candidate mesh with the lowest final score (``found``:
    choice -> result), with every candidate's score recorded; one candidate: as it is."""
    if len(found) == 1 and 0 in found:
        return found[0]
    scored = {j: r for j, r in found.items() if r.score is not None and np.isfinite(r.score)}
    best = min(scored, key=lambda j: (scored[j].score, j)) if scored else min(found)
    result = found[best]
    result.mesh_choice = int(best)
    result.mesh_scores = {int(j): r.score for j, r in sorted(found.items())}
    return result


def cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def pool_size(workers: int) -> int:
    """Worker processes for ``workers`` (0: one per core, at most ``MAX_DEFAULT_WORKERS``).
    The pool keeps this size: a frame with fewer searches leaves some workers idle."""
    return max(1, workers or min(cores(), MAX_DEFAULT_WORKERS))


def executor(workers: int):
    from loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, timeout=IDLE_SECONDS, env=_WORKER_ENV)


def warm(refiner_class, workers: int) -> None:
    """Start the worker processes now (imports, GL context) without waiting for them."""
    size = pool_size(workers)
    if size > 1:
        pool = executor(size)
        for _ in range(size):
            pool.submit(_warm_worker, refiner_class)


_WORKER = None  # a worker process's own refiner: its GL context lives as long as the process


def _worker_refiner(refiner_class, settings):
    global _WORKER
    if _WORKER is not None and type(_WORKER) is not refiner_class:
        _WORKER.close()
        _WORKER = None
    if _WORKER is None:
        _WORKER = refiner_class(settings, workers=1)
    _WORKER.settings = settings
    return _WORKER


def _warm_worker(refiner_class) -> int:
    from .render_settings import RenderCompareSettings

    _worker_refiner(refiner_class, RenderCompareSettings()).check()
    return os.getpid()


def _run_in_worker(refiner_class, settings, plane, task: ObjectTask):
    refiner = _worker_refiner(refiner_class, settings)
    try:
        return refiner.run_task(task, plane)
    finally:
        refiner._states.clear()


def run_tasks(refiner, tasks: list[ObjectTask], workers: int):
    """Yield (task, ObjectRefinement) as each search ends. A search that fails in a worker
    (the worker died, or anything else went wrong there) is run again in this process."""
    size = pool_size(workers)
    pending = list(tasks)
    if size > 1 and len(tasks) > 1:
        from concurrent.futures import as_completed

        # the objects with the most pixels first: they tend to take longest
        order = sorted(pending, key=lambda t: -int(t.fine.own_pixels) * t.fine.stride**2)
        why, futures = None, {}
        try:
            pool = executor(size)
            futures = {
                pool.submit(_run_in_worker, type(refiner), refiner.settings, refiner._plane, t): t
                for t in order
            }
            for future in as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # searched below, in this process
                    why = (
                        why
                        or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    )
                    continue
                pending.remove(task)
                yield task, result
        except Exception as exc:  # no pool at all (processes cannot be started here)
            why = why or f"{type(exc).__name__}: {exc}"
        finally:
            for future in futures:
                future.cancel()
        if pending:
            warnings.warn(f"render refiner: a worker process failed ({why}); {len(pending)} "
                          "search(es) run in this process instead", stacklevel=2)  # fmt: skip
    for task in pending:
        yield task, refiner.run_task(task, refiner._plane)
