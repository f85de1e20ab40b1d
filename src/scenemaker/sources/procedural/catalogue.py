"""The category catalogue: builder, size range and colour palette of each category.

:func:`build_mesh` turns one category builder's solid into a watertight ``trimesh`` mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .containers import _bottle, _box, _trash_bin, _watering_can
from .lighting_and_electronics import _floor_lamp, _laptop, _monitor, _table_lamp
from .primitives import _Solid
from .seating_and_beds import _bed, _bench, _chair, _sofa, _stool
from .tables_and_storage import _bookshelf, _cabinet, _desk, _table
from .tableware import _bowl, _cup, _kettle, _mug, _vase
from .toys_and_plants import _potted_plant, _toy_car


def _hex_palette(*codes: str) -> tuple[tuple[float, float, float], ...]:
    """sRGB hex codes to linear RGB."""
    out = []
    for code in codes:
        srgb = np.array([int(code[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        out.append(tuple(float(c) for c in linear))
    return tuple(out)


_WOOD = _hex_palette("8b5a2b", "a0522d", "c19a6b", "6f4e37", "deb887", "5c4033")
_PAINT = _hex_palette("f5f5f0", "2f4f4f", "708090", "1c1c1c", "b0c4de", "8fbc8f")
_FABRIC = _hex_palette("4a6fa5", "8b3a3a", "556b2f", "a9a9a9", "d2b48c", "3c3c5a", "c97b5b")
_CERAMIC = _hex_palette("f2efe6", "c0392b", "2e86c1", "f4d03f", "27ae60", "34495e", "e8a0bf")
_GLASS = _hex_palette("d6eaf8", "a9cce3", "d5f5e3", "f9e79f", "e5e8e8")
_METAL = _hex_palette("c0c0c0", "8c8c8c", "2b2b2b", "b87333", "d4af37")
_PLASTIC = _hex_palette("e74c3c", "3498db", "2ecc71", "f1c40f", "9b59b6", "ecf0f1", "1abc9c")
_DARK = _hex_palette("1a1a1a", "2c2c2c", "3d3d3d", "c8c8c8", "4b4b5a")
_PLANT = _hex_palette("2e7d32", "388e3c", "558b2f", "33691e", "6b8e23")


@dataclass(frozen=True)
class _Category:
    build: Callable[[np.random.Generator], _Solid]
    size_range: tuple[float, float]
    """Longest side in metres once placed."""
    palette: tuple[tuple[float, float, float], ...]


_CATEGORIES: dict[str, _Category] = {
    "chair": _Category(_chair, (0.75, 1.15), _WOOD + _PAINT),
    "stool": _Category(_stool, (0.45, 1.0), _WOOD + _METAL),
    "table": _Category(_table, (0.8, 1.8), _WOOD),
    "desk": _Category(_desk, (1.0, 1.6), _WOOD + _PAINT),
    "bookshelf": _Category(_bookshelf, (0.8, 2.0), _WOOD + _PAINT),
    "sofa": _Category(_sofa, (1.5, 2.4), _FABRIC),
    "bed": _Category(_bed, (1.95, 2.3), _FABRIC + _WOOD),
    "cabinet": _Category(_cabinet, (0.8, 2.0), _WOOD + _PAINT),
    "bench": _Category(_bench, (1.0, 1.8), _WOOD + _METAL),
    "mug": _Category(_mug, (0.11, 0.16), _CERAMIC),
    "cup": _Category(_cup, (0.1, 0.24), _GLASS + _CERAMIC),
    "bottle": _Category(_bottle, (0.22, 0.38), _GLASS + _PLASTIC),
    "bowl": _Category(_bowl, (0.12, 0.34), _CERAMIC + _WOOD),
    "vase": _Category(_vase, (0.2, 0.75), _CERAMIC + _GLASS),
    "box": _Category(_box, (0.25, 0.9), _hex_palette("c8a165", "b5895a", "d9c09a") + _PLASTIC),
    "kettle": _Category(_kettle, (0.22, 0.35), _METAL + _CERAMIC),
    "watering_can": _Category(_watering_can, (0.3, 0.5), _METAL + _PLASTIC),
    "trash_bin": _Category(_trash_bin, (0.3, 0.75), _METAL + _PLASTIC + _DARK),
    "monitor": _Category(_monitor, (0.48, 0.72), _DARK),
    "laptop": _Category(_laptop, (0.3, 0.4), _DARK + _METAL),
    "table_lamp": _Category(_table_lamp, (0.33, 0.65), _CERAMIC + _METAL),
    "floor_lamp": _Category(_floor_lamp, (1.35, 1.95), _METAL + _DARK),
    "toy_car": _Category(_toy_car, (0.13, 0.3), _PLASTIC),
    "potted_plant": _Category(_potted_plant, (0.27, 0.85), _PLANT),
}
CATEGORIES: list[str] = list(_CATEGORIES)
"""Category names as they appear in object ids; labels replace ``_`` with a space."""


def build_mesh(category: str, rng: np.random.Generator):
    """One random instance of ``category`` as a ``trimesh.Trimesh`` in metres (not canonical).

    The mesh is watertight, rests on y = 0 (+y up) and faces +z. Raises KeyError for an
    unknown category.
    """
    import trimesh

    if category not in _CATEGORIES:
        raise KeyError(f"unknown procedural category {category!r}; known: {', '.join(CATEGORIES)}")
    solid = _CATEGORIES[category].build(rng).trim_by_plane((0.0, 1.0, 0.0), 0.0)
    # Booleans of nearly touching parts leave needle triangles of zero area, which
    # validate_mesh drops (opening holes); collapsing sub-micrometre features removes them.
    mesh = solid.simplify(1e-6).to_mesh64()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
