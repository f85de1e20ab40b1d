"""Rigid ICP of each posed canonical surface to its observed points (geometry.icp, the
project's one ICP)."""

from __future__ import annotations

import numpy as np

from ..scene import Pose


def refine_pose_icp(
    pose: Pose, mesh, points: np.ndarray, iterations: int = 30, samples: int = 2048, seed: int = 0
) -> Pose:
    """Move ``pose`` rigidly so the posed ``mesh`` surface meets ``points`` (camera frame).

    The observed (partial) points are registered onto the posed full surface, the well-posed
    direction, and the object moves by the inverse; correspondences farther than a quarter of
    the object's size are ignored, so a bad start does not get dragged onto its neighbours."""
    from ..geometry.icp import icp
    from ..geometry.sampling import sample_surface

    canon, _ = sample_surface(mesh, samples, seed=seed)
    fit = icp(points, pose.apply(canon), iterations=iterations, max_distance=0.25 * pose.s)
    inv = np.linalg.inv(fit.matrix)
    return Pose(inv[:3, :3] @ pose.R, inv[:3, :3] @ pose.t + inv[:3, 3], pose.s)


class NoRefiner:
    name = "none"

    def refine(self, poses: list, meshes: list, points: list, observation=None) -> list:
        return list(poses)


class IcpRefiner:
    """Per-object rigid ICP (default 30 rounds); objects without points or pose are kept."""

    name = "icp"

    def __init__(self, iterations: int = 30, seed: int = 0):
        self.iterations = iterations
        self.seed = seed

    def refine(self, poses: list, meshes: list, points: list, observation=None) -> list:
        out = []
        for k, (pose, mesh, pts) in enumerate(zip(poses, meshes, points, strict=True)):
            if pose is None or pts is None or len(pts) < 8:
                out.append(pose)
                continue
            out.append(refine_pose_icp(pose, mesh, pts, self.iterations, seed=self.seed + k))
        return out
