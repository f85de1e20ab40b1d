"""Per-object confidence of a render-and-compare result."""

from __future__ import annotations

import numpy as np

from ..scene import Pose


def pose_distance(a: Pose, b: Pose, samples: np.ndarray) -> float:
    """Symmetric mean closest-point distance between the two placed surfaces, in units of
    ``a``'s size (symmetric objects turned onto themselves are at distance ~0)."""
    from scipy.spatial import cKDTree

    pa, pb = a.apply(samples), b.apply(samples)
    d1, _ = cKDTree(pb).query(pa)
    d2, _ = cKDTree(pa).query(pb)
    return float((d1.mean() + d2.mean()) / 2 / a.s)


def confidence(score: float, pose: Pose, alternatives: list, samples: np.ndarray) -> float:
    """In [0, 1]: high when the best pose explains the observation well (low score) and no
    clearly different pose scores nearly as well (a margin over the best distinct rival)."""
    rival = min(
        (a["score"] for a in alternatives if pose_distance(pose, a["pose"], samples) > 0.05),
        default=score + 1.0,
    )
    margin = max(rival - score, 0.0)
    fit = np.exp(-max(score, 0.0) / 0.25)
    return float(np.clip(fit * (1.0 - np.exp(-margin / 0.05)), 0.0, 1.0))
