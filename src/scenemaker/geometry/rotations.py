"""Rotation helpers (numpy). Rotations are 3x3 matrices acting on column vectors."""

from __future__ import annotations

import numpy as np


def yaw_matrix(angle: float) -> np.ndarray:
    """Rotation by ``angle`` radians about the world up axis (+y), right-handed."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def matrix_to_rot6d(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two rows of R, concatenated (the paper's 6-D form)."""
    rotation = np.asarray(rotation)
    return rotation[..., :2, :].reshape(*rotation.shape[:-2], 6)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two rows, third row = cross product."""
    rot6d = np.asarray(rot6d, dtype=np.float64)
    a, b = rot6d[..., :3], rot6d[..., 3:]
    r1 = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - (r1 * b).sum(-1, keepdims=True) * r1
    r2 = b / np.linalg.norm(b, axis=-1, keepdims=True)
    r3 = np.cross(r1, r2)
    return np.stack([r1, r2, r3], axis=-2)


def geodesic_angle(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
    """Angle in radians of the relative rotation R_a^T R_b; broadcasts over leading axes."""
    rel = np.swapaxes(np.asarray(r_a), -1, -2) @ np.asarray(r_b)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))
