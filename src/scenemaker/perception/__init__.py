"""Scene perception: instance masks, metric depth and intrinsics from one image."""

from .base import DepthEstimator, Masks, PointMap, Segmenter

__all__ = ["DepthEstimator", "Masks", "PointMap", "Segmenter"]
