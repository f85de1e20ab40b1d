"""Render-and-compare: the batched candidate renderer, the score, the search, confidence and
bad input, on synthetic frames rendered here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from scenemaker.eval.metrics import add_s
from scenemaker.geometry.canonical import canonicalize_mesh
from scenemaker.pose.estimator import Observation
from scenemaker.refine.render_compare import (
    RenderCompareRefiner,
    RenderCompareSettings,
    confidence,
    rotation_hypotheses,
)
from scenemaker.refine.scoring import ScoreSettings, crop_observation, score_depths
from scenemaker.render.candidates import CandidateRenderer, crop_intrinsics, pose_matrices
from scenemaker.render.scene import RenderObject, SceneRenderer
from scenemaker.scene import Camera, Pose
from scenemaker.synth.cameras import look_at


def _asymmetric_mesh():
    """A chair-like shape: seat, back on one side, one leg at a corner: no symmetry."""
    seat = trimesh.creation.box((1.0, 0.15, 0.8))
    back = trimesh.creation.box((1.0, 0.9, 0.12))
    back.apply_translation((0.0, 0.5, -0.34))
    leg = trimesh.creation.box((0.15, 0.6, 0.15))
    leg.apply_translation((0.4, -0.35, 0.3))
    post = trimesh.creation.box((0.3, 0.6, 0.1))
    post.apply_translation((-0.3, -0.35, -0.3))
    return canonicalize_mesh(trimesh.util.concatenate([seat, back, leg, post]))[0]


def _yaw(deg):
    return Rotation.from_euler("y", deg, degrees=True).as_matrix()


def _frame(mesh, world_pose: Pose, size=(160, 128), extra=()):
    """Render ``mesh`` (and ``extra`` (mesh, pose) pairs) on a floor; returns the observation
    and the camera-frame poses."""
    w, h = size
    camera = Camera.from_fov(np.radians(55), w, h, look_at([1.2, 1.3, 2.4], [0.0, 0.3, 0.0]))
    objects, poses = [], []
    for k, (m, p) in enumerate([(mesh, world_pose), *extra]):
        objects.append(RenderObject(p.apply(m.vertices), m.faces, k + 2, (0.6, 0.4, 0.3)))
        R = camera.world_to_camera[:3, :3]
        poses.append(Pose(R @ p.R, R @ p.t + camera.world_to_camera[:3, 3], p.s))
    renderer = SceneRenderer(w, h)
    try:
        renderer.set_scene(objects)
        view = renderer.render(camera, with_amodal=False)
    finally:
        renderer.release()
    masks = [view.instance == k + 2 for k in range(len(objects))]
    return Observation(view.depth, camera.K, masks), poses


@pytest.fixture(scope="module")
def chair():
    return _asymmetric_mesh()


@pytest.fixture(scope="module")
def scene(chair):
    size = 0.8
    height = size / 2 * (chair.bounds[1, 1] - chair.bounds[0, 1]) / 2
    pose = Pose(_yaw(35), np.array([0.0, height, 0.0]), size)
    return _frame(chair, pose)


@pytest.fixture(scope="module")
def candidates():
    r = CandidateRenderer(max_batch=16)
    yield r
    r.release()


def test_many_batches_give_what_one_batch_at_a_time_gives(chair):
    """11 poses in batches of 4 (the last one short) in one call equal the same batches in
    separate calls, and single renders up to float rounding (the tile grid differs)."""
    K = np.array([[60.0, 0, 23.5], [0, 60.0, 19.5], [0, 0, 1]])
    R = Rotation.random(11, random_state=5).as_matrix()
    M = pose_matrices(R, np.tile([0.0, 0.0, 2.5], (11, 1)), np.full(11, 0.8))
    batched = CandidateRenderer(max_batch=4, max_tile=64)
    single = CandidateRenderer(max_batch=1, max_tile=64)
    try:
        for r in (batched, single):
            r.set_mesh(chair.vertices, chair.faces)
        together = batched.render(K, M, 48, 40)
        apart = np.concatenate([batched.render(K, M[i : i + 4], 48, 40) for i in (0, 4, 8)])
        alone = np.stack([single.render(K, m[None], 48, 40)[0] for m in M])
    finally:
        batched.release()
        single.release()
    assert (together > 0).any(1).any(1).all()  # every pose drew something
    np.testing.assert_array_equal(together, apart)
    assert ((together > 0) != (alone > 0)).sum() <= 11
    both = (together > 0) & (alone > 0)
    np.testing.assert_allclose(together[both], alone[both], atol=1e-5)


def test_candidate_tiles_match_full_renders(chair, candidates):
    """Every candidate of a batch, in its tile of a crop, equals a full render of that pose."""
    w, h = 96, 80
    K = np.array([[90.0, 0, 47.0], [0, 90.0, 39.5], [0, 0, 1]])
    rng = np.random.default_rng(0)
    poses = [
        Pose(Rotation.random(random_state=i).as_matrix(), [*rng.uniform(-0.1, 0.1, 2), 2.0], 0.7)
        for i in range(5)
    ]
    candidates.set_mesh(chair.vertices, chair.faces)
    x0, y0, stride = 6, 4, 2
    tw, th = (w - x0 + stride - 1) // stride, (h - y0 + stride - 1) // stride
    M = pose_matrices([p.R for p in poses], [p.t for p in poses], [p.s for p in poses])
    tiles = candidates.render(crop_intrinsics(K, x0, y0, stride), M, tw, th)
    full = SceneRenderer(w, h, near=0.01)
    try:
        for p, tile in zip(poses, tiles, strict=True):
            full.set_scene([RenderObject(p.apply(chair.vertices), chair.faces, 2, (1, 1, 1))],
                           floor=False)  # fmt: skip
            depth = full.render(Camera(K, np.eye(4), w, h), with_amodal=False).depth
            expected = depth[y0::stride, x0::stride]
            assert ((tile > 0) != (expected > 0)).sum() <= 2  # a pixel or two on edges
            both = (tile > 0) & (expected > 0)
            assert np.abs(tile[both] - expected[both]).max() < 1e-3
    finally:
        full.release()


def test_true_pose_scores_better_than_perturbed_and_turned_copies(chair, scene, candidates):
    observation, truth = scene
    pose = truth[0]
    crop = crop_observation(observation.depth, observation.K, observation.masks[0],
                            np.zeros_like(observation.masks[0]), max_tile=64)  # fmt: skip
    rng = np.random.default_rng(1)
    others = []
    for _ in range(24):  # small random perturbations of rotation, translation and size
        dR = Rotation.from_rotvec(rng.normal(0, 1, 3) / np.sqrt(3) * np.radians(8)).as_matrix()
        others.append(Pose(dR @ pose.R, pose.t + rng.normal(0, 0.04, 3) * pose.s,
                           pose.s * np.exp(rng.normal(0, 0.08))))  # fmt: skip
    up = pose.R[:, 1]
    for deg in (90, 180, 270):  # turned copies about the object's up axis
        turn = Rotation.from_rotvec(up * np.radians(deg)).as_matrix()
        others.append(Pose(turn @ pose.R, pose.t, pose.s))
    every = [pose, *others]
    candidates.set_mesh(chair.vertices, chair.faces)
    z = candidates.render(
        crop.K, pose_matrices([p.R for p in every], [p.t for p in every], [p.s for p in every]),
        crop.tile_w, crop.tile_h,
    )  # fmt: skip
    scores = score_depths(z, np.array([p.s for p in every]), crop, ScoreSettings())["score"]
    assert scores[0] < 0.05
    assert (scores[1:] > scores[0]).all(), scores


def test_refiner_recovers_a_turned_resized_start(chair, scene):
    observation, truth = scene
    pose = truth[0]
    up = pose.R[:, 1]
    start = Pose(Rotation.from_rotvec(up * np.radians(100)).as_matrix() @ pose.R,
                 pose.t + np.array([0.05, -0.03, 0.1]), pose.s * 1.25)  # fmt: skip
    refiner = RenderCompareRefiner(seed=0)
    try:
        (result,) = refiner.refine_detailed([start], [chair], observation, [[start]])
    finally:
        refiner.close()
    samples = chair.sample(2048, seed=0)
    error = add_s(samples, (result.pose.R, result.pose.t, result.pose.s), (pose.R, pose.t, pose.s))
    assert error < 0.02, error
    assert abs(result.pose.s / pose.s - 1) < 0.04
    assert result.score < 0.1 and 0.0 <= result.confidence <= 1.0
    assert result.alternatives and all("score" in a for a in result.alternatives)


def test_the_size_ladder_is_narrower_for_a_mesh_that_is_not_the_objects_own(chair, scene):
    observation, truth = scene
    tried = {}
    for stretch in (False, True):
        settings = RenderCompareSettings(seed=0, stretch=stretch, rescue_score=None, steps=1,
                                         stretch_rounds=1, sizes=(0.5, 1.0, 2.0),
                                         stretch_sizes=(1.0,))  # fmt: skip
        refiner = RenderCompareRefiner(settings)
        refiner.trace = []
        try:
            (result,) = refiner.refine_detailed([truth[0]], [chair], observation, [[truth[0]]])
        finally:
            refiner.close()
        assert result.pose is not None
        tried[stretch] = len(refiner.trace[0]["size_s"])  # rotations carried x size factors
    assert tried[False] == 3 * tried[True] > 0


def test_confidence_is_lower_when_the_mesh_does_not_explain_the_view(chair, scene):
    observation, truth = scene
    wrong = trimesh.creation.icosphere(subdivisions=2)  # a ball for a chair
    refiner = RenderCompareRefiner(seed=0)
    try:
        good = refiner.refine_detailed([truth[0]], [chair], observation)[0]
        bad = refiner.refine_detailed([truth[0]], [wrong], observation)[0]
    finally:
        refiner.close()
    assert bad.score > good.score
    assert good.confidence > 0.5 > bad.confidence


def test_confidence_drops_when_a_distinct_pose_scores_as_well():
    samples = np.random.default_rng(0).uniform(-1, 1, (256, 3)) * [1.0, 0.3, 0.6]
    best = Pose(np.eye(3), [0, 0, 2], 1.0)
    far = Pose(_yaw(90), [0, 0, 2], 1.0)
    alone = confidence(0.05, best, [{"pose": far, "score": 0.6}], samples)
    rival = confidence(0.05, best, [{"pose": far, "score": 0.06}], samples)
    assert alone > 0.5 and rival < 0.25 * alone


def test_hypotheses_cover_turns_and_resting_faces():
    R = rotation_hypotheses([Pose(np.eye(3), [0, 0, 2], 1.0)], turns=12, faces=True)
    assert len(R) == 72
    ups = np.round(R[:, :, 1] @ np.array([0, 1.0, 0]), 6)  # where the canonical up goes
    assert set(ups) == {-1.0, 0.0, 1.0}  # upright, on a side, upside down


def test_bad_input_keeps_a_valid_pose_with_the_reason(chair, scene):
    observation, truth = scene
    degenerate = trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 2]], process=False)
    nan_pose = Pose(np.eye(3), [0, 0, 2], 1.0)
    nan_pose.t = np.array([np.nan, 0, 2])  # a NaN that slipped through
    behind = Pose(np.eye(3), [0.0, 0.0, -3.0], 0.8)  # behind the camera: renders nothing
    tiny = Observation(observation.depth, observation.K, [np.zeros_like(observation.masks[0])])
    tiny.masks[0][60, 70:73] = True  # three pixels
    refiner = RenderCompareRefiner(seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (deg,) = refiner.refine_detailed([truth[0]], [degenerate], observation)
            (nan,) = refiner.refine_detailed([nan_pose], [chair], observation, [[nan_pose]])
            (back,) = refiner.refine_detailed([behind], [chair], observation)
            (few,) = refiner.refine_detailed([truth[0]], [chair], tiny)
    finally:
        refiner.close()
    assert deg.pose is truth[0] and "area" in deg.note
    assert nan.pose is None and nan.note == "no pose hypothesis"
    assert back.pose is not None and np.isfinite(back.pose.t).all() and back.pose.t[2] > 0
    assert few.pose is truth[0] and "observed points" in few.note


def test_objects_on_their_side_and_stacked_are_found(chair):
    """Nothing assumes upright objects on one floor: a chair on its back with a box on it."""
    size = 0.8
    extents = chair.bounds[1] - chair.bounds[0]
    lying = Rotation.from_euler("x", -90, degrees=True).as_matrix()  # canonical +z up
    height = size / 2 * extents[2] / 2
    chair_pose = Pose(_yaw(20) @ lying, np.array([0.0, height, 0.0]), size)
    box = canonicalize_mesh(trimesh.creation.box((1.0, 0.6, 0.7)))[0]
    box_pose = Pose(_yaw(-30), np.array([0.05, 2 * height + 0.3 * 0.3 / 1.0 + 0.001, 0.0]), 0.3)
    observation, truth = _frame(chair, chair_pose, extra=[(box, box_pose)])
    # the pool is upright, as the pose model would propose for an unusual pose
    pool = [[Pose(np.eye(3) @ t.R @ lying.T, t.t, t.s)] for t in truth[:1]] + [[truth[1]]]
    refiner = RenderCompareRefiner(seed=0)
    try:
        out = refiner.refine_detailed([p[0] for p in pool], [chair, box], observation, pool)
    finally:
        refiner.close()
    samples = chair.sample(2048, seed=0)
    p, g = out[0].pose, truth[0]
    assert add_s(samples, (p.R, p.t, p.s), (g.R, g.t, g.s)) < 0.03


def test_settings_round_trip():
    s = RenderCompareSettings(score={"gap_weight": 0.25}, sizes=[0.9, 1.1])
    assert s.score.gap_weight == 0.25 and s.sizes == (0.9, 1.1)
    assert RenderCompareSettings(**{**s.to_dict(), "score": s.to_dict()["score"]}) == s


def test_pose_and_refinement_do_not_need_synth():
    """Inference renders with scenemaker.render; the data generator (synth) stays unloaded."""
    import subprocess
    import sys

    code = """
