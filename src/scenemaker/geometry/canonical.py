"""The canonical object frame: centred on its box centre, longest box side spanning [-1, 1].

Up is +y and front +z (ARCHITECTURE.md, "Conventions"). Sources in other frames (z-up URDF
meshes) rotate into this frame before canonicalisation.
"""

from __future__ import annotations

import numpy as np

Z_UP_TO_Y_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""Rotation taking a z-up frame (x right, y forward, z up) to y-up (x right, y up, z front):
(x, y, z) -> (x, z, -y)."""


def canonical_transform(vertices: np.ndarray) -> np.ndarray:
    """4x4 similarity that maps ``vertices`` into the canonical frame.

    Raises ValueError for empty, non-finite or zero-extent input.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must have shape (N, 3) with N > 0, got {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("vertices contain NaN or infinite values")
    lo, hi = vertices.min(0), vertices.max(0)
    extent = float((hi - lo).max())
    if extent <= 1e-9:
        raise ValueError("vertices have zero extent")
    scale = 2.0 / extent
    m = np.eye(4) * scale
    m[3, 3] = 1.0
    m[:3, 3] = -(lo + hi) / 2.0 * scale
    return m


def canonicalize_mesh(mesh):
    """Return (canonical copy of a trimesh.Trimesh, the 4x4 transform applied)."""
    m = canonical_transform(mesh.vertices)
    out = mesh.copy()
    out.apply_transform(m)
    return out, m
