"""Unit tests of the refiners other than render-and-compare (test_render_compare.py): ICP, the
fit refiner, overlap removal, the support plane and its contact terms, scene consistency."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation
from test_render_compare import _asymmetric_mesh, _frame, _yaw

from scenemaker.eval.metrics import add_s
from scenemaker.geometry.points import observed_points
from scenemaker.refine import FitRefiner, IcpRefiner, NoRefiner, OverlapRefiner
from scenemaker.refine.consistency import resolve_interpenetration
from scenemaker.refine.render_settings import ObjectRefinement
from scenemaker.refine.support import SupportPlane, contact_terms, estimate_support_plane
from scenemaker.scene import Pose


@pytest.fixture(scope="module")
def chair_frame():
    chair = _asymmetric_mesh()
    size = 0.8
    height = size / 2 * (chair.bounds[1, 1] - chair.bounds[0, 1]) / 2
    observation, poses = _frame(chair, Pose(_yaw(35), np.array([0.0, height, 0.0]), size))
    points = observed_points(observation.depth, observation.K, observation.masks[0], 512)
    return chair, observation, poses[0], points


def _error(mesh, pose, true):
    return add_s(np.asarray(mesh.vertices), (pose.R, pose.t, pose.s), (true.R, true.t, true.s))


def test_no_refiner_returns_the_poses(chair_frame):
    chair, observation, true, points = chair_frame
    assert NoRefiner().refine([true], [chair], [points], observation) == [true]


def test_icp_refiner_pulls_a_nearby_pose_in(chair_frame):
    chair, observation, true, points = chair_frame
    off = Rotation.from_euler("y", 6, degrees=True).as_matrix()
    start = Pose(off @ true.R, true.t + np.array([0.03, 0.0, -0.02]), true.s)
    (refined,) = IcpRefiner().refine([start], [chair], [points], observation)
    assert _error(chair, refined, true) < 0.75 * _error(chair, start, true)


def test_fit_refiner_recovers_a_quarter_turn(chair_frame):
    chair, observation, true, points = chair_frame
    # the fit refiner tries headings about the up axis: a pose turned by 90 degrees comes back
    turned = Pose(
        Rotation.from_rotvec(true.R[:, 1] * np.pi / 2).as_matrix() @ true.R, true.t, true.s
    )
    (refined,) = FitRefiner(seed=0).refine([turned], [chair], [points], observation)
    assert _error(chair, refined, true) < 0.3 * _error(chair, turned, true)
    assert _error(chair, refined, true) < 0.05


def test_overlap_refiner_separates_interpenetrating_boxes():
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    a = Pose(np.eye(3), np.array([0.0, 0.0, 3.0]), 0.5)
    b = Pose(np.eye(3), np.array([0.2, 0.0, 3.0]), 0.5)  # boxes 0.25 wide: 0.05 overlap in x
    pts = [a.apply(np.asarray(box.vertices)), b.apply(np.asarray(box.vertices))]
    moved = OverlapRefiner().refine([a, b], [box, box], pts)
    gap = moved[1].t[0] - moved[0].t[0]
    assert gap >= 0.25 * (1 - OverlapRefiner().tolerance) - 1e-6
    # boxes apart already stay where they are
    far = Pose(np.eye(3), np.array([2.0, 0.0, 3.0]), 0.5)
    kept = OverlapRefiner().refine([a, far], [box, box], pts)
    np.testing.assert_allclose(kept[1].t, far.t)


def test_support_plane_of_the_floor(chair_frame):
    chair, observation, true, _ = chair_frame
    plane = estimate_support_plane(observation.depth, observation.K, observation.masks)
    assert plane is not None
    # the floor's normal (world +y) in the camera frame: the chair's up axis (it stands upright)
    up = true.R[:, 1]
    assert abs(plane.normal @ up) > 0.99 and plane.offset > 0
    # no background depth: no plane
    empty = np.zeros_like(observation.depth)
    assert estimate_support_plane(empty, observation.K, observation.masks) is None


def test_contact_terms_penetration_and_gap():
    plane = SupportPlane(np.array([0.0, 1.0, 0.0]), 0.0, 100)  # y = 0, camera side up
    cube = np.asarray(trimesh.creation.box((1.0, 1.0, 1.0)).sample(400, seed=0)) * 2  # [-1, 1]
    sizes = np.array([0.4, 0.4, 0.4])

    def posed(y):
        return cube * 0.2 + np.array([0.0, y, 0.0])

    resting, floating, sunk = posed(0.2), posed(0.3), posed(0.1)
    pen, gap = contact_terms(np.stack([resting, floating, sunk]), sizes, plane)
    assert pen[0] < 1e-6 and gap[0] < 0.02
    assert gap[1] == pytest.approx(0.1 / 0.4, abs=0.02) and pen[1] == 0
    assert pen[2] == pytest.approx(0.1 / 0.4, abs=0.02) and gap[2] == 0


def test_consistency_moves_the_less_confident_object_out():
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    a = Pose(np.eye(3), np.array([0.0, 0.0, 3.0]), 0.5)
    b = Pose(np.eye(3), np.array([0.0, 0.0, 3.175]), 0.5)  # 0.075 deep into a (0.25 wide)
    details = [
        ObjectRefinement(a, score=0.1, confidence=0.9),
        ObjectRefinement(b, score=0.1, confidence=0.2),
    ]
    notes = resolve_interpenetration(details, [box, box], lambda k, pose: 0.1)
    assert notes and notes[0].startswith("object 1 moved")
    assert details[0].pose is a  # the confident one stays
    assert details[1].pose.t[2] > b.t[2]  # pushed away from the camera along its ray
    # when moving would cost too much on the image, nothing moves
    details = [
        ObjectRefinement(a, score=0.1, confidence=0.9),
        ObjectRefinement(b, score=0.1, confidence=0.2),
    ]
    costly = {id(b): 0.1}
    notes = resolve_interpenetration(details, [box, box], lambda k, pose: costly.get(id(pose), 1.0))
    assert notes == [] and details[1].pose is b