import sys, numpy as np, trimesh, warnings
warnings.simplefilter("ignore")
from scenemaker.eval.pose_benchmark import default_chain
from scenemaker.pose.estimator import Observation
from scenemaker.render.scene import RenderObject, SceneRenderer
from scenemaker.scene import Camera
w2c = np.eye(4); w2c[:3, :3] = np.diag([1.0, -1.0, -1.0]); w2c[2, 3] = 3.0
camera = Camera(np.array([[120.0, 0, 63.5], [0, 120.0, 47.5], [0, 0, 1]]), w2c, 128, 96)
box = trimesh.creation.box((1.0, 0.6, 0.4))
r = SceneRenderer(128, 96)
r.set_scene([RenderObject(box.vertices * 0.4 + [0, 0.12, 0], box.faces, 2, (1, 0, 0))])
view = r.render(camera, with_amodal=False)
poses = default_chain().estimate(Observation(view.depth, camera.K, [view.instance == 2]),
                                 [box]).poses
assert poses[0] is not None
assert not any(m.startswith("scenemaker.synth") for m in sys.modules), "synth was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "bad, word",
    [(dict(turns=0), "turns"), (dict(steps=-1), "steps"), (dict(sizes=()), "sizes"),
     (dict(sizes=(1.0, -2.0)), "sizes"), (dict(tile=4), "tiles"), (dict(plane_up="up"), "plane_up"),
     (dict(stretch_sizes=()), "stretch_sizes"), (dict(sizes="x"), "sizes"),
     (dict(score={"box_wieght": 0.5}), "score has no box_wieght"),
     (dict(rotation_sizes=(1.0, 0.0)), "rotation_sizes"), (dict(hidden_sizes=None), "hidden_sizes"),
     (dict(hidden_score=-1.0), "hidden_score"), (dict(precise_tile=4), "precise_tile"),
     (dict(precise_tile="192"), "precise_tile"),
     (dict(precise_iterations=-1), "precise_iterations")],
)  # fmt: skip
def test_bad_settings_are_refused_by_name(bad, word):
    with pytest.raises(ValueError, match=word):
        RenderCompareSettings(**bad)


