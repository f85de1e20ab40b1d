"""Procedural everyday objects: CSG shapes built from their id alone (our own, CC0).

Each category builder draws proportions and part choices from a numpy ``Generator`` and returns
one manifold3d solid in metres, standing on y = 0 with +y up and its front towards +z. Parts
overlap by a few millimetres (or meet at a hinge bead) so the union is one connected watertight
body; hollow objects (mug, bowl, vase, box, ...) are carved with a boolean difference.
:class:`ProceduralSource` seeds the generator from a hash of the object id, then validates and
canonicalises the mesh (``scenemaker.geometry.canonical``).

Modules: ``primitives`` (the shared solid helpers every builder uses), the builders by theme
(``seating_and_beds``, ``tables_and_storage``, ``tableware``, ``containers``,
``lighting_and_electronics``, ``toys_and_plants``), ``catalogue`` (category sizes, palettes and
:func:`build_mesh`) and ``source`` (ids, seeds and :class:`ProceduralSource`).
"""

from .catalogue import CATEGORIES, build_mesh
from .source import ProceduralSource, parse_object_id, seed_of

__all__ = ["CATEGORIES", "ProceduralSource", "build_mesh", "parse_object_id", "seed_of"]
