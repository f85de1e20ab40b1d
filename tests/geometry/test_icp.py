"""Umeyama and ICP against independent references and known transforms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenemaker.geometry.icp import IcpResult, icp, umeyama
from scenemaker.geometry.rotations import geodesic_angle
from scenemaker.geometry.transforms import apply_transform


def _similarity(rotation: np.ndarray, translation, scale: float = 1.0) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = scale * rotation
    m[:3, 3] = translation
    return m


def _asymmetric_cloud(count: int = 400, seed: int = 0) -> np.ndarray:
    """An anisotropic, skewed blob plus an off-centre 'handle': no rotational symmetry."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(count, 3)) * [1.0, 0.5, 0.25]
    body[:, 0] += 0.3 * body[:, 1] ** 2
    handle = rng.normal(size=(count // 4, 3)) * 0.1 + [1.5, 0.8, 0.0]
    return np.concatenate([body, handle])


def _horn_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Optimal rotation by Horn's quaternion method (an algorithm independent of the SVD)."""
    x, y = src - src.mean(0), dst - dst.mean(0)
    s = np.zeros((3, 3))
    for a, b in zip(x, y, strict=True):  # slow, obvious accumulation of sum a b^T
        s += np.outer(a, b)
    sxx, sxy, sxz = s[0]
    syx, syy, syz = s[1]
    szx, szy, szz = s[2]
    n = np.array(
        [
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
        ]
    )
    w, v = np.linalg.eigh(n)
    q0, qx, qy, qz = v[:, np.argmax(w)]
    return Rotation.from_quat([qx, qy, qz, q0]).as_matrix()


def test_umeyama_recovers_exact_similarity():
    src = _asymmetric_cloud()
    truth = _similarity(
        Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix(),
        [0.4, -2.0, 3.1],
        scale=1.7,
    )
    dst = apply_transform(src, truth)
    m = umeyama(src, dst, with_scale=True)
    np.testing.assert_allclose(m, truth, atol=1e-10)


def test_umeyama_rigid_matches_horn_and_slow_scale():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    rotation = Rotation.random(random_state=2).as_matrix()
    dst = 0.8 * src @ rotation.T + [1.0, 2.0, 3.0] + rng.normal(scale=0.05, size=src.shape)
    rigid = umeyama(src, dst)
    np.testing.assert_allclose(rigid[:3, :3], _horn_rotation(src, dst), atol=1e-8)
    # With R fixed, the optimal scale is sum_i y_i . R x_i / sum_i |x_i|^2 (slow loop).
    x, y = src - src.mean(0), dst - dst.mean(0)
    num = sum(float(yi @ (rigid[:3, :3] @ xi)) for xi, yi in zip(x, y, strict=True))
    den = sum(float(xi @ xi) for xi in x)
    scaled = umeyama(src, dst, with_scale=True)
    assert np.linalg.det(scaled[:3, :3]) ** (1 / 3) == pytest.approx(num / den, rel=1e-10)
    assert np.linalg.det(scaled[:3, :3]) ** (1 / 3) == pytest.approx(0.8, abs=0.02)


def test_umeyama_returns_proper_rotation_for_mirrored_data():
    src = _asymmetric_cloud(100)
    mirrored = src * [-1.0, 1.0, 1.0]
    m = umeyama(src, mirrored)
    assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)


def test_icp_recovers_small_rigid_transform():
    target = _asymmetric_cloud(800)
    truth = _similarity(
        Rotation.from_euler("xyz", [8, -6, 10], degrees=True).as_matrix(), [0.10, -0.05, 0.08]
    )
    source = apply_transform(target, np.linalg.inv(truth))
    result = icp(source, target, iterations=100)
    assert isinstance(result, IcpResult)
    assert np.degrees(geodesic_angle(result.matrix[:3, :3], truth[:3, :3])) < 0.01
    np.testing.assert_allclose(result.matrix[:3, 3], truth[:3, 3], atol=1e-4)
    assert result.rmse < 1e-5
    assert result.inlier_fraction == 1.0
    assert 1 <= result.iterations < 100


def test_icp_one_round_equals_bruteforce_correspondences():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(60, 3))
    target = rng.normal(size=(80, 3)) * 1.2
    nearest = [int(np.argmin([np.sum((s - t) ** 2) for t in target])) for s in source]
    expected = umeyama(source, target[nearest])
    np.testing.assert_allclose(icp(source, target, iterations=1).matrix, expected, atol=1e-12)


def test_icp_uses_init_and_scale():
    target = _asymmetric_cloud(600)
    truth = _similarity(
        Rotation.from_euler("y", 120, degrees=True).as_matrix(), [2.0, 0.0, -1.0], scale=1.3
    )
    source = apply_transform(target, np.linalg.inv(truth))
    near_truth = _similarity(
        Rotation.from_euler("y", 115, degrees=True).as_matrix(), [1.9, 0.05, -1.0], scale=1.25
    )
    result = icp(source, target, iterations=100, with_scale=True, init=near_truth)
    np.testing.assert_allclose(result.matrix, truth, atol=1e-4)


def test_icp_max_distance_ignores_outliers():
    target = _asymmetric_cloud(600)
    truth = _similarity(Rotation.from_euler("z", 5, degrees=True).as_matrix(), [0.05, 0, 0])
    outliers = np.random.default_rng(4).uniform(-1, 1, size=(150, 3)) + [0.0, 4.0, 0.0]
    source = np.concatenate([apply_transform(target, np.linalg.inv(truth)), outliers])
    robust = icp(source, target, max_distance=0.5)
    plain = icp(source, target)
    err_robust = np.abs(robust.matrix - truth).max()
    assert err_robust < 1e-5
    assert np.abs(plain.matrix - truth).max() > 100 * err_robust
    assert robust.inlier_fraction == pytest.approx(len(target) / len(source))


def test_icp_identical_clouds_stop_after_one_round():
    points = _asymmetric_cloud(100)
    result = icp(points, points, iterations=50)
    np.testing.assert_allclose(result.matrix, np.eye(4), atol=1e-12)
    assert result.rmse < 1e-12
    assert result.iterations == 1


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"source": np.zeros((5, 2)), "target": np.zeros((5, 3))}, "source"),
        ({"source": np.zeros((5, 3)), "target": np.zeros((0, 3))}, "target"),
        ({"source": np.full((5, 3), np.nan), "target": np.zeros((5, 3))}, "source"),
        ({"source": np.zeros((5, 3)), "target": np.zeros((5, 3)), "iterations": 0}, "iterations"),
        ({"source": np.zeros((5, 3)), "target": np.zeros((5, 3)), "init": np.eye(3)}, "init"),
        (
            {"source": np.zeros((5, 3)), "target": np.zeros((5, 3)), "max_distance": 0},
            "max_distance",
        ),
    ],
)
def test_icp_rejects_bad_input(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        icp(**kwargs)


def test_umeyama_rejects_bad_input():
    with pytest.raises(ValueError, match="src"):
        umeyama(np.zeros((4, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="same shape"):
        umeyama(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="dst"):
        umeyama(np.zeros((4, 3)), np.array([[np.inf, 0, 0]] * 4))
    with pytest.raises(ValueError, match="spread"):
        umeyama(np.ones((4, 3)), np.zeros((4, 3)), with_scale=True)