def test_dense_alignment_converges_from_a_nearby_pose(chair, scene, candidates):
    """Point-to-plane steps with every crop pixel pull a pose a few degrees, centimetres and
    per cent off back onto the observed surface: rotation and size to well under a degree and
    a per cent (perfect depth). A slide along the faces seen leaves the depth unchanged and is
    the silhouette terms' job, so only the depth of the offset is asserted."""
    from scenemaker.eval.metrics import rotation_error_deg
    from scenemaker.refine.alignment import point_to_plane_step, surface_grid

    observation, poses = scene
    true = poses[0]
    empty = np.zeros_like(observation.masks[0])
    crop = crop_observation(observation.depth, observation.K, observation.masks[0], empty, 0.5, 64)
    grid = surface_grid(crop)
    assert grid.valid.sum() > 100
    assert np.allclose(np.linalg.norm(grid.normals[grid.valid], axis=1), 1.0)
    candidates.set_mesh(chair.vertices, chair.faces)
    off = Rotation.from_rotvec(np.radians(4.0) * np.array([0.3, 0.9, 0.3])).as_matrix()
    R, t, s = (off @ true.R)[None], (true.t + np.array([0.02, -0.01, 0.03]))[None], [true.s * 1.04]
    s = np.array(s)

    def depth_error(R, t, s):
        z = candidates.render(crop.K, pose_matrices(R, t, s), crop.tile_w, crop.tile_h)
        both = (z[0] > 0) & grid.valid
        return z, float(np.abs(z[0] - crop.depth)[both].mean())

    z, start = depth_error(R, t, s)
    for _ in range(8):
        R, t, s, moved = point_to_plane_step(z, grid, R, t, s, np.array([0.1 * s[0] + 0.02]))
        z, end = depth_error(R, t, s)
    assert rotation_error_deg(R[0], true.R) < 0.5
    assert abs(s[0] / true.s - 1) < 0.005
    assert end < 0.1 * start
    ray = true.t / np.linalg.norm(true.t)
    assert abs((t[0] - true.t) @ ray) < 0.01 * true.s


