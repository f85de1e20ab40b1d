"""Depth as real estimators give it: a global scale error, noise growing with z^2, and holes
along depth edges (``scenemaker eval pose --depth-noise 0|1|2``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthNoise:
    scale_error: float
    """Global scale factor drawn uniformly in [1 - e, 1 + e]."""
    sigma: float
    """Gaussian noise standard deviation at 1 m; sigma(z) = sigma * z^2 (metres)."""
    edge_holes: float
    """Share of the valid pixels removed, taken from the depth edges."""


LEVELS = {
    0: DepthNoise(0.0, 0.0, 0.0),
    1: DepthNoise(0.05, 0.002, 0.02),
    2: DepthNoise(0.15, 0.005, 0.06),
}


def degrade_depth(
    depth: np.ndarray, level: int, rng: np.random.Generator, return_scale: bool = False
):
    """A copy of ``depth`` (metres, 0 = invalid) degraded as a monocular / sensor estimate of
    noise ``level`` (0: unchanged); with ``return_scale`` also the global scale factor drawn
    (the degraded depth shows the scene scaled by it: training targets scale with it)."""
    from scipy.ndimage import binary_dilation

    if level not in LEVELS:
        raise ValueError(f"depth noise level must be one of {sorted(LEVELS)}, got {level}")
    noise = LEVELS[level]
    depth = np.array(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if level == 0:
        return (depth, 1.0) if return_scale else depth
    scale = 1.0 + rng.uniform(-noise.scale_error, noise.scale_error)
    out = np.where(valid, depth * scale, 0.0)
    out = np.where(valid, out + rng.normal(0.0, 1.0, out.shape) * noise.sigma * out**2, 0.0)
    out = np.where(valid & (out > 0), out, 0.0).astype(np.float32)
    # edges: a jump of more than 5 cm to a neighbour, or a neighbour without depth
    padded = np.pad(np.where(valid, depth, np.inf), 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    jump = np.zeros(depth.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        neighbour = padded[dy : dy + depth.shape[0], dx : dx + depth.shape[1]]
        with np.errstate(invalid="ignore"):
            jump |= ~(np.abs(neighbour - centre) <= 0.05)
    band = binary_dilation(jump & valid, iterations=1) & valid
    candidates = np.flatnonzero(band)
    count = min(len(candidates), int(round(noise.edge_holes * valid.sum())))
    if count:
        out.reshape(-1)[rng.choice(candidates, count, replace=False)] = 0.0
    return (out, float(scale)) if return_scale else out
