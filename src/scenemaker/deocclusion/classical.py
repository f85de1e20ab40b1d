"""De-occlusion without learned weights: a geometric amodal guess filled by OpenCV inpainting.

The amodal region is estimated from the visible mask alone (and, when the crop carries one,
from where other objects could hide this one):

1. *Closing* with a disk whose diameter is ``closing_ratio`` of the visible box's longer side
   bridges thin cracks, e.g. where a pole or a table leg crosses the object.
2. The *convex hull* of the closed mask is the candidate region: occluders cut bites and
   bands out of an object's outline, and the hull puts back everything up to the chord
   across each cut. The hull lies inside the visible box, so the region never grows past the
   box (and never reaches the crop border, which sits 15% of the side beyond the box);
   objects cut by the image border are not extended beyond it (nothing to extrapolate from).
3. How much of the hull is accepted:
   - with ``crop.occluder_mask`` (other objects' pixels): only hull pixels that are behind an
     occluder (the occluder mask grown by ``occluder_slack`` of the box side, because
     neighbouring masks rarely touch exactly) are added to the closed mask. An unoccluded
     object keeps its own outline, concavities included.
   - without it: the whole hull when the closed mask fills at least ``min_solidity`` of it
     (a compact object with pieces missing), else only the closed mask (a genuinely
     non-convex object, e.g. a chair, whose hull would fill background between its parts).

Pixels inside the amodal region but outside the visible mask are filled with Telea's
fast-marching inpainting from the visible pixels only (white background never bleeds in);
everything outside the region stays white. Deterministic.
"""

from __future__ import annotations

import numpy as np

from .base import AmodalCrop, ObjectCrop, validate_crop


class NoDeocclusion:
    """Pass-through: the crop as it is, amodal mask = visible mask."""

    name = "none"

    def complete(self, crop: ObjectCrop) -> AmodalCrop:
        validate_crop(crop)
        mask = np.asarray(crop.visible_mask, dtype=bool).copy()
        return AmodalCrop(np.asarray(crop.image).copy(), mask, crop, method=self.name)


class ClassicalDeoccluder:
    """Convex-hull amodal estimate + OpenCV Telea inpainting (see module docstring)."""

    name = "classical"

    def __init__(
        self,
        closing_ratio: float = 0.05,
        min_solidity: float = 0.7,
        occluder_slack: float = 0.02,
        inpaint_radius: int = 5,
    ):
        for arg, value in (("closing_ratio", closing_ratio), ("occluder_slack", occluder_slack)):
            if not 0 <= value < 1:
                raise ValueError(f"{arg} must be in [0, 1), got {value}")
        if not 0 <= min_solidity <= 1:
            raise ValueError(f"min_solidity must be in [0, 1], got {min_solidity}")
        if inpaint_radius < 1:
            raise ValueError(f"inpaint_radius must be >= 1 pixel, got {inpaint_radius}")
        self.closing_ratio = closing_ratio
        self.min_solidity = min_solidity
        self.occluder_slack = occluder_slack
        self.inpaint_radius = int(inpaint_radius)

    def amodal_mask(self, visible: np.ndarray, occluders: np.ndarray | None = None) -> np.ndarray:
        """(S, S) bool amodal estimate from the (S, S) visible mask; it contains ``visible``."""
        import cv2

        visible = np.asarray(visible, dtype=bool)
        rows, cols = np.nonzero(visible)
        if rows.size == 0:
            raise ValueError("visible mask is empty: nothing to complete")
        box_side = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1

        closed = _close(visible, _odd(self.closing_ratio * box_side)) | visible
        hull = np.zeros(visible.shape, np.uint8)
        points = cv2.findNonZero(closed.astype(np.uint8))
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        hull = hull.astype(bool) | closed  # the polygon fill can miss a few boundary pixels

        if occluders is not None:
            occluders = np.asarray(occluders, dtype=bool)
            if occluders.shape != visible.shape:
                raise ValueError(f"occluders has shape {occluders.shape}, visible {visible.shape}")
            slack = _odd(2 * self.occluder_slack * box_side + 1)
            behind = cv2.dilate(occluders.astype(np.uint8), _disk(slack)) > 0
            return closed | (hull & behind)
        if closed.sum() >= self.min_solidity * hull.sum():
            return hull | visible
        return closed

    def complete(self, crop: ObjectCrop) -> AmodalCrop:
        import cv2

        validate_crop(crop)
        image = np.asarray(crop.image)
        visible = np.asarray(crop.visible_mask, dtype=bool)
        amodal = self.amodal_mask(visible, crop.occluder_mask)
        hidden = amodal & ~visible

        out = np.full_like(image, 255)
        out[visible] = image[visible]
        if hidden.any():
            # inpaint inside a window around the region: every non-visible pixel there is
            # unknown, so the fill comes from the object's pixels only, never from the white
            rows, cols = np.nonzero(amodal)
            pad = self.inpaint_radius + 1
            y0, x0 = max(rows.min() - pad, 0), max(cols.min() - pad, 0)
            y1, x1 = rows.max() + pad + 1, cols.max() + pad + 1
            window = np.ascontiguousarray(image[y0:y1, x0:x1])
            unknown = (~visible[y0:y1, x0:x1]).astype(np.uint8) * 255
            filled = cv2.inpaint(window, unknown, self.inpaint_radius, cv2.INPAINT_TELEA)
            region = hidden[y0:y1, x0:x1]
            out[y0:y1, x0:x1][region] = filled[region]
        return AmodalCrop(out, amodal, crop, method=self.name)


def _odd(size: float) -> int:
    return max(int(round(size)) // 2 * 2 + 1, 1)


def _disk(size: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _close(mask: np.ndarray, size: int) -> np.ndarray:
    """Morphological closing that treats everything beyond the array as background."""
    import cv2

    if size <= 1:
        return mask.copy()
    pad = size  # padding keeps the closing from sticking the object to the array border
    padded = np.pad(mask.astype(np.uint8), pad)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, _disk(size))
    return closed[pad:-pad, pad:-pad] > 0