def test_the_final_alignment_at_one_sample_per_pixel_removes_sub_percent_errors(chair):
    """The search's crops sample a large object every few pixels; its chosen pose is aligned
    once more at a crop of one sample per image pixel (``precise_tile``, alignment.polish): a
    pose a degree, 1.5 % in size and 1 % of its size in place off comes back to a fraction of
    that, and the true pose is kept (a scene's normalised boxes move with such errors)."""
    from scenemaker.eval.metrics import rotation_error_deg
    from scenemaker.refine.alignment import polish
    from scenemaker.refine.render_compare import _Object

    size = 0.8
    height = size / 2 * (chair.bounds[1, 1] - chair.bounds[0, 1]) / 2
    observation, poses = _frame(chair, Pose(_yaw(35), np.array([0.0, height, 0.0]), size),
                                size=(320, 256))  # fmt: skip
    true = poses[0]
    mask = observation.masks[0]
    crop = crop_observation(observation.depth, observation.K, mask, np.zeros_like(mask), 0.5, 256)
    assert crop.stride == 1
    points = observation.points(0, 256, 0)
    samples = np.asarray(chair.sample(256, seed=0))
    obj = _Object(chair, points, crop, crop, samples, (chair.vertices, chair.faces), crop)
    refiner = RenderCompareRefiner(RenderCompareSettings(precise_tile=256))
    refiner._plane, refiner._others, refiner._obj, refiner._prior = None, None, obj, true.s
    renderer = refiner._get_renderer()
    try:
        renderer.set_mesh(chair.vertices, chair.faces)
        off = Rotation.from_rotvec(np.radians(1.0) * np.array([0.2, 0.9, 0.4])).as_matrix()
        start = Pose(off @ true.R, true.t + 0.01 * size * np.array([0.6, -0.3, 0.7]), 1.015 * size)
        found, renders = polish(refiner, obj, renderer, start)
        kept, _ = polish(refiner, obj, renderer, true)
    finally:
        refiner.close()
    assert renders >= 2
    assert rotation_error_deg(found.R, true.R) < 0.3
    assert abs(found.s / true.s - 1) < 0.004
    assert np.linalg.norm(found.t - true.t) < 0.003 * size
    assert rotation_error_deg(kept.R, true.R) < 0.1 and abs(kept.s / true.s - 1) < 0.001
    assert np.linalg.norm(kept.t - true.t) < 0.001 * size


