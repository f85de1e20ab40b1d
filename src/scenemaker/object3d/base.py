"""Object-generation stage: what a generator sees, what it returns, and the protocol.

Every returned mesh is canonical (ARCHITECTURE.md): centred on its box centre, longest box
side spanning [-1, 1], +y up, +z front. ``canonical_mesh`` enforces it for any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..scene import Pose


@dataclass
class ObjectObservation:
    """What the pipeline knows about one object before its mesh exists."""

    index: int
    label: str
    mask: np.ndarray  # (H, W) bool visible mask in the input image
    points: np.ndarray  # (N, 3) observed points, OpenCV camera frame, metres (may be empty)
    K: np.ndarray  # (3, 3) intrinsics of the input image
    extra: dict = field(default_factory=dict)  # e.g. "gt_mesh" / "gt_pose" for the oracle


@dataclass
class CanonicalMesh:
    mesh: object  # trimesh.Trimesh, canonical frame
    source: str  # backend name
    initial_pose: Pose | None = None  # camera-frame placement when the backend knows one
    textured: bool = False
    alternatives: list = field(default_factory=list)
    """Other candidate meshes for the object (CanonicalMesh each, next best first): the refine
    stage keeps whichever explains the photo best (``--mesh-candidates``)."""


def canonical_mesh(mesh, source: str, in_camera_frame: bool = False) -> CanonicalMesh:
    """Canonicalise any mesh a backend produced.

    ``in_camera_frame``: the mesh is already placed in the camera frame (metres), e.g. lifted
    from the observed points; its placement is kept as ``initial_pose`` (rotation identity,
    since the canonical frame is then the camera's axes)."""
    from ..geometry.canonical import canonicalize_mesh

    canon, transform = canonicalize_mesh(mesh)
    textured = getattr(getattr(mesh, "visual", None), "kind", None) == "texture"
    pose = None
    if in_camera_frame:  # transform = scale 2/extent, then shift: invert it as a Pose
        extent = 2.0 / transform[0, 0]
        centre = -transform[:3, 3] / transform[0, 0]
        pose = Pose(np.eye(3), centre, extent)
    return CanonicalMesh(canon, source, pose, textured)


class ObjectGenerator(Protocol):
    name: str

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        """``amodal``: the object's :class:`~scenemaker.deocclusion.AmodalCrop`."""
        ...
