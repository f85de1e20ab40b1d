"""Rigid / similarity transforms as 4x4 matrices."""

from __future__ import annotations

import numpy as np


def pose_matrix(rotation: np.ndarray, translation: np.ndarray, size: float) -> np.ndarray:
    """4x4 matrix of the pose p = R (s/2 * p_canonical) + t."""
    m = np.eye(4)
    m[:3, :3] = np.asarray(rotation, dtype=np.float64) * (float(size) / 2.0)
    m[:3, 3] = np.asarray(translation, dtype=np.float64)
    return m


def apply_transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]
