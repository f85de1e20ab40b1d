"""De-occlusion: complete each object's occluded crop before image-to-3D."""

from .base import AmodalCrop, Deoccluder, ObjectCrop, make_crop

__all__ = ["AmodalCrop", "Deoccluder", "ObjectCrop", "make_crop"]