def test_refiner_reports_progress_per_object(chair, scene):
    observation, poses = scene
    done = []
    refiner = RenderCompareRefiner(RenderCompareSettings(steps=1, turns=4, faces=False))
    try:
        out = refiner.refine_detailed(
            [poses[0]], [chair], observation, on_object=lambda: done.append(1)
        )
    finally:
        refiner.close()
    assert len(out) == 1 and done == [1]


def test_a_badly_fitting_object_gets_the_wider_search(chair):
    """The first search (here told to stay on the pool's face) cannot explain a chair lying on
    its back; its score stays high, so the wider search runs (every face) and wins."""
    size = 0.8
    extents = chair.bounds[1] - chair.bounds[0]
    lying = Rotation.from_euler("x", -90, degrees=True).as_matrix()
    chair_pose = Pose(_yaw(20) @ lying, np.array([0.0, size / 2 * extents[2] / 2, 0.0]), size)
    observation, truth = _frame(chair, chair_pose)
    upright = Pose(truth[0].R @ lying.T, truth[0].t, truth[0].s * 0.8)
    samples = chair.sample(2048, seed=0)
    g = truth[0]
    found = {}
    for rescue in (None, 0.1):
        settings = RenderCompareSettings(
            faces=False, rescue_score=rescue, rescue={"faces": True, "size_floor": 1.0}
        )
        refiner = RenderCompareRefiner(settings)
        try:
            (found[rescue],) = refiner.refine_detailed([upright], [chair], observation, [[upright]])
        finally:
            refiner.close()
    first, wider = found[None], found[0.1]
    assert first.score > 0.1  # the first search alone fails ...
    assert add_s(samples, (first.pose.R, first.pose.t, first.pose.s), (g.R, g.t, g.s)) > 0.05
    p = wider.pose  # ... the wider one finds the chair on its back, and says so
    assert add_s(samples, (p.R, p.t, p.s), (g.R, g.t, g.s)) < 0.03
    assert wider.score < first.score and wider.note == "rescued by the wider search"
    assert wider.renders > first.renders and wider.hypotheses > first.hypotheses


