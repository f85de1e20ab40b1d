"""Boxes: oriented rectangles on the ground plane and axis-aligned 3-D boxes."""

from __future__ import annotations

import numpy as np


def rectangle_corners(center_xz, half_sizes, yaw: float) -> np.ndarray:
    """(4, 2) corners in the xz plane of a rectangle rotated by ``yaw`` about +y.

    Matches :func:`scenemaker.geometry.rotations.yaw_matrix`: a local point (x, z) maps to
    (c x + s z, -s x + c z).
    """
    hx, hz = half_sizes
    local = np.array([[-hx, -hz], [hx, -hz], [hx, hz], [-hx, hz]], dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    world = np.stack([c * local[:, 0] + s * local[:, 1], -s * local[:, 0] + c * local[:, 1]], 1)
    return world + np.asarray(center_xz, dtype=np.float64)


def convex_polygons_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> bool:
    """Separating-axis test for two convex polygons (K, 2); ``margin`` is a required clearance.

    Returns True when no axis separates them by more than ``margin``.
    """
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([-edges[:, 1], edges[:, 0]], 1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        proj_a = a @ normals.T
        proj_b = b @ normals.T
        gap = np.maximum(proj_b.min(0) - proj_a.max(0), proj_a.min(0) - proj_b.max(0))
        if (gap > margin).any():
            return False
    return True
