"""The support plane (floor or table top) seen in the depth image, and how a candidate pose
sits on it: penetration below the plane, and the gap between its lowest part and whatever
could hold it (the plane or another object's observed surface).

Nothing here assumes the plane is horizontal in the camera or that objects stand upright on
it: the plane is whatever flat surface most background pixels lie on, and contact is measured
along its normal, whichever face of the object touches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SupportPlane:
    normal: np.ndarray  # (3,) unit, pointing to the camera's side
    offset: float  # n . p + offset = signed distance (positive: camera side)
    inliers: int

    def distance(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal + self.offset


def estimate_support_plane(
    depth: np.ndarray,
    K: np.ndarray,
    masks: list[np.ndarray],
    tolerance: float = 0.01,
    iterations: int = 200,
    min_share: float = 0.2,
    max_points: int = 4000,
    seed: int = 0,
) -> SupportPlane | None:
    """RANSAC plane through the background (pixels of no object mask) with valid depth, or
    None when no plane holds ``min_share`` of those points (no floor or table in view)."""
    from ..geometry.camera import backproject

    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    background = np.ones(depth.shape, dtype=bool)
    for m in masks:
        background &= ~m
    points = backproject(depth, K, background)
    if len(points) < 50:
        return None
    rng = np.random.default_rng(seed)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    tol = tolerance * np.maximum(np.median(points[:, 2]), 1.0)
    best, best_count = None, 0
    triples = rng.integers(0, len(points), (iterations, 3))
    a, b, c = points[triples[:, 0]], points[triples[:, 1]], points[triples[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-9
    normals[ok] /= norms[ok, None]
    offsets = -(normals * a).sum(1)
    distances = np.abs(points @ normals[ok].T + offsets[ok])  # (P, I)
    counts = (distances < tol).sum(0)
    if len(counts) == 0:
        return None
    i = int(np.argmax(counts))
    best_count = int(counts[i])
    if best_count < min_share * len(points):
        return None
    inliers = points[distances[:, i] < tol]
    # least-squares refit on the inliers
    centre = inliers.mean(0)
    _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
    normal = vt[-1]
    offset = -float(normal @ centre)
    if offset < 0:  # the camera (origin) on the positive side
        normal, offset = -normal, -offset
    best = SupportPlane(normal, offset, best_count)
    return best


def contact_terms(
    posed: np.ndarray, sizes: np.ndarray, plane: SupportPlane, others=None, band: float = 0.03
):
    """(penetration, gap) per candidate, as shares of its size: how deep its surface samples
    ``posed`` (N, M, 3) go below the plane, and how far its lowest part (within ``band`` x size
    of its lowest point, along the plane normal) is from the plane or from the nearest point
    of ``others`` (a cKDTree of other objects' observed points), whichever is closer."""
    heights = posed @ plane.normal + plane.offset  # (N, M)
    lowest = heights.min(1)
    penetration = np.maximum(-lowest, 0.0) / sizes
    gap = np.maximum(lowest, 0.0)
    if others is not None:
        bottom = heights <= (lowest + band * sizes)[:, None]  # (N, M); each row has >= 1
        d, _ = others.query(posed[bottom], k=1)  # all candidates' bottom points at once
        owner = np.nonzero(bottom)[0]
        nearest = np.full(len(posed), np.inf)
        np.minimum.at(nearest, owner, d)
        gap = np.minimum(gap, nearest)
    return penetration, gap / sizes
