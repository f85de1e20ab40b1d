"""Object generation: one canonical mesh per object from its (de-occluded) crop."""

from .base import CanonicalMesh, ObjectGenerator, ObjectObservation

__all__ = ["CanonicalMesh", "ObjectGenerator", "ObjectObservation"]
