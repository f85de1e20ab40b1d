"""Object sources: where the meshes of synthetic scenes come from.

A source lists object ids per split and loads each as an :class:`ObjectAsset` whose mesh is
canonical (centred on its box centre, longest box side spanning [-1, 1], +y up, front +z).
Splits are by object, deterministic, and stable when objects are added: an object's split is a
function of its id alone (a hash), so train / val / test never share an object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


class MeshError(ValueError):
    """A mesh that cannot be read or is degenerate (no area, NaN vertices)."""


@dataclass
class ObjectAsset:
    """One canonical object and what a dataset must record about it."""

    object_id: str
    """Unique within its source, stable across runs, e.g. ``"chair_0003"``."""
    label: str
    """Category name (open vocabulary); ``"object"`` when the source has none."""
    mesh: object
    """Canonical ``trimesh.Trimesh`` (see module docstring)."""
    source: str
    """Name of the source, e.g. ``"procedural"``."""
    licence: str
    """Licence of the mesh (SPDX id or short text)."""
    size_range: tuple[float, float] = (0.3, 1.0)
    """Plausible longest box side once placed in a scene, metres (min, max)."""
    color: tuple[float, float, float] | None = None
    """Suggested base colour (linear RGB in [0, 1]); None lets the renderer choose."""
    extra: dict = field(default_factory=dict)
    """Source-specific provenance (original file path, URL, ...)."""


def split_of(object_id: str, source: str) -> str:
    """Deterministic split of an object from a hash of ``source/object_id``."""
    digest = hashlib.sha1(f"{source}/{object_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "little") / 2**64
    if u < SPLIT_FRACTIONS["train"]:
        return "train"
    if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"]:
        return "val"
    return "test"


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


class ObjectSource:
    """Base class. Subclasses set ``name`` and implement :meth:`all_ids` and :meth:`load`."""

    name: str = "base"
    licence: str = "unknown"

    def all_ids(self) -> list[str]:
        raise NotImplementedError

    def ids(self, split: str) -> list[str]:
        """Object ids of one split, sorted."""
        check_split(split)
        return sorted(i for i in self.all_ids() if split_of(i, self.name) == split)

    def load(self, object_id: str) -> ObjectAsset:
        """Load one object; raises :class:`MeshError` if its mesh is unreadable or degenerate."""
        raise NotImplementedError


def validate_mesh(mesh, name: str):
    """Return a cleaned single ``trimesh.Trimesh`` or raise :class:`MeshError` naming ``name``."""
    import trimesh

    if isinstance(mesh, trimesh.Scene):
        geometries = [g for g in mesh.dump() if isinstance(g, trimesh.Trimesh)]
        if not geometries:
            raise MeshError(f"{name}: no triangle geometry")
        mesh = trimesh.util.concatenate(geometries)
    if not isinstance(mesh, trimesh.Trimesh):
        raise MeshError(f"{name}: not a triangle mesh ({type(mesh).__name__})")
    vertices = np.asarray(mesh.vertices)
    if len(vertices) == 0 or len(mesh.faces) == 0:
        raise MeshError(f"{name}: empty mesh")
    if not np.isfinite(vertices).all():
        raise MeshError(f"{name}: NaN or infinite vertex coordinates")
    visual = mesh.visual.copy() if mesh.visual is not None and mesh.visual.defined else None
    # colours and textures stay with the mesh (the renderer shows them; seams keep their uv)
    mesh = trimesh.Trimesh(vertices=vertices, faces=np.asarray(mesh.faces), visual=visual,
                           process=True)  # fmt: skip
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0 or not mesh.area > 1e-12:
        raise MeshError(f"{name}: degenerate mesh (no surface area)")
    if float(np.ptp(mesh.vertices, axis=0).max()) <= 1e-9:
        raise MeshError(f"{name}: degenerate mesh (zero extent)")
    return mesh
