"""Deterministic surface sampling."""

from __future__ import annotations

import numpy as np


def sample_surface(mesh, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted uniform samples on a trimesh.Trimesh: (points (count, 3), unit normals)."""
    import trimesh

    if len(mesh.faces) == 0 or mesh.area <= 0:
        raise ValueError("cannot sample the surface of a mesh with no area")
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    normals = np.asarray(mesh.face_normals)[face_index]
    return np.asarray(points, dtype=np.float64), np.asarray(normals, dtype=np.float64)
