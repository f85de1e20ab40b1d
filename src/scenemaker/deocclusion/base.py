"""De-occlusion stage: the object crop convention, typed output and protocol.

Crop convention (ARCHITECTURE.md, the paper's ratio): a square around the visible mask's
box, the box's longer side filling ``ratio`` (0.7) of the square, resized to ``size`` (512)
pixels; pixels outside the visible mask are white. Parts of the square outside the image
are white too.

Optionally a crop also records where the object *may* be hidden (``occluder_mask``: other
objects' visible masks, mapped into the crop). The paper's model does not need it; the
classical backend uses it to grow the object only behind something.
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
    occluder_mask: np.ndarray | None = None  # (S, S) bool: other objects' pixels; None: unknown

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
    occluders: np.ndarray | None = None,
) -> ObjectCrop:
    """Square crop of one object (see module docstring). ``mask``: (H, W) bool, non-empty.

    ``occluders``: optional (H, W) bool, the pixels of other objects that may be in front of
    this one (e.g. the union of the other visible masks); stored as ``occluder_mask``.
    """
    from PIL import Image

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}, image {image.shape[:2]}")
    if not mask.any():
        raise ValueError("mask is empty: nothing to crop")
    if occluders is not None:
        occluders = np.asarray(occluders, dtype=bool)
        if occluders.shape != mask.shape:
            raise ValueError(f"occluders has shape {occluders.shape}, mask {mask.shape}")
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
    occluder_mask = None
    if occluders is not None:
        crop_occluders = Image.fromarray((occluders & ~mask).astype(np.uint8) * 255).transform(
            (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.NEAREST,
            fillcolor=0,
        )  # fmt: skip
        occluder_mask = (np.asarray(crop_occluders) > 127) & ~visible
    return ObjectCrop(out, visible, tuple(float(b) for b in box), label, occluder_mask)


def validate_crop(crop: ObjectCrop) -> int:
    """Check an ObjectCrop handed to a backend; returns its side S. Raises ValueError."""
    image = np.asarray(crop.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"crop.image must be (S, S, 3) uint8 RGB, got {image.shape} {image.dtype}")
    side = image.shape[0]
    if image.shape[1] != side:
        raise ValueError(f"crop.image must be square, got {image.shape[:2]}")
    visible = np.asarray(crop.visible_mask)
    if visible.shape != (side, side):
        raise ValueError(f"crop.visible_mask has shape {visible.shape}, image ({side}, {side})")
    if not visible.any():
        raise ValueError("crop.visible_mask is empty: nothing to complete")
    if crop.occluder_mask is not None and np.shape(crop.occluder_mask) != (side, side):
        raise ValueError(
            f"crop.occluder_mask has shape {np.shape(crop.occluder_mask)}, image ({side}, {side})"
        )
    return side


class Deoccluder(Protocol):
    name: str

    def complete(self, crop: ObjectCrop) -> AmodalCrop:
        """Complete the occluded parts of the object in ``crop`` (white = unknown)."""
        ...


def occluders_in_front(masks: list, k: int, depth: np.ndarray) -> np.ndarray:
    """Pixels of other objects in front of object ``k``: nearer than most of its own pixels
    (all other objects' pixels where depth is unknown)."""
    others = np.zeros_like(masks[k])
    for j, m in enumerate(masks):
        if j != k:
            others |= m
    own = depth[masks[k] & (depth > 0)]
    if own.size == 0:
        return others
    far = np.percentile(own, 90)
    return others & ((depth <= 0) | (depth < far))
