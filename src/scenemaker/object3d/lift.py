"""Lift: a closed mesh from an object's observed points alone (``lift``).

The visible surface is known; the back is not. Each observed point is pushed along its viewing
ray to a back side: the object is assumed as deep (along the viewing direction) as the
smaller of its two visible extents across the image, ``thickness_ratio`` times that, and
never thinner than the relief the points already show. The convex hull of front and back
points is the mesh: closed (watertight) by construction, convex by construction too, so
concave objects (chairs, mugs) come out as their hulls. The mesh is placed where the points
are, so the backend returns its placement as ``initial_pose``.

Frame: the mesh is expressed in camera axes turned upright, x right, y up, z towards the
camera (``CAMERA_TO_UPRIGHT``), so the canonical mesh keeps +y up and its front (the side
seen) at +z; ``initial_pose.R`` is that turn back into the OpenCV camera frame.
"""

from __future__ import annotations

import numpy as np

from ..geometry.camera import CV_TO_GL3
from ..scene import Pose
from .base import CanonicalMesh, ObjectObservation, canonical_mesh

MIN_POINTS = 8
CAMERA_TO_UPRIGHT = CV_TO_GL3
"""OpenCV camera axes (y down, z forward) -> upright axes (y up, z towards the camera)."""


def lift_points(points: np.ndarray, thickness_ratio: float = 1.0):
    """Closed convex ``trimesh.Trimesh`` (camera frame, metres) around the observed points
    and their extruded back side. ValueError for too few or degenerate points."""
    import trimesh
    from scipy.spatial import QhullError

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"observation.points must have shape (N, 3), got {points.shape}")
    points = points[np.isfinite(points).all(1) & (points[:, 2] > 0)]
    if len(points) < MIN_POINTS:
        raise ValueError(
            f"lift needs at least {MIN_POINTS} observed points in front of the camera, "
            f"got {len(points)}"
        )
    rays = points / np.linalg.norm(points, axis=1, keepdims=True)
    view = rays.mean(0)
    view /= np.linalg.norm(view)
    along = points @ view
    across = points - along[:, None] * view
    # visible extents across the viewing direction: principal axes of the projected points
    centred = across - across.mean(0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    spans = np.ptp(centred @ axes[:2].T, axis=0)
    if spans.min() <= 1e-6 * max(spans.max(), 1e-12):
        raise ValueError(
            "lift: the observed points are degenerate (collinear or a single point), "
            "no surface to lift"
        )
    relief = float(np.ptp(along))
    depth = max(thickness_ratio * float(spans.min()), relief)
    back_depth = along.min() + depth
    # push each point along its own ray until it reaches the back plane (at least 10% deeper)
    push = np.maximum(back_depth - along, 0.1 * depth) / np.maximum(rays @ view, 1e-3)
    back = points + push[:, None] * rays
    try:
        hull = trimesh.convex.convex_hull(np.concatenate([points, back]))
    except QhullError:
        raise ValueError("lift: the observed points are degenerate (no volume)") from None
    if not hull.is_watertight or hull.volume <= 0:
        raise ValueError("lift: the observed points are degenerate (no closed hull)")
    return hull


class LiftGenerator:
    """Convex hull of the observed points and their extruded back side (module docstring).

    Args:
        thickness_ratio: object depth along the view over its smaller visible extent.
    """

    name = "lift"
    licence = "Apache-2.0 (SceneMaker code, no weights)"

    def __init__(self, thickness_ratio: float = 1.0):
        if not thickness_ratio > 0:
            raise ValueError(f"thickness_ratio must be positive, got {thickness_ratio}")
        self.thickness_ratio = float(thickness_ratio)

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        mesh = lift_points(observation.points, self.thickness_ratio)
        mesh.apply_transform(_as_4x4(CAMERA_TO_UPRIGHT))
        result = canonical_mesh(mesh, self.name, in_camera_frame=True)
        # canonical_mesh's pose is in the upright axes; turn it back into the camera frame
        upright = result.initial_pose
        result.initial_pose = Pose(CAMERA_TO_UPRIGHT.T, CAMERA_TO_UPRIGHT.T @ upright.t, upright.s)
        return result


def _as_4x4(rotation: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    return matrix
