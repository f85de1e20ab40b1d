"""Retrieval's 3-D re-ranking: a library mesh placed as one of its views on the observed points.

:func:`observed_geometry` summarises the object's observed points (viewing ray, metric
silhouette extents, relief, spacing); :func:`fit_view` turns a library view onto that ray at
the size the silhouette implies, aligns the observed points onto it with the project's ICP
(:func:`scenemaker.geometry.icp.icp`) and scores the misfit, giving a camera-frame pose.
"""

from __future__ import annotations

import numpy as np

from .base import ObjectObservation
from .retrieval_descriptors import SAMPLES, VIEW_ROTATIONS, visible_samples
from .retrieval_library import Library

W_UNCOVERED = 0.05  # weight of the model's unexplained visible share (chosen with retrieval's)
ICP_ROUNDS = 12


def ray_rotation(direction: np.ndarray) -> np.ndarray:
    """Smallest rotation taking +z to the unit vector ``direction`` (Rodrigues)."""
    axis = np.cross([0.0, 0.0, 1.0], direction)
    sin, cos = float(np.linalg.norm(axis)), float(direction[2])
    if sin < 1e-9:
        return np.eye(3)
    k = axis / sin
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * cross + (1.0 - cos) * cross @ cross


def observed_geometry(amodal, observation: ObjectObservation, mask: np.ndarray) -> dict | None:
    """Viewing ray, metric silhouette extents, relief and spacing of the observed points;
    None with fewer than 8 usable points."""
    points = np.asarray(observation.points, dtype=np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(1) & (points[:, 2] > 0)]
    if len(points) < 8:
        return None
    from scipy.spatial import cKDTree

    from ..geometry.points import farthest_point_sample

    K = np.asarray(observation.K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"observation.K must be a (3, 3) matrix, got shape {K.shape}")
    points = points[np.sort(farthest_point_sample(points, 256, seed=0))]
    rows, cols = np.nonzero(mask)
    crop = amodal.crop
    scale = (crop.box[2] - crop.box[0]) / mask.shape[1]  # image pixels per crop pixel
    centre = crop.to_image_coords(
        np.array([(cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2])
    )
    ray = np.linalg.solve(K, np.array([centre[0], centre[1], 1.0]))
    ray /= np.linalg.norm(ray)
    along = points @ ray
    depth = float(np.median(along))
    width_m = (cols.max() + 1 - cols.min()) * scale * depth / K[0, 0]
    height_m = (rows.max() + 1 - rows.min()) * scale * depth / K[1, 1]
    low, high = np.percentile(along, [5, 95])
    neighbour, _ = cKDTree(points).query(points, k=2)
    return {
        "points": points,
        "ray": ray,
        "ray_rotation": ray_rotation(ray),
        "width_m": width_m,
        "height_m": height_m,
        "relief": (high - low) / max(width_m, height_m),
        "spacing": float(np.median(neighbour[:, 1])),
    }


def fit_view(lib: Library, m: int, v: int, size: float, obs: dict):
    """Place mesh ``m`` as seen in view ``v`` at ``size`` and ICP the observed points onto it.

    Returns (misfit, camera-frame Pose): misfit = RMS distance of the points to the surface
    over the size + ``W_UNCOVERED`` x the share of the model's visible samples no point
    explains. The ICP is rigid, ``ICP_ROUNDS`` rounds, pairs within a quarter of the size,
    single-threaded queries (a few hundred points, dozens of times per match). (Turning about
    the hypothesised up axis only was tried: it keeps symmetric objects upright but lost 5-8
    points of top-1 accuracy, since it cannot absorb the view grid's tilt.)"""
    from scipy.spatial import cKDTree

    from ..geometry.icp import icp
    from ..scene import Pose

    view_points = (size / 2.0) * lib.samples[m].astype(np.float64) @ VIEW_ROTATIONS[v].T
    view_normals = lib.normals[m].astype(np.float64) @ VIEW_ROTATIONS[v].T
    seen = visible_samples(view_points, view_normals)
    if seen.sum() < 8:
        seen[:] = True
    rotation = obs["ray_rotation"] @ VIEW_ROTATIONS[v]
    model = view_points @ obs["ray_rotation"].T
    normals = view_normals @ obs["ray_rotation"].T
    observed = obs["points"]
    shift = observed.mean(0) - model[seen].mean(0)
    model += shift
    reach = 0.25 * size
    matrix = icp(
        observed, model, ICP_ROUNDS, tolerance=1e-6 * reach, max_distance=reach, workers=1
    ).matrix
    moved = observed @ matrix[:3, :3].T + matrix[:3, 3]
    distance, index = cKDTree(model).query(moved)
    # point-to-plane near the samples (their spacing is not an error), point distance beyond
    spacing = 2.0 * size / np.sqrt(SAMPLES)
    plane = np.abs(np.einsum("ij,ij->i", moved - model[index], normals[index]))
    residual = np.where(distance < spacing, plane, distance)
    gap = 3.0 * obs["spacing"] + spacing
    coverage, _ = cKDTree(moved).query(model[seen], distance_upper_bound=gap)
    misfit = np.sqrt(np.mean(residual**2)) / size + W_UNCOVERED * np.mean(np.isinf(coverage))
    back = matrix[:3, :3].T  # the model's placement: undo the points' motion
    pose = Pose(back @ rotation, back @ (shift - matrix[:3, 3]), size)
    return float(misfit), pose
