"""The pose model proposes, the refiner verifies: one ``PoseEstimator`` for the whole chain.

``scenemaker run`` runs the same two objects as its pose and refine stages (built by
:func:`scenemaker.backends.build_backend` from the same config), and ``scenemaker eval pose
--methods default`` runs this class on them, so both give the same poses for a frame.
"""

from __future__ import annotations

import time

from .estimator import PoseResult


class ProposeVerifyEstimator:
    """``pose.estimate`` (with its hypothesis pool), then ``refiner.refine_detailed``."""

    def __init__(self, pose, refiner, name: str = "default"):
        self.pose, self.refiner, self.name = pose, refiner, name

    def estimate(self, observation, meshes) -> PoseResult:
        start = time.perf_counter()
        proposed = self.pose.estimate(observation, meshes)
        details = self.refiner.refine_detailed(
            proposed.poses, meshes, observation, proposed.hypotheses
        )
        return PoseResult(
            [d.pose for d in details], proposed.skipped, time.perf_counter() - start,
            proposed.hypotheses, [d.confidence for d in details],
            [getattr(d, "stretch", None) for d in details],
        )  # fmt: skip
