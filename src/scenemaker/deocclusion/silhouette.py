"""Silhouette of an object drawn on a white background (a de-occlusion model's output).

The amodal mask of a completed crop is read back from the image itself: everything that is
not (near) white is object. Generated images carry faint specks and small white highlights,
so the raw threshold is cleaned: small enclosed holes are filled and only the object's own
connected components are kept.
"""

from __future__ import annotations

import numpy as np

WHITE_THRESHOLD = 240  # a pixel with every channel >= this counts as background
MIN_COMPONENT_RATIO = 0.2  # components smaller than this fraction of the largest are specks
MAX_HOLE_RATIO = 0.05  # enclosed white holes up to this fraction of the object's area are filled


def foreground_mask(
    image: np.ndarray,
    white_threshold: int = WHITE_THRESHOLD,
    seed_mask: np.ndarray | None = None,
    min_component_ratio: float = MIN_COMPONENT_RATIO,
    max_hole_ratio: float = MAX_HOLE_RATIO,
) -> np.ndarray:
    """(H, W) bool silhouette of the object in ``image`` ((H, W, 3) uint8 RGB on white).

    Pixels with any channel below ``white_threshold`` are foreground. Enclosed background
    holes no larger than ``max_hole_ratio`` of the foreground area are filled. Components are
    then kept if they touch ``seed_mask`` ((H, W) bool, e.g. the visible mask the image was
    completed from); without a seed, or when no component touches it, the largest component
    is kept together with every component at least ``min_component_ratio`` of its size.
    An all-white image gives an all-False mask.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if not 0 < white_threshold <= 255:
        raise ValueError(f"white_threshold must be in (0, 255], got {white_threshold}")
    if seed_mask is not None:
        seed_mask = np.asarray(seed_mask, dtype=bool)
        if seed_mask.shape != image.shape[:2]:
            raise ValueError(f"seed_mask has shape {seed_mask.shape}, image {image.shape[:2]}")

    foreground = np.any(image < white_threshold, axis=-1)
    if not foreground.any():
        return foreground
    foreground = fill_holes(foreground, max_area=max_hole_ratio * foreground.sum())

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        foreground.astype(np.uint8), connectivity=8
    )
    areas = stats[1:, cv2.CC_STAT_AREA]  # label 0 is the background
    keep = np.zeros(count, dtype=bool)
    if seed_mask is not None:
        # one pixel of slack: a model's edge and the visible mask's edge rarely coincide
        touching = cv2.dilate(seed_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        keep[np.unique(labels[touching & foreground])] = True
    if not keep.any():
        keep[1:] = areas >= min_component_ratio * areas.max()
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray, max_area: float | None = None) -> np.ndarray:
    """Fill the background regions of ``mask`` that do not reach the image border.

    ``max_area``: only holes with at most this many pixels are filled (None: all of them).
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~mask).astype(np.uint8), connectivity=4
    )
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    is_hole = np.ones(count, dtype=bool)
    is_hole[border] = False
    if max_area is not None:
        is_hole &= stats[:, cv2.CC_STAT_AREA] <= max_area
    is_hole[0] = False  # label 0 is the object itself
    return mask | is_hole[labels]
