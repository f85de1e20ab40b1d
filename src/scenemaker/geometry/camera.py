"""Cameras, written once: pixels and camera-frame points (OpenCV axes: x right, y down,
z forward; metres), the flip to OpenGL / glTF camera axes, and depth stored as 16-bit
millimetres."""

from __future__ import annotations

import numpy as np

CV_TO_GL3 = np.diag([1.0, -1.0, -1.0])
"""OpenCV camera axes <-> OpenGL / glTF camera axes (y up, z towards the viewer): flip y, z."""
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
"""The same flip as a 4x4 transform."""
DEPTH_SCALE = 1000.0
"""16-bit depth files hold millimetres: stored value = metres x 1000 (0 = invalid)."""


def depth_to_uint16(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres (rounded); invalid (<= 0 or non-finite) and anything
    beyond 65.535 m -> 0, the one depth encoding of every PNG this project writes."""
    depth = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.rint(depth * DEPTH_SCALE)
    mm[(mm <= 0) | (mm > 65535)] = 0
    return mm.astype(np.uint16)


def depth_from_uint16(mm: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres (0 = invalid)."""
    return np.asarray(mm).astype(np.float32) / DEPTH_SCALE


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