def test_rescue_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="rescue cannot set bogus"):
        RenderCompareSettings(rescue={"bogus": 1})
    with pytest.raises(ValueError, match="^render refiner: rescue: keep must be >= 1, got 0$"):
        RenderCompareSettings(rescue={"keep": 0})


@pytest.mark.parametrize(
    "setting",
    [{"place_tol": 0}, {"size_floor": -1.0}, {"size_floor": float("nan")},
     {"rescue_score": -0.1}, {"local_margin": "x"}, {"pool_exit_score": float("inf")},
     {"stretch_max": 0}, {"stretch_weight": -1}, {"stretch_score": "x"},
     {"stretch_box_weight": -0.5}, {"score": {"box_weight": float("nan")}},
     {"score": {"depth_weight": "x"}}],
)  # fmt: skip
def test_bad_thresholds_are_refused_by_name(setting):
    (name,) = setting
    if name == "score":
        name = f"score.{next(iter(setting['score']))}"
    with pytest.raises(ValueError, match=f"render refiner: {name} must be a number"):
        RenderCompareSettings(**setting)


@pytest.mark.parametrize(
    "setting, expected",
    [({"stretch": "yes"}, "true or false"), ({"stretch_step": (0.1,)}, "two numbers > 0"),
     ({"stretch_step": ("a", 0.1)}, "two numbers > 0"), ({"stretch_hypotheses": 0}, ">= 1"),
     ({"stretch_rounds": -1}, ">= 0")],
)  # fmt: skip
def test_bad_stretch_settings_are_refused_by_name(setting, expected):
    (name,) = setting
    with pytest.raises(ValueError, match=f"^render refiner: {name} must be {expected}"):
        RenderCompareSettings(**setting)


def test_a_stretched_mesh_keeps_its_placement(chair):
    from scenemaker.refine.stretch import apply_stretch, stretch_points

    a = np.array([1.3, 1.0, 0.7])
    stretched, factor = apply_stretch(chair, a)
    extent = stretched.bounds[1] - stretched.bounds[0]
    assert extent.max() == pytest.approx(2.0) and np.allclose(
        stretched.bounds.mean(0), 0, atol=1e-9
    )
    pose = Pose(_yaw(20), [0.1, 0.2, 2.0], 0.8)
    direct = (pose.s / 2) * (chair.vertices * a) @ pose.R.T + pose.t
    placed = Pose(pose.R, pose.t, pose.s * factor).apply(stretched.vertices)
    assert np.allclose(placed, direct, atol=1e-9)
    moved = stretch_points(chair.vertices, chair.bounds[1] - chair.bounds[0], a)
    assert np.allclose(moved, stretched.vertices, atol=1e-9)
    with pytest.raises(ValueError, match="stretch"):
        apply_stretch(chair, [1.0, -1.0, 1.0])


def _box_iou(a, b):
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = np.prod(np.clip(hi - lo, 0, None))
    vol = lambda p: np.prod(p.max(0) - p.min(0))  # noqa: E731
    return inter / (vol(a) + vol(b) - inter)


