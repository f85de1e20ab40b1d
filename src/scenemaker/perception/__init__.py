"""Scene perception: instance masks, metric depth and intrinsics from one image."""

from .base import DepthEstimator, Masks, PointMap, Segmenter
from .inputs import (
    UserDepth,
    UserMasks,
    load_image,
    load_user_depth,
    load_user_masks,
    parse_intrinsics,
    scale_intrinsics,
    write_label_png,
)

__all__ = [
    "DepthEstimator",
    "Masks",
    "PointMap",
    "Segmenter",
    "UserDepth",
    "UserMasks",
    "load_image",
    "load_user_depth",
    "load_user_masks",
    "parse_intrinsics",
    "scale_intrinsics",
    "write_label_png",
]
