""":class:`ProceduralSource`: object ids, their stable seeds, clean meshes and colours."""

from __future__ import annotations

import hashlib

import numpy as np

from scenemaker.geometry.canonical import canonicalize_mesh
from scenemaker.sources.base import MeshError, ObjectAsset, ObjectSource, validate_mesh

from .catalogue import _CATEGORIES, CATEGORIES, build_mesh
from .materials import procedural_face_colours


def seed_of(object_id: str, attempt: int = 0) -> int:
    """Stable 64-bit seed of an object id (not Python's salted ``hash``)."""
    key = f"procedural/{object_id}" + (f"#{attempt}" if attempt else "")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


_MAX_ATTEMPTS = 8
"""Draws per id: a rare draw whose parts meet in a degenerate way is replaced by the next
draw of the same id's seed sequence, so ids stay deterministic and every mesh is clean."""


def _is_clean(mesh) -> bool:
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.body_count == 1)


def parse_object_id(object_id: str) -> tuple[str, int]:
    """``"table_lamp_0007"`` -> ``("table_lamp", 7)``; ValueError / KeyError when malformed."""
    if not isinstance(object_id, str):
        raise ValueError(f"object_id must be a string, got {type(object_id).__name__}")
    category, sep, index = object_id.rpartition("_")
    if not sep or len(index) != 4 or not index.isdigit():
        raise ValueError(
            f"malformed procedural object id {object_id!r}; expected '<category>_<4 digits>'"
        )
    if category not in _CATEGORIES:
        raise KeyError(f"unknown procedural category {category!r} in id {object_id!r}")
    return category, int(index)


class ProceduralSource(ObjectSource):
    """Everyday objects generated from CSG primitives; each id builds the same mesh every time."""

    name = "procedural"
    licence = "CC0-1.0"

    def __init__(self, instances_per_category: int = 40):
        if isinstance(instances_per_category, bool) or not isinstance(instances_per_category, int):
            raise ValueError(
                f"instances_per_category must be an int, got {instances_per_category!r}"
            )
        if not 1 <= instances_per_category <= 10_000:
            raise ValueError(
                f"instances_per_category must be in [1, 10000], got {instances_per_category}"
            )
        self.instances_per_category = instances_per_category

    def all_ids(self) -> list[str]:
        return [f"{c}_{i:04d}" for c in CATEGORIES for i in range(self.instances_per_category)]

    def load(self, object_id: str) -> ObjectAsset:
        category, index = parse_object_id(object_id)
        if index >= self.instances_per_category:
            raise KeyError(
                f"{object_id!r} is not in this source (instances_per_category={self.instances_per_category})"
            )
        for attempt in range(_MAX_ATTEMPTS):
            seed = seed_of(object_id, attempt)
            mesh = validate_mesh(build_mesh(category, np.random.default_rng(seed)), object_id)
            if _is_clean(mesh):
                break
        else:
            raise MeshError(f"{object_id}: no clean mesh in {_MAX_ATTEMPTS} draws")
        extent = np.ptp(mesh.vertices, axis=0)
        mesh, _ = canonicalize_mesh(mesh)
        spec = _CATEGORIES[category]
        colour_rng = np.random.default_rng([seed, 1])  # own stream: colour never shifts geometry
        base = np.asarray(spec.palette[int(colour_rng.integers(len(spec.palette)))])
        colour = np.clip(base * colour_rng.uniform(0.8, 1.2) + colour_rng.normal(0, 0.01, 3), 0, 1)
        mesh.visual.face_colors = procedural_face_colours(mesh, colour, colour_rng)
        return ObjectAsset(
            object_id=object_id,
            label=category.replace("_", " "),
            mesh=mesh,
            source=self.name,
            licence=self.licence,
            size_range=spec.size_range,
            color=tuple(float(c) for c in colour),
            extra={"seed": seed, "attempt": attempt, "extent_m": [float(e) for e in extent]},
        )