def test_stretch_fits_a_mesh_of_other_proportions(chair, scene):
    """The observed object is the chair made wider and shallower; given the chair as it is,
    the stretch recovers the proportions (the placed box matches the true one better), and
    the true mesh is left as it is."""
    from scenemaker.refine.stretch import apply_stretch

    a = np.array([1.35, 1.0, 0.75])
    wide, _ = apply_stretch(chair, a)
    size = 0.8
    height = size / 2 * (wide.bounds[1, 1] - wide.bounds[0, 1]) / 2
    observation, truth = _frame(wide, Pose(_yaw(35), np.array([0.0, height, 0.0]), size))
    true_points = truth[0].apply(wide.vertices)
    boxes = {}
    for stretch in (False, True):
        refiner = RenderCompareRefiner(RenderCompareSettings(stretch=stretch, seed=0))
        try:
            (result,) = refiner.refine_detailed([truth[0]], [chair], observation, [[truth[0]]])
        finally:
            refiner.close()
        mesh = chair if result.stretch is None else apply_stretch(chair, result.stretch)[0]
        boxes[stretch] = (_box_iou(result.pose.apply(mesh.vertices), true_points), result)
    assert boxes[False][1].stretch is None
    got = np.asarray(boxes[True][1].stretch)
    ratio = got / got[1]  # the proportions (the overall size is the pose's)
    assert ratio[0] > 1.15 and ratio[2] < 0.95, ratio  # wider and shallower, as observed
    assert boxes[True][0] > boxes[False][0] + 0.05, (boxes[True][0], boxes[False][0])
    assert boxes[True][1].to_dict()["stretch"] == boxes[True][1].stretch
    # the object's own mesh fits as it is: no stretch (or next to none)
    observation, truth = scene
    refiner = RenderCompareRefiner(RenderCompareSettings(stretch=True, seed=0))
    try:
        (own,) = refiner.refine_detailed([truth[0]], [chair], observation, [[truth[0]]])
    finally:
        refiner.close()
    assert own.stretch is None or np.allclose(own.stretch, 1.0, atol=0.05), own.stretch


def test_free_sides_exclude_occluders_and_the_image_border():
    from scenemaker.refine.scoring import box_misfit

    K = np.array([[60.0, 0, 31.5], [0, 60.0, 31.5], [0, 0, 1]])
    depth = np.full((64, 64), 3.0, np.float32)
    own = np.zeros((64, 64), bool)
    own[0:20, 20:40] = True  # cut by the image's top border
    depth[own] = 2.0
    other = np.zeros_like(own)
    other[5:15, 10:20] = True  # nearer, just left of it: may hide its left end
    depth[5:15, 10:20] = 1.5
    other[5:15, 40:50] = True  # just right of it but farther away: hides nothing
    depth[5:15, 40:50] = 2.5
    crop = crop_observation(depth, K, own, other, max_tile=64)
    assert crop.free == (False, True, False, True)  # left, right, top, bottom
    # the silhouette's ends on the free sides: right and bottom
    drawn = np.stack([crop.own, np.roll(crop.own, 3, axis=1), np.zeros_like(crop.own)])
    misfit = box_misfit(drawn, crop)
    span = 19  # the mask's longer side, in crop pixels
    np.testing.assert_allclose(misfit, [0.0, 0.5 * 3 / span, 1.0])


def test_box_term_leaves_the_true_pose_best(chair, scene, candidates):
    observation, truth = scene
    pose = truth[0]
    crop = crop_observation(observation.depth, observation.K, observation.masks[0],
                            np.zeros_like(observation.masks[0]), max_tile=64)  # fmt: skip
    assert all(crop.free)
    every = [pose, *(Pose(pose.R, pose.t, pose.s * f) for f in (0.9, 1.1))]
    candidates.set_mesh(chair.vertices, chair.faces)
    z = candidates.render(
        crop.K, pose_matrices([p.R for p in every], [p.t for p in every], [p.s for p in every]),
        crop.tile_w, crop.tile_h,
    )  # fmt: skip
    sizes = np.array([p.s for p in every])
    plain = score_depths(z, sizes, crop, ScoreSettings())["score"]
    boxed = score_depths(z, sizes, crop, ScoreSettings(box_weight=0.5))["score"]
    assert boxed[0] - plain[0] < 0.01  # the true silhouette ends where the mask does
    assert (boxed[1:] - plain[1:] > 0.01).all()  # a wrong size misses the mask's ends
    # the refiner weighs it only for a mesh that is not the object's own (stretch on)
    for stretch, expected in ((False, plain), (True, boxed)):
        refiner = RenderCompareRefiner(stretch=stretch, stretch_box_weight=0.5)
        refiner._prior, refiner._plane = None, None
        R, t = np.array([p.R for p in every]), np.array([p.t for p in every])
        np.testing.assert_allclose(refiner._score(z, R, t, sizes, crop)["score"], expected)


