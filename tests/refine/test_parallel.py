"""Objects searched side by side in worker processes (refine/parallel.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trimesh
from test_render_compare import _asymmetric_mesh, _frame, _yaw

from scenemaker.geometry.canonical import canonicalize_mesh
from scenemaker.refine import parallel
from scenemaker.refine.render_compare import RenderCompareRefiner
from scenemaker.scene import Pose


@pytest.fixture(scope="module")
def three_objects():
    chair = _asymmetric_mesh()
    box = canonicalize_mesh(trimesh.creation.box((1.0, 0.6, 0.7)))[0]
    cone = canonicalize_mesh(trimesh.creation.cone(0.4, 1.0, sections=12))[0]
    height = 0.8 / 2 * (chair.bounds[1, 1] - chair.bounds[0, 1]) / 2
    observation, truth = _frame(
        chair, Pose(_yaw(35), np.array([0.0, height, 0.0]), 0.8), size=(192, 144),
        extra=[(box, Pose(_yaw(-20), np.array([0.75, 0.1, -0.3]), 0.35)),
               (cone, Pose(np.eye(3), np.array([-0.7, 0.22, -0.2]), 0.45))],
    )  # fmt: skip
    # starts off by a turn and a size error, as the pose model's samples would be
    starts = [Pose(t.R @ _yaw(40), t.t + 0.03, t.s * 1.15) for t in truth]
    return observation, [chair, box, cone], starts


def _refine(workers, observation, meshes, starts):
    refiner = RenderCompareRefiner(seed=0, workers=workers)
    try:
        return refiner.refine_detailed(starts, meshes, observation, [[s] for s in starts])
    finally:
        refiner.close()


def _same(a, b):
    assert [r.note for r in a] == [r.note for r in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.pose.R, y.pose.R) and np.array_equal(x.pose.t, y.pose.t)
        assert x.pose.s == y.pose.s and x.score == y.score and x.renders == y.renders


def test_worker_processes_find_the_poses_one_process_finds(three_objects):
    one = _refine(1, *three_objects)
    two = _refine(2, *three_objects)
    _same(one, two)
    assert all(r.score is not None and r.score < 0.2 for r in one)
    # the searches did run elsewhere: the pool holds two live processes other than this one
    pids = {pid for pid in parallel.executor(2)._processes}
    assert len(pids) == 2 and os.getpid() not in pids


class _KillsItsReader(trimesh.Trimesh):
    """A mesh whose copy kills the process that unpickles it (a worker that dies mid-frame)."""

    def __reduce__(self):
        return (os._exit, (3,))


class _FailsInItsReader(trimesh.Trimesh):
    """A mesh whose copy raises in the process that unpickles it (anything else going wrong)."""

    def __reduce__(self):
        return (int, ("not a number",))


@pytest.mark.parametrize("hostile_mesh", [_KillsItsReader, _FailsInItsReader])
def test_a_failing_worker_hands_its_objects_back(three_objects, hostile_mesh):
    observation, meshes, starts = three_objects
    expected = _refine(1, observation, meshes, starts)
    refiner = RenderCompareRefiner(seed=0, workers=2)
    original = parallel.make_tasks

    def hostile(*args, **kw):
        results, tasks = original(*args, **kw)
        mesh = tasks[0].mesh
        tasks[0].mesh = hostile_mesh(mesh.vertices, mesh.faces, process=False)
        return results, tasks

    try:
        parallel.make_tasks = hostile
        with pytest.warns(UserWarning, match="run in this process instead"):
            got = refiner.refine_detailed(starts, meshes, observation, [[s] for s in starts])
    finally:
        parallel.make_tasks = original
        refiner.close()
    _same(expected, got)
    _same(expected, _refine(2, observation, meshes, starts))  # the pool starts afresh


def test_bad_worker_count_is_refused_by_name():
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers must be an integer >= 0"):
            RenderCompareRefiner(workers=bad)


def test_the_candidate_mesh_that_explains_the_view_is_chosen(three_objects):
    """A wrong first mesh (a box where the chair stands) and the right one as an alternative:
    the refiner places the alternative; objects with one candidate are left as they were."""
    observation, meshes, starts = three_objects
    box = canonicalize_mesh(trimesh.creation.box((1.0, 1.0, 0.3)))[0]
    flat = trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 2]])  # no area: never a candidate
    refiner = RenderCompareRefiner(seed=0)
    try:
        got = refiner.refine_detailed(
            starts, [box, *meshes[1:]], observation, [[s] for s in starts],
            alternatives=[[meshes[0], flat], [], []],
        )  # fmt: skip
    finally:
        refiner.close()
    one = _refine(1, observation, meshes, starts)
    assert got[0].mesh_choice == 1 and set(got[0].mesh_scores) == {0, 1}
    assert got[0].mesh_scores[1] < got[0].mesh_scores[0] and got[0].score == got[0].mesh_scores[1]
    _same(one[:1], got[:1])  # the chair's search, whichever list it came from
    assert got[1].mesh_choice is None and got[2].mesh_choice is None
    assert got[0].to_dict()["mesh_choice"] == 1
    # a broken first mesh: the usable alternative is searched and placed
    refiner = RenderCompareRefiner(seed=0, workers=1)
    try:
        (only,) = refiner.refine_detailed(starts[:1], [flat], _first(observation), [starts[:1]],
                                          alternatives=[[meshes[0]]])  # fmt: skip
    finally:
        refiner.close()
    assert only.mesh_choice == 1 and only.note is None and only.score < 0.2


def _first(observation, n=1):
    from scenemaker.pose.estimator import Observation

    return Observation(observation.depth, observation.K, observation.masks[:n])


def test_a_warm_pool_keeps_its_size_for_frames_with_fewer_searches(three_objects):
    """warm() starts the pool early; a frame with fewer searches than workers neither resizes
    nor restarts it (that would block on the warm-up and warn)."""
    import warnings

    observation, meshes, starts = three_objects
    two = _first(observation, 2)
    expected = _refine(1, two, meshes[:2], starts[:2])
    refiner = RenderCompareRefiner(seed=0, workers=3)
    try:
        refiner.warm()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = refiner.refine_detailed(starts[:2], meshes[:2], two, [[s] for s in starts[:2]])
    finally:
        refiner.close()
    _same(expected, got)
    assert len(parallel.executor(3)._processes) == 3


def test_choosing_among_failed_and_unscored_candidates():
    from scenemaker.refine.render_settings import ObjectRefinement

    pose = Pose(np.eye(3), np.array([0.0, 0.0, 2.0]), 0.5)
    found = {0: ObjectRefinement(pose, score=float("nan")),
             1: ObjectRefinement(pose, note="search failed: x")}  # fmt: skip
    chosen = parallel.choose_mesh(found)
    assert chosen.mesh_choice == 0  # nothing scored: the first candidate, with its pose
    assert chosen.to_dict()["mesh_scores"] == {"0": None, "1": None}  # valid JSON
    found[1].score = 0.3
    assert parallel.choose_mesh(found).mesh_choice == 1


def test_alternatives_must_match_the_objects(three_objects):
    observation, meshes, starts = three_objects
    with pytest.raises(ValueError, match="1 alternative lists"):
        RenderCompareRefiner(seed=0).refine_detailed(starts, meshes, observation, None,
                                                     alternatives=[[]])  # fmt: skip
