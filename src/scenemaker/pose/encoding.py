"""The pose model's inputs and outputs: observed and canonical points normalised per scene,
and poses encoded as [rot6d, t', s' - 1] (what inference and training share)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.points import scene_normalisation
from ..geometry.rotations import matrix_to_rot6d

STORED_POINTS = 256
"""Observed points kept per object, in training data and at inference alike (the estimator
uses this constant): the model reads the first ``num_points`` of the farthest-point order."""
STORED_CANONICAL = 2048


@dataclass
class ObjectInputs:
    """Model inputs of one scene view (N objects), all float32 numpy."""

    local_points: np.ndarray  # (N, P, 3) object's points, centred and scaled to ~[-1, 1]
    scene_points: np.ndarray  # (N, P, 3) same points in scene-normalised coordinates
    box: np.ndarray  # (N, 6) observed box centre (3) and size (3), scene-normalised
    canonical: np.ndarray  # (N, C, 6) canonical surface points and normals
    center: np.ndarray  # (3,) scene normalisation centre (camera frame, metres)
    scale: float  # scene normalisation scale L (metres)


def make_inputs(
    points: list[np.ndarray], canonical: list[np.ndarray], num_points: int
) -> ObjectInputs:
    """Observed points (camera frame) and canonical samples (C, 6) -> normalised model inputs."""
    center, scale = scene_normalisation(points)
    local, scene_pts, box = [], [], []
    for p in points:
        p = p[:num_points]
        if len(p) < num_points:  # repeat points to a fixed count (a set: repeats are harmless)
            p = p[np.arange(num_points) % len(p)]
        lo, hi = p.min(0), p.max(0)
        c_obj = (lo + hi) / 2.0
        half = max(float((hi - lo).max()) / 2.0, 1e-6)
        local.append((p - c_obj) / half)
        scene_pts.append((p - center) / scale * 0.95)
        box.append(np.concatenate([(c_obj - center) / scale * 0.95, (hi - lo) / scale * 0.95]))
    return ObjectInputs(
        local_points=np.asarray(local, np.float32),
        scene_points=np.asarray(scene_pts, np.float32),
        box=np.asarray(box, np.float32),
        canonical=np.asarray(canonical, np.float32),
        center=center.astype(np.float32),
        scale=float(scale),
    )


def encode_pose(R: np.ndarray, t: np.ndarray, s: np.ndarray, center, scale) -> np.ndarray:
    """Camera-frame poses (N objects) -> the model's 10-D targets [rot6d, t', s' - 1]."""
    t_n = (np.asarray(t) - center) / scale * 0.95
    s_n = np.asarray(s) / scale * 0.95 - 1.0
    return np.concatenate([matrix_to_rot6d(R), t_n, s_n[:, None]], axis=1).astype(np.float32)


def decode_pose(x: np.ndarray, center, scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_pose`: (N, 10) -> R (N, 3, 3), t (N, 3), s (N,) in metres."""
    from ..geometry.rotations import rot6d_to_matrix

    x = np.asarray(x, dtype=np.float64)
    R = rot6d_to_matrix(x[:, :6])
    t = x[:, 6:9] / 0.95 * scale + center
    s = np.maximum((x[:, 9] + 1.0) / 0.95 * scale, 1e-4)
    return R, t, s
