"""Evaluation metrics against slow, obvious references and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from scenemaker.eval.metrics import (
    aabb,
    add_s,
    box_iou,
    box_iou_batched,
    chamfer_distance,
    f_score,
    interpenetration_volume,
    normalize_scene,
    pairwise_interpenetration,
    rotation_error_deg,
    scene_metrics,
    size_error,
    translation_error,
)
from scenemaker.geometry.canonical import canonicalize_mesh
from scenemaker.geometry.sampling import sample_surface

# ----------------------------------------------------------------------------- slow references


def _nearest_ref(p, cloud) -> float:
    return min(math.dist(p, q) for q in cloud)


def _chamfer_ref(a, b) -> float:
    ab = sum(_nearest_ref(p, b) ** 2 for p in a) / len(a)
    ba = sum(_nearest_ref(q, a) ** 2 for q in b) / len(b)
    return ab + ba


def _f_score_ref(a, b, threshold) -> float:
    precision = sum(_nearest_ref(p, b) < threshold for p in a) / len(a)
    recall = sum(_nearest_ref(q, a) < threshold for q in b) / len(b)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _box_iou_ref(box_a, box_b) -> float:
    inter, vol_a, vol_b = 1.0, 1.0, 1.0
    for axis in range(3):
        inter *= max(0.0, min(box_a[1][axis], box_b[1][axis]) - max(box_a[0][axis], box_b[0][axis]))
        vol_a *= box_a[1][axis] - box_a[0][axis]
        vol_b *= box_b[1][axis] - box_b[0][axis]
    return inter / (vol_a + vol_b - inter)


def _normalize_ref(objects):
    points = [p for obj in objects for p in obj]
    lo = [min(p[k] for p in points) for k in range(3)]
    hi = [max(p[k] for p in points) for k in range(3)]
    center = [(lo[k] + hi[k]) / 2 for k in range(3)]
    radius = max(abs(p[k] - center[k]) for p in points for k in range(3))
    return [
        [[(p[k] - center[k]) * 0.95 / radius for k in range(3)] for p in obj] for obj in objects
    ]


def _scene_metrics_ref(pred, gt, threshold=0.1):
    pred_n, gt_n = _normalize_ref(pred), _normalize_ref(gt)
    pred_union = [p for obj in pred_n for p in obj]
    gt_union = [p for obj in gt_n for p in obj]
    per_object = [
        (_normalize_ref([p])[0], _normalize_ref([g])[0]) for p, g in zip(pred, gt, strict=True)
    ]
    boxes = [
        (np.array([np.min(p, 0), np.max(p, 0)]), np.array([np.min(g, 0), np.max(g, 0)]))
        for p, g in zip(pred_n, gt_n, strict=True)
    ]
    return {
        "cd_s": _chamfer_ref(pred_union, gt_union),
        "f_score_s": _f_score_ref(pred_union, gt_union, threshold),
        "cd_o": np.mean([_chamfer_ref(p, g) for p, g in per_object]),
        "f_score_o": np.mean([_f_score_ref(p, g, threshold) for p, g in per_object]),
        "iou_b": np.mean([_box_iou_ref(a, b) for a, b in boxes]),
    }


def _scene(seed: int = 0, count: int = 40):
    rng = np.random.default_rng(seed)
    centers = ([0, 0, 0], [2, 0.5, 0], [0, 0, 1.5], [1.5, -0.5, 1.5])
    return [rng.normal(size=(count, 3)) * [0.5, 0.3, 0.2] + c for c in centers]


# ----------------------------------------------------------------------------- point clouds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chamfer_and_f_score_match_reference(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, size=(37, 3))
    b = rng.uniform(-1, 1, size=(23, 3)) * 1.1
    assert chamfer_distance(a, b) == pytest.approx(_chamfer_ref(a, b), rel=1e-12)
    for threshold in (0.05, 0.2, 0.5):
        assert f_score(a, b, threshold) == pytest.approx(_f_score_ref(a, b, threshold), abs=1e-12)


def test_chamfer_and_f_score_hand_cases():
    a = np.random.default_rng(0).normal(size=(100, 3))
    assert chamfer_distance(a, a) == 0.0
    assert f_score(a, a) == 1.0
    # Two single points 0.5 apart: 0.25 each way.
    assert chamfer_distance([[0, 0, 0]], [[0.5, 0, 0]]) == pytest.approx(0.5)
    # a = {0, 3}, b = {0}: 0 + 9 over two points one way, 0 the other.
    assert chamfer_distance([[0, 0, 0], [3, 0, 0]], [[0, 0, 0]]) == pytest.approx(4.5)
    # Precision 1/2, recall 1 -> F = 2/3.
    assert f_score([[0, 0, 0], [3, 0, 0]], [[0, 0, 0]]) == pytest.approx(2 / 3)


def test_f_score_threshold_edge_is_strict():
    a, b = [[0.0, 0.0, 0.0]], [[0.5, 0.0, 0.0]]
    assert f_score(a, b, threshold=0.5) == 0.0
    assert f_score(a, b, threshold=0.5 + 1e-9) == 1.0
    assert f_score(a, b, threshold=0.5 - 1e-9) == 0.0
    # Precision and recall each drop the point sitting exactly at the threshold: 1/2 and 1.
    two, one = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]], [[0.0, 0.0, 0.0]]
    assert f_score(two, one, threshold=0.5) == pytest.approx(2 / 3)
    assert f_score(one, two, threshold=0.5) == pytest.approx(2 / 3)


def test_normalize_scene_matches_reference_and_fits_range():
    objects = _scene(seed=3, count=15)
    objects[1] = objects[1] * 5.0 + 10.0
    normalized, center, scale = normalize_scene(objects)
    reference = _normalize_ref(objects)
    for got, want in zip(normalized, reference, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    stacked = np.concatenate(normalized)
    assert np.abs(stacked).max() == pytest.approx(0.95)
    np.testing.assert_allclose(stacked.min(0) + stacked.max(0), 0.0, atol=1e-12)
    np.testing.assert_allclose((np.concatenate(objects) - center) * scale, stacked)


# ----------------------------------------------------------------------------- boxes


def test_box_iou_hand_cases():
    unit = np.array([[0, 0, 0], [1, 1, 1]], dtype=float)
    assert box_iou(unit, unit) == 1.0
    assert box_iou(unit, unit + [0.5, 0, 0]) == pytest.approx(1 / 3)
    assert box_iou(unit, unit + [2.0, 0, 0]) == 0.0
    assert box_iou(unit, unit + [1.0, 0, 0]) == 0.0  # touching faces
    assert box_iou(unit, np.array([[0, 0, 0], [2, 2, 2]])) == pytest.approx(1 / 8)
    flat = np.array([[0, 0, 0], [1, 0, 1]], dtype=float)
    assert box_iou(flat, flat) == 1.0
    assert box_iou(flat, flat + [0.5, 0, 0]) == 0.0


def test_box_iou_batched_matches_reference():
    rng = np.random.default_rng(5)
    lo_a, lo_b = rng.uniform(-1, 1, (20, 3)), rng.uniform(-1, 1, (20, 3))
    boxes_a = np.stack([lo_a, lo_a + rng.uniform(0.1, 1.5, (20, 3))], axis=1)
    boxes_b = np.stack([lo_b, lo_b + rng.uniform(0.1, 1.5, (20, 3))], axis=1)
    expected = [_box_iou_ref(a, b) for a, b in zip(boxes_a, boxes_b, strict=True)]
    np.testing.assert_allclose(box_iou_batched(boxes_a, boxes_b), expected, atol=1e-12)
    assert 0 < np.count_nonzero(expected) < 20  # both overlapping and disjoint pairs
    matrix = box_iou_batched(boxes_a[:, None], boxes_b[None, :5])
    assert matrix.shape == (20, 5)
    assert matrix[7, 3] == pytest.approx(_box_iou_ref(boxes_a[7], boxes_b[3]))


def test_aabb():
    points = np.array([[0, 1, 2], [-1, 5, 0], [3, 0, 1]], dtype=float)
    np.testing.assert_array_equal(aabb(points), [[-1, 0, 0], [3, 5, 2]])


# ----------------------------------------------------------------------------- scene protocol


def test_scene_metrics_match_reference():
    gt = _scene(seed=0, count=25)
    rng = np.random.default_rng(9)
    pred = [g + rng.normal(scale=0.05, size=g.shape) + [0.2 * i, 0, 0] for i, g in enumerate(gt)]
    got = scene_metrics(pred, gt)
    want = _scene_metrics_ref(pred, gt)
    assert set(got) == {"cd_s", "f_score_s", "cd_o", "f_score_o", "iou_b"}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert 0 < got["cd_s"] and got["f_score_s"] < 1 and got["iou_b"] < 1


@pytest.mark.parametrize("align", [False, True])
def test_scene_metrics_identical_and_rescaled_scenes_are_perfect(align):
    gt = _scene(seed=1)
    # Normalisation removes one global scale and shift, so this is the same scene.
    pred = [g * 3.0 + [5.0, -2.0, 1.0] for g in gt]
    got = scene_metrics(pred, gt, align=align)
    assert got["cd_s"] == pytest.approx(0.0, abs=1e-20)
    assert got["cd_o"] == pytest.approx(0.0, abs=1e-20)
    assert got["f_score_s"] == got["f_score_o"] == 1.0
    assert got["iou_b"] == pytest.approx(1.0, abs=1e-12)


def test_scene_metrics_object_scores_ignore_pose():
    gt = _scene(seed=2)
    pred = [g + [0.4 * i, 0.0, -0.3 * i] for i, g in enumerate(gt)]
    got = scene_metrics(pred, gt)
    assert got["cd_o"] == pytest.approx(0.0, abs=1e-20) and got["f_score_o"] == 1.0
    assert got["cd_s"] > 1e-3 and got["iou_b"] < 0.9


def test_scene_metrics_alignment_undoes_a_small_rotation():
    gt = _scene(seed=0, count=500)
    rotation = Rotation.from_euler("y", 10, degrees=True).as_matrix()
    pred = [g @ rotation.T for g in gt]
    plain = scene_metrics(pred, gt)
    aligned = scene_metrics(pred, gt, align=True)
    assert aligned["cd_s"] < 0.05 * plain["cd_s"]
    assert aligned["iou_b"] > 0.9 > plain["iou_b"]
    assert aligned["cd_o"] == plain["cd_o"]


# ----------------------------------------------------------------------------- pose errors


def test_rotation_error_known_angles_and_batch():
    quarter = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    assert rotation_error_deg(quarter, np.eye(3)) == pytest.approx(90.0)
    assert rotation_error_deg(np.eye(3), np.eye(3)) == pytest.approx(0.0, abs=1e-6)
    half = Rotation.from_euler("x", 180, degrees=True).as_matrix()
    assert rotation_error_deg(half, np.eye(3)) == pytest.approx(180.0)
    r_a = Rotation.random(8, random_state=0).as_matrix()
    r_b = Rotation.random(8, random_state=1).as_matrix()
    expected = [
        (Rotation.from_matrix(a).inv() * Rotation.from_matrix(b)).magnitude()
        for a, b in zip(r_a, r_b, strict=True)
    ]
    np.testing.assert_allclose(rotation_error_deg(r_a, r_b), np.degrees(expected), atol=1e-6)


def _canonical_samples(mesh, count=20_480):
    canonical, _ = canonicalize_mesh(mesh)
    points, _ = sample_surface(canonical, count, seed=0)
    return points


def test_add_s_is_blind_to_a_symmetry_but_geodesic_error_is_not():
    cylinder = _canonical_samples(trimesh.creation.cylinder(radius=0.5, height=2.0, sections=64))
    spin = Rotation.from_euler("z", 60, degrees=True).as_matrix()  # about the cylinder axis
    pose_gt = (np.eye(3), np.array([1.0, 0.0, 2.0]), 0.8)
    pose_pred = (spin, np.array([1.0, 0.0, 2.0]), 0.8)
    assert add_s(cylinder, pose_pred, pose_gt) < 0.01
    assert rotation_error_deg(spin, np.eye(3)) == pytest.approx(60.0)
    # The same spin on an object without that symmetry is penalised.
    box = _canonical_samples(trimesh.creation.box(extents=(2.0, 1.0, 0.3)))
    assert add_s(box, pose_pred, pose_gt) > 0.05


def test_add_s_matches_reference_and_known_shift():
    rng = np.random.default_rng(4)
    points = rng.uniform(-1, 1, size=(30, 3))
    r_p, r_g = Rotation.random(2, random_state=5).as_matrix()
    pose_pred, pose_gt = (r_p, np.array([0.1, 0, 0]), 1.5), (r_g, np.zeros(3), 2.0)
    posed_pred = [r_p @ (0.75 * x) + pose_pred[1] for x in points]
    posed_gt = [r_g @ (1.0 * x) for x in points]
    expected = np.mean([_nearest_ref(p, posed_pred) for p in posed_gt]) / 2.0
    assert add_s(points, pose_pred, pose_gt) == pytest.approx(expected, rel=1e-12)
    # One point moved by 0.3 on an object of size 2: 0.15.
    single = np.zeros((1, 3))
    shifted = (np.eye(3), np.array([0.0, 0.3, 0.0]), 2.0)
    assert add_s(single, shifted, (np.eye(3), np.zeros(3), 2.0)) == pytest.approx(0.15)


def test_translation_and_size_errors():
    assert translation_error([3.0, 4.0, 0.0], [0.0, 0.0, 0.0], 10.0) == pytest.approx(0.5)
    batch = translation_error(np.zeros((4, 3)), np.eye(4, 3), 2.0)
    np.testing.assert_allclose(batch, [0.5, 0.5, 0.5, 0.0])
    assert size_error(1.5, 1.0) == pytest.approx(0.5)
    assert size_error(0.5, 2.0) == pytest.approx(0.75)
    np.testing.assert_allclose(size_error([1.0, 2.0], [1.0, 1.0]), [0.0, 1.0])


# ----------------------------------------------------------------------------- interpenetration


def _cube(offset=(0.0, 0.0, 0.0)):
    cube = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    cube.apply_translation(offset)
    return cube


@pytest.mark.parametrize("method", ["exact", "monte_carlo", "auto"])
def test_interpenetration_of_unit_cubes(method):
    assert interpenetration_volume(_cube(), _cube((0.5, 0, 0)), method=method) == pytest.approx(0.5)
    assert interpenetration_volume(_cube(), _cube((1.5, 0, 0)), method=method) == 0.0


def test_monte_carlo_agrees_with_manifold_on_spheres():
    sphere_a = trimesh.creation.icosphere(subdivisions=3)
    sphere_b = trimesh.creation.icosphere(subdivisions=3)
    sphere_b.apply_transform(trimesh.transformations.rotation_matrix(0.3, [1, 1, 0]))
    sphere_b.apply_translation((0.9, 0.2, 0.0))
    exact = interpenetration_volume(sphere_a, sphere_b, method="exact")
    estimate = interpenetration_volume(sphere_a, sphere_b, method="monte_carlo", samples=10_000)
    box = np.prod(
        np.minimum(sphere_a.bounds[1], sphere_b.bounds[1])
        - np.maximum(sphere_a.bounds[0], sphere_b.bounds[0])
    )
    hit_rate = exact / box
    standard_error = box * math.sqrt(hit_rate * (1 - hit_rate) / 10_000)
    assert 1.0 < exact < 1.6
    assert abs(estimate - exact) < 4 * standard_error


def test_open_mesh_falls_back_to_monte_carlo():
    closed = trimesh.creation.icosphere(subdivisions=3)
    other = trimesh.creation.icosphere(subdivisions=3)
    other.apply_translation((1.0, 0.0, 0.0))
    exact = interpenetration_volume(closed, other)
    holed = trimesh.Trimesh(closed.vertices, closed.faces[2:], process=False)
    assert not holed.is_watertight
    with pytest.raises(ValueError, match="watertight"):
        interpenetration_volume(holed, other, method="exact")
    assert interpenetration_volume(holed, other) == pytest.approx(exact, rel=0.05)


def test_pairwise_interpenetration():
    meshes = [_cube(), _cube((0.5, 0, 0)), _cube((0.75, 0.5, 0)), _cube((5, 0, 0))]
    total, volumes = pairwise_interpenetration(meshes)
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = 0.5
    expected[0, 2] = expected[2, 0] = 0.25 * 0.5
    expected[1, 2] = expected[2, 1] = 0.75 * 0.5
    np.testing.assert_allclose(volumes, expected, atol=1e-6)
    assert total == pytest.approx(0.5 + 0.125 + 0.375, abs=1e-6)


# ----------------------------------------------------------------------------- validation


def test_bad_input_raises_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="a must have shape"):
        chamfer_distance(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="b must hold"):
        f_score(np.zeros((4, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="threshold"):
        f_score(np.zeros((4, 3)), np.zeros((4, 3)), threshold=0.0)
    with pytest.raises(ValueError, match="points contains NaN"):
        aabb(np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="boxes_b"):
        box_iou_batched(np.zeros((3, 2, 3)), np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="max corner"):
        box_iou(np.array([[1, 1, 1], [0, 0, 0]]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same number of objects"):
        scene_metrics(_scene()[:2], _scene()[:3])
    with pytest.raises(ValueError, match=r"gt_objects\[1\]"):
        scene_metrics(_scene()[:2], [np.zeros((3, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match="pred_objects"):
        scene_metrics(np.zeros((5, 3)), _scene()[:1])
    with pytest.raises(ValueError, match="r_pred"):
        rotation_error_deg(np.eye(4), np.eye(3))
    with pytest.raises(ValueError, match="pose_gt"):
        add_s(np.zeros((4, 3)), (np.eye(3), np.zeros(3), 1.0), (np.eye(3), np.zeros(2), 1.0))
    with pytest.raises(ValueError, match="scene_diagonal"):
        translation_error(np.zeros(3), np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="s_gt"):
        size_error(1.0, 0.0)
    with pytest.raises(ValueError, match="method"):
        interpenetration_volume(_cube(), _cube(), method="voxels")
    with pytest.raises(ValueError, match="mesh_b"):
        interpenetration_volume(_cube(), np.zeros((3, 3)))


def test_cd_o_is_a_shape_measure_when_poses_are_given():
    import trimesh

    from scenemaker.eval.metrics import scene_metrics
    from scenemaker.geometry import yaw_matrix

    box = trimesh.creation.box((2.0, 1.0, 0.6))
    canon = box.sample(4000, seed=0)
    gt_poses = [
        (np.eye(3), np.array([0.0, 0.3, 0.0]), 1.0),
        (yaw_matrix(0.5), np.array([2.0, 0.3, 0.0]), 0.8),
    ]
    # same shapes, rotation of the second object wrong by 45 degrees
    pred_poses = [gt_poses[0], (yaw_matrix(0.5 + np.pi / 4), gt_poses[1][1], 0.8)]
    place = lambda pose: (pose[2] / 2) * canon @ pose[0].T + pose[1]  # noqa: E731
    gt = [place(p) for p in gt_poses]
    pred = [place(p) for p in pred_poses]
    world = scene_metrics(pred, gt)
    shape = scene_metrics(pred, gt, pred_poses=pred_poses, gt_poses=gt_poses)
    assert world["cd_o"] > 0.05  # in scene axes the wrong rotation counts
    assert shape["cd_o"] == pytest.approx(0.0, abs=1e-12) and shape["f_score_o"] == 1.0
    assert shape["cd_s"] == world["cd_s"]  # scene metrics unchanged