def test_an_object_hidden_behind_another_is_tried_at_several_sizes(chair, scene):
    """Half a chair hides behind a board: the visible part does not say how big it is, and
    at the pool's size (half the truth) no rotation places well. The third search tries every
    rotation larger too, and the chair is found; a chair seen whole never gets that search."""
    size = 0.8
    height = size / 2 * (chair.bounds[1, 1] - chair.bounds[0, 1]) / 2
    board = canonicalize_mesh(trimesh.creation.box((1.0, 1.0, 0.2)))[0]
    observation, truth = _frame(
        chair, Pose(_yaw(35), np.array([0.0, height, 0.0]), size),
        extra=[(board, Pose(_yaw(-27), np.array([0.3, 0.3, 0.7]), 0.8))],
    )  # fmt: skip
    g = truth[0]
    start = Pose(g.R @ _yaw(25), g.t + np.array([0.05, 0.0, 0.1]), g.s * 0.5)
    samples = chair.sample(2048, seed=0)

    def search(observation, poses, meshes, **settings):
        settings = dict(faces=False, rescue={"faces": False, "seed": 1}, **settings)
        refiner = RenderCompareRefiner(RenderCompareSettings(**settings), workers=1)
        try:
            return refiner.refine_detailed(poses, meshes, observation, [[p] for p in poses])[0]
        finally:
            refiner.close()

    # scores above 0 always get the second search, and the third for a hidden object
    two = search(observation, [start, truth[1]], [chair, board], rescue_score=0.0,
                 hidden_score=None)  # fmt: skip
    three = search(observation, [start, truth[1]], [chair, board], rescue_score=0.0,
                   hidden_score=0.0)  # fmt: skip
    p = three.pose
    assert add_s(samples, (p.R, p.t, p.s), (g.R, g.t, g.s)) < 0.03
    assert three.score < two.score and three.renders > two.renders
    assert three.note == "found by the search at larger sizes (hidden object)"
    # a chair seen whole shows its extent: no third search
    observation, truth = scene
    start = Pose(truth[0].R @ _yaw(25), truth[0].t, truth[0].s * 0.5)
    found = [search(observation, [start], [chair], rescue_score=0.0, hidden_score=h)
             for h in (None, 0.0)]  # fmt: skip
    assert found[0].renders == found[1].renders and found[0].pose.s == found[1].pose.s


def test_depth_shift_is_the_median_depth_gap_over_the_measured_mask_pixels():
    from scenemaker.refine.scoring import CropObservation, depth_shift

    rng = np.random.default_rng(3)
    depth = rng.uniform(1.0, 3.0, (12, 10)).astype(np.float32)
    depth[0, :4] = 0.0  # no depth measured there
    own = np.zeros((12, 10), bool)
    own[:8, :] = True
    crop = CropObservation((0, 0, 10, 12), 1, 10, 12, np.eye(3), depth, own, ~own, int(own.sum()))
    rendered = rng.uniform(1.0, 3.0, (5, 12, 10)).astype(np.float32)
    rendered[rng.random(rendered.shape) < 0.5] = 0.0  # drawn on about half the pixels
    rendered[3] = 0.0  # draws nothing: no shift
    rendered[4, :8] = 0.0  # drawn only outside the mask: no shift
    shift = depth_shift(rendered, crop)
    for k in range(5):
        measured = (rendered[k] > 0) & own & (depth > 0)
        expected = np.median((depth - rendered[k])[measured]) if measured.any() else 0.0
        assert shift[k] == pytest.approx(expected, abs=1e-6)
    assert shift[3] == 0.0 and shift[4] == 0.0 and (shift[:3] != 0).all()


def test_sizes_far_from_the_pose_models_cost_more_the_farther_they_are():
    from scenemaker.refine.scoring import CropObservation

    depth = np.full((8, 8), 2.0, np.float32)
    own = np.zeros((8, 8), bool)
    own[2:6, 2:6] = True
    crop = CropObservation((0, 0, 8, 8), 1, 8, 8, np.eye(3), depth, own, ~own, int(own.sum()))
    rendered = np.where(own, depth, 0.0)[None].repeat(5, 0)  # the same picture each time
    sizes = np.array([1.0, 3.9, 0.26, 6.0, 0.1])
    unbounded = ScoreSettings(size_range=0.0)
    free = score_depths(rendered, sizes, crop, unbounded, prior_size=1.0)["score"]
    assert np.allclose(free, free[0])  # no limit: the picture alone decides
    score = score_depths(rendered, sizes, crop, ScoreSettings(), prior_size=1.0)["score"]
    assert np.allclose(score[:3], free[:3])  # the default: within 4 x either way, as before
    assert score[3] > free[3] + 1 and score[4] > score[3]  # 6 x and 1/10: the farther, the worse
    for bad in (-1.0, 0.5, float("nan"), "4"):
        with pytest.raises(ValueError, match="size_range"):
            RenderCompareSettings(score={"size_range": bad})
