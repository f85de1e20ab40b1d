"""Validation of array arguments at public boundaries (errors name the argument)."""

from __future__ import annotations

import numpy as np


def as_points(name: str, value, min_count: int = 1) -> np.ndarray:
    """An (N, 3) finite float64 array, or a ValueError naming ``name`` and what was expected."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if len(arr) < min_count:
        raise ValueError(f"{name} must hold at least {min_count} point(s), got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def mesh_problem(mesh) -> str | None:
    """Why ``mesh`` cannot be scored, or None."""
    if mesh is None:
        return "no mesh"
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if len(f) == 0 or len(v) == 0:
        return "mesh has no faces"
    if not np.isfinite(v).all():
        return "mesh has non-finite vertices"
    if not mesh.area > 0:
        return "mesh has no area"
    return None
