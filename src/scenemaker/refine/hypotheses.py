"""Rotation hypotheses for render-and-compare: turns about an up axis, resting faces, the
support plane's normal as up, and picking distinct rotations."""

from __future__ import annotations

import numpy as np

from ..scene import Pose

# rotations taking each canonical axis direction onto +y (the resting "faces")
_FACES = {
    "+y": np.eye(3),
    "-y": np.diag([1.0, -1.0, -1.0]),
    "+x": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    "-x": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    "+z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "-z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}


def rotvec_matrices(vectors: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(vectors).as_matrix()


def _yaw(angles: np.ndarray) -> np.ndarray:
    c, s = np.cos(angles), np.sin(angles)
    out = np.zeros((len(angles), 3, 3))
    out[:, 0, 0], out[:, 0, 2], out[:, 1, 1] = c, s, 1.0
    out[:, 2, 0], out[:, 2, 2] = -s, c
    return out


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rotations).as_quat()


def distinct(rotations: np.ndarray, order: np.ndarray, count: int, min_deg: float) -> list:
    """Indices (in ``order``) of up to ``count`` rotations at least ``min_deg`` apart."""
    order = np.asarray(order)
    if len(order) == 0:
        return []
    q = _quaternions(rotations[order])
    # two rotations are within min_deg when |q1 . q2| > cos(min_deg / 2)
    close = np.abs(q @ q.T) > np.cos(np.radians(min_deg) / 2)
    suppressed = np.zeros(len(order), dtype=bool)
    chosen: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        chosen.append(int(order[i]))
        if len(chosen) == count:
            break
        suppressed |= close[i]
    return chosen


def rotation_hypotheses(pool: list[Pose], turns: int, faces: bool, min_deg: float = 5.0):
    """(H, 3, 3) rotations: each pool rotation turned about its up axis, on every face."""
    angles = 2 * np.pi * np.arange(turns) / max(turns, 1)
    yaws = _yaw(angles)
    face_set = list(_FACES.values()) if faces else [_FACES["+y"]]
    out = []
    for pose in pool:
        for Q in face_set:
            out.append(pose.R @ yaws @ Q)
    rotations = np.concatenate(out)
    keep = distinct(rotations, np.arange(len(rotations)), len(rotations), min_deg)
    return rotations[keep]


def align_up(R: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``R`` turned by the smallest rotation that takes the box axis nearest to the plane
    normal (any of the six) onto the normal."""
    axes = R.T @ normal  # the normal in canonical coordinates
    i = int(np.argmax(np.abs(axes)))
    current = R[:, i] * np.sign(axes[i])
    axis = np.cross(current, normal)
    sin, cos = np.linalg.norm(axis), float(np.clip(current @ normal, -1.0, 1.0))
    if sin < 1e-9:
        return R.copy()
    return rotvec_matrices((axis / sin * np.arctan2(sin, cos))[None])[0] @ R


def orthonormal_pose(R, t, s) -> Pose:
    u, _, vt = np.linalg.svd(R)
    R = u @ vt
    if np.linalg.det(R) < 0:
        u[:, -1] *= -1
        R = u @ vt
    return Pose(R, t, float(s))


def _near(R: np.ndarray, others: np.ndarray, min_deg: float) -> np.ndarray:
    """(N,) bool: which rotations ``R`` lie within ``min_deg`` of one of ``others``."""
    from scipy.spatial.transform import Rotation

    q, o = Rotation.from_matrix(R).as_quat(), Rotation.from_matrix(others).as_quat()
    return (np.abs(q @ o.T) > np.cos(np.radians(min_deg) / 2)).any(1)


def same_pose(a: Pose, b: Pose) -> bool:
    """The same pose by value (a pool read back from JSON holds copies, not the objects)."""
    return a is b or (
        np.array_equal(a.R, b.R) and np.array_equal(a.t, b.t) and float(a.s) == float(b.s)
    )


def finite_pose(pose: Pose) -> bool:
    return bool(np.isfinite(pose.R).all() and np.isfinite(pose.t).all() and np.isfinite(pose.s))
