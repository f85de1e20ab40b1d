"""One line per object joining every stage's output: ``report.json``'s ``per_object``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .scene import Pose

if TYPE_CHECKING:
    from .stage_outputs import Frame, Object3D, Refinement


@dataclass
class ObjectRecord:
    """Everything the stages decided about one object."""

    index: int
    label: str
    score: float | None
    pixels: int
    mesh_source: str | None
    pose: Pose | None
    confidence: float | None
    skipped: str | None
    note: str | None = None
    stretch: list | None = None  # the refiner's scales of the mesh's axes, if it stretched it
    candidates: int = 1  # candidate meshes the refiner chose among; ``mesh_source`` the chosen

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "label": self.label,
            "detector_score": self.score,
            "visible_pixels": self.pixels,
            "mesh": self.mesh_source,
            "placed": self.pose is not None,
            "confidence": self.confidence,
            "skipped": self.skipped,
            "note": self.note,
            "stretch": self.stretch,
            "mesh_candidates": self.candidates,
        }


def object_records(frame: Frame, meshes: Object3D, refined: Refinement) -> list[ObjectRecord]:
    """One :class:`ObjectRecord` per object of the frame, joining every stage's output."""
    records = []
    for k in range(len(frame)):
        mesh = meshes.meshes[k]
        candidates = [] if mesh is None else [mesh, *mesh.alternatives]
        if candidates and refined.choice(k) < len(candidates):
            mesh = candidates[refined.choice(k)]  # the one the refiner chose
        detail = refined.records[k] or {}
        scores = detail.get("mesh_scores")  # the candidates the refiner did search
        searched = len(scores) if isinstance(scores, dict) and scores else 1
        records.append(
            ObjectRecord(
                k, frame.labels[k], frame.scores[k], int(frame.masks[k].sum()),
                None if mesh is None else mesh.source, refined.poses[k], refined.confidences[k],
                refined.skipped.get(k), detail.get("note"), refined.stretch(k),
                searched,
            )
        )  # fmt: skip
    return records
