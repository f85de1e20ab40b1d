"""Classical pose estimators behind the same interface as the DiT (for the benchmark).

* ``BoxFitEstimator``: centre and extent of the observed points, rotation from PCA.
* ``OracleEstimator``: the ground truth (the metrics' ceiling).
* ``DiTIcpEstimator``: the DiT's poses refined by ICP of the posed canonical surface onto
  the observed points (the project's one ICP, :mod:`scenemaker.geometry.icp`).
"""

from __future__ import annotations

import time

import numpy as np

from ..scene import Pose
from .estimator import Observation, PoseResult, prepare_objects


def _principal_axes(points: np.ndarray) -> np.ndarray:
    """Columns: principal axes (largest variance first), right-handed."""
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt.T
    if np.linalg.det(axes) < 0:
        axes[:, 2] *= -1
    return axes


class BoxFitEstimator:
    """Align the canonical mesh's principal axes with the observed points' and match extents.

    Size: the canonical longest side (2) scaled to the observed points' longest extent along
    their principal axes; translation: the centre of that oriented box. Observed points cover
    only the visible side, so sizes and centres are biased: a floor, not a competitor.
    """

    name = "box_fit"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        start = time.perf_counter()
        prepared = prepare_objects(
            observation, meshes, num_points=512, num_canonical=2048, seed=self.seed
        )
        poses: list[Pose | None] = [None] * len(meshes)
        for k, pts, canon in zip(
            prepared.indices, prepared.points, prepared.canonical, strict=True
        ):
            obs_axes = _principal_axes(pts)
            can_axes = _principal_axes(canon[:, :3])
            R = obs_axes @ can_axes.T
            local = (pts - pts.mean(0)) @ obs_axes
            lo, hi = local.min(0), local.max(0)
            center = pts.mean(0) + obs_axes @ ((lo + hi) / 2)
            can_local = canon[:, :3] @ can_axes
            can_extent = (can_local.max(0) - can_local.min(0)).max()
            size = 2.0 * (hi - lo).max() / max(can_extent, 1e-6)
            poses[k] = Pose(R, center, max(size, 1e-3))
        return PoseResult(poses, prepared.skipped, time.perf_counter() - start)


class OracleEstimator:
    """Returns the ground-truth camera-frame poses it was given (``set_ground_truth``)."""

    name = "oracle"

    def __init__(self):
        self._poses: list[Pose] = []

    def set_ground_truth(self, poses: list[Pose]) -> None:
        self._poses = list(poses)

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        if len(self._poses) != len(meshes):
            raise ValueError(f"oracle has {len(self._poses)} poses for {len(meshes)} objects")
        return PoseResult(list(self._poses), {}, 0.0)


class DiTIcpEstimator:
    """DiT poses, each refined by rigid ICP of its posed canonical surface to its points."""

    name = "dit_icp"

    def __init__(self, dit, iterations: int = 30):
        self.dit = dit
        self.iterations = iterations

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        from ..refine.icp import refine_pose_icp

        start = time.perf_counter()
        result = self.dit.estimate(observation, meshes)
        prepared = prepare_objects(
            observation, meshes, num_points=512, num_canonical=8, seed=self.dit.seed
        )
        points = dict(zip(prepared.indices, prepared.points, strict=True))
        refined = list(result.poses)
        for k, pose in enumerate(result.poses):
            if pose is None or k not in points:
                continue
            refined[k] = refine_pose_icp(pose, meshes[k], points[k], self.iterations, seed=k)
        return PoseResult(refined, result.skipped, time.perf_counter() - start)


class FitRefinedEstimator:
    """Any estimator's poses refined by :class:`~scenemaker.refine.fit.FitRefiner` (heading
    hypotheses, ICP, scored on the depth image); ``with_box_fit`` adds the box fit's poses as
    more starting hypotheses."""

    def __init__(self, base, with_box_fit: bool = False, seed: int = 0, name: str | None = None):
        from ..refine.fit import FitRefiner

        self.base = base
        self.name = name or f"{base.name}_fit"
        self.refiner = FitRefiner(
            extra_estimator=BoxFitEstimator(seed=seed) if with_box_fit else None, seed=seed
        )
        self.seed = seed

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        start = time.perf_counter()
        result = self.base.estimate(observation, meshes)
        prepared = prepare_objects(
            observation, meshes, num_points=512, num_canonical=8, seed=self.seed
        )
        points = [None] * len(meshes)
        for k, pts in zip(prepared.indices, prepared.points, strict=True):
            points[k] = pts
        poses = self.refiner.refine(result.poses, meshes, points, observation)
        return PoseResult(poses, result.skipped, time.perf_counter() - start)
