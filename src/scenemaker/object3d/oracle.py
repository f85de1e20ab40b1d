"""Oracle: the ground-truth mesh of a synthetic scene's object (``oracle``), for checks.

It isolates the later stages (pose, refine) from generation errors in benchmarks and
ablations. The pipeline puts the ground truth in ``ObjectObservation.extra["gt_mesh"]``; real
photos have none.
"""

from __future__ import annotations

from ..errors import InputError
from .base import CanonicalMesh, ObjectObservation, canonical_mesh


class OracleGenerator:
    """Returns ``observation.extra["gt_mesh"]``, canonicalised."""

    name = "oracle"
    licence = "that of the scene's objects (ground truth)"

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        mesh = (observation.extra or {}).get("gt_mesh")
        if mesh is None:
            raise InputError(
                f"oracle needs ground-truth meshes: only for synthetic scenes "
                f"(object {observation.index} has no extra['gt_mesh'])"
            )
        if not hasattr(mesh, "vertices") or len(mesh.vertices) == 0:
            raise InputError(
                f"extra['gt_mesh'] of object {observation.index} must be a non-empty "
                f"trimesh.Trimesh, got {type(mesh).__name__}"
            )
        return canonical_mesh(mesh, self.name)
