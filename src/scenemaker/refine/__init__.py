"""Refinement of estimated poses: ICP against the observed points, overlap removal."""

from .icp import IcpRefiner, NoRefiner, refine_pose_icp
from .overlap import OverlapRefiner

__all__ = ["IcpRefiner", "NoRefiner", "OverlapRefiner", "refine_pose_icp"]
