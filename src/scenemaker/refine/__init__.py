"""Refinement of estimated poses: heading hypotheses + ICP scored on the depth image (fit),
ICP alone, overlap removal."""

from .fit import FitRefiner
from .icp import IcpRefiner, NoRefiner, refine_pose_icp
from .overlap import OverlapRefiner

__all__ = ["FitRefiner", "IcpRefiner", "NoRefiner", "OverlapRefiner", "refine_pose_icp"]
