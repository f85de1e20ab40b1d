"""Refinement of estimated poses: render-and-compare over the pose model's hypotheses (the
default), heading hypotheses + ICP scored on the depth image (fit), ICP alone, overlap
removal."""

from .fit import FitRefiner
from .icp import IcpRefiner, NoRefiner, refine_pose_icp
from .overlap import OverlapRefiner
from .render_compare import RenderCompareRefiner, RenderCompareSettings

__all__ = [
    "FitRefiner",
    "IcpRefiner",
    "NoRefiner",
    "OverlapRefiner",
    "RenderCompareRefiner",
    "RenderCompareSettings",
    "refine_pose_icp",
]
