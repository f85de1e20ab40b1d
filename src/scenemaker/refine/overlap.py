"""Remove interpenetration between objects by pushing overlapping boxes apart."""

from __future__ import annotations

import numpy as np

from ..scene import Pose


def _box(pose: Pose, mesh) -> tuple[np.ndarray, np.ndarray]:
    v = pose.apply(np.asarray(mesh.vertices))
    return v.min(0), v.max(0)


class OverlapRefiner:
    """ICP first (optional), then a few rounds separating objects whose axis-aligned boxes
    (camera frame) overlap: each pair moves apart along the axis of least overlap, each by
    half, weighted so that the object with fewer observed points moves more (it is the less
    certain one). Axis-aligned boxes overestimate overlap for rotated objects, so a pair is
    only separated when the overlap is more than ``tolerance`` of the smaller box side."""

    name = "overlap"

    def __init__(self, icp=None, rounds: int = 10, tolerance: float = 0.1):
        self.icp = icp
        self.rounds = rounds
        self.tolerance = tolerance

    def refine(self, poses: list, meshes: list, points: list, observation=None) -> list:
        poses = (
            self.icp.refine(poses, meshes, points, observation)
            if self.icp is not None
            else list(poses)
        )
        live = [k for k, p in enumerate(poses) if p is not None]
        weight = {k: 1.0 / max(len(points[k]) if points[k] is not None else 1, 1) for k in live}
        for _ in range(self.rounds):
            moved = False
            boxes = {k: _box(poses[k], meshes[k]) for k in live}
            for i in live:
                for j in live:
                    if j <= i:
                        continue
                    (lo_i, hi_i), (lo_j, hi_j) = boxes[i], boxes[j]
                    overlap = np.minimum(hi_i, hi_j) - np.maximum(lo_i, lo_j)
                    if np.any(overlap <= 0):
                        continue
                    smaller = min((hi_i - lo_i).min(), (hi_j - lo_j).min())
                    axis = int(np.argmin(overlap))
                    if overlap[axis] < self.tolerance * smaller:
                        continue
                    sign = 1.0 if (lo_i + hi_i)[axis] >= (lo_j + hi_j)[axis] else -1.0
                    wi, wj = weight[i], weight[j]
                    share_i = wi / (wi + wj)
                    step = np.zeros(3)
                    step[axis] = overlap[axis]
                    poses[i] = Pose(poses[i].R, poses[i].t + sign * share_i * step, poses[i].s)
                    poses[j] = Pose(
                        poses[j].R, poses[j].t - sign * (1 - share_i) * step, poses[j].s
                    )
                    boxes[i] = _box(poses[i], meshes[i])
                    boxes[j] = _box(poses[j], meshes[j])
                    moved = True
            if not moved:
                break
        return poses
