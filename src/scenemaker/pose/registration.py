"""Registration baseline: Open3D FPFH features + RANSAC global registration, then the project's
ICP, with the scale taken from the observed points' box extents (as in the box-fit baseline).

The canonical mesh, scaled to the estimated size, is registered to the observed partial
points of each object independently (no scene reasoning): the classical alternative to the
DiT. Needs ``open3d`` (``pip install 'scenemaker[baselines]'``; Debian needs libusb-1.0-0).
"""

from __future__ import annotations

import time

import numpy as np

from ..scene import Pose
from .baselines import BoxFitEstimator
from .estimator import Observation, PoseResult, prepare_objects


def _open3d():
    try:
        import open3d as o3d
    except ImportError as exc:
        raise ImportError(
            f"the registration baseline needs open3d ({exc}); pip install 'scenemaker[baselines]'"
        ) from None
    return o3d


class RegistrationEstimator:
    name = "registration"

    def __init__(
        self,
        seed: int = 0,
        voxel_fraction: float = 0.05,
        ransac_iterations: int = 100_000,
        icp_iterations: int = 30,
    ):
        self.seed = seed
        self.voxel_fraction = voxel_fraction
        self.ransac_iterations = ransac_iterations
        self.icp_iterations = icp_iterations
        self._box = BoxFitEstimator(seed)

    def _features(self, points: np.ndarray, voxel: float):
        o3d = _open3d()
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        cloud = cloud.voxel_down_sample(voxel)
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        fpfh = o3d.pipelines.registration.compute_fpfh_feature(
            cloud, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100)
        )
        return cloud, fpfh

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        from ..geometry.icp import icp

        o3d = _open3d()
        reg = o3d.pipelines.registration
        o3d.utility.random.seed(self.seed)
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        start = time.perf_counter()
        sizes = self._box.estimate(observation, meshes).poses  # scale from the box extents
        prepared = prepare_objects(
            observation, meshes, num_points=1024, num_canonical=4096, seed=self.seed
        )
        poses: list[Pose | None] = [None] * len(meshes)
        for k, pts, canon in zip(
            prepared.indices, prepared.points, prepared.canonical, strict=True
        ):
            size = sizes[k].s if sizes[k] is not None else 1.0
            model = canon[:, :3] * (size / 2.0)
            voxel = self.voxel_fraction * size
            src, src_f = self._features(model, voxel)
            dst, dst_f = self._features(pts, voxel)
            result = reg.registration_ransac_based_on_feature_matching(
                src,
                dst,
                src_f,
                dst_f,
                True,
                1.5 * voxel,
                reg.TransformationEstimationPointToPoint(False),
                3,
                [
                    reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
                    reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel),
                ],
                reg.RANSACConvergenceCriteria(self.ransac_iterations, 0.999),
            )
            T = np.asarray(result.transformation, dtype=np.float64)
            posed = model @ T[:3, :3].T + T[:3, 3]
            # refine: observed (partial) points onto the posed full model, then invert
            fit = icp(pts, posed, iterations=self.icp_iterations, max_distance=3 * voxel)
            inv = np.linalg.inv(fit.matrix)
            R = inv[:3, :3] @ T[:3, :3]
            t = inv[:3, :3] @ T[:3, 3] + inv[:3, 3]
            u, _, vt = np.linalg.svd(R)  # guard against numerical drift from orthonormal
            poses[k] = Pose(u @ vt, t, size)
        return PoseResult(poses, prepared.skipped, time.perf_counter() - start)
