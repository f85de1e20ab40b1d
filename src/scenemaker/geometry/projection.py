"""Pixels and camera-frame points (OpenCV axes: x right, y down, z forward; metres)."""

from __future__ import annotations

import numpy as np


def backproject(depth: np.ndarray, K: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pixels with depth > 0 (inside ``mask``) -> (N, 3) points in the OpenCV camera frame."""
    valid = depth > 0
    if mask is not None:
        valid &= mask
    v, u = np.nonzero(valid)
    z = depth[v, u].astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=1)
