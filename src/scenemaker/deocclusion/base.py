"""De-occlusion stage: the object crop convention, typed output and protocol.

Crop convention (ARCHITECTURE.md, the paper's ratio): a square around the visible mask's
box, the box's longer side filling ``ratio`` (0.7) of the square, resized to ``size`` (512)
pixels; pixels outside the visible mask are white. Parts of the square outside the image
are white too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

CROP_SIZE = 512
BOX_RATIO = 0.7


@dataclass
class ObjectCrop:
    image: np.ndarray  # (S, S, 3) uint8 RGB, white outside the visible mask
    visible_mask: np.ndarray  # (S, S) bool
    box: tuple[float, float, float, float]  # the square's (x0, y0, x1, y1) in image pixels
    label: str = "object"

    def to_image_coords(self, xy: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates -> source image pixel coordinates."""
        x0, y0, x1, _ = self.box
        scale = (x1 - x0) / self.image.shape[1]
        return np.asarray(xy, dtype=np.float64) * scale + np.array([x0, y0])


@dataclass
class AmodalCrop:
    image: np.ndarray  # (S, S, 3) uint8 RGB: the completed object on white
    mask: np.ndarray  # (S, S) bool: the completed (amodal) silhouette
    crop: ObjectCrop  # what it was completed from
    method: str = "none"


def make_crop(
    image: np.ndarray,
    mask: np.ndarray,
    label: str = "object",
    size: int = CROP_SIZE,
    ratio: float = BOX_RATIO,
) -> ObjectCrop:
    """Square crop of one object (see module docstring). ``mask``: (H, W) bool, non-empty."""
    from PIL import Image

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}, image {image.shape[:2]}")
    if not mask.any():
        raise ValueError("mask is empty: nothing to crop")
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(y1 - y0, x1 - x0) / ratio
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    white = np.where(mask[..., None], image, 255).astype(np.uint8)
    crop = Image.fromarray(white).transform(
        (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.BILINEAR,
        fillcolor=(255, 255, 255),
    )  # fmt: skip
    crop_mask = Image.fromarray(mask.astype(np.uint8) * 255).transform(
        (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.NEAREST, fillcolor=0
    )
    visible = np.asarray(crop_mask) > 127
    out = np.asarray(crop).copy()
    out[~visible] = 255
    return ObjectCrop(out, visible, tuple(float(b) for b in box), label)


class Deoccluder(Protocol):
    name: str

    def complete(self, crop: ObjectCrop) -> AmodalCrop:
        """Complete the occluded parts of the object in ``crop`` (white = unknown)."""
        ...
