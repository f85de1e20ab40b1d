"""Least-squares point-set alignment: Umeyama's closed form and point-to-point ICP.

This is the project's single ICP. The evaluation aligns scenes with it (``eval/metrics.py``),
and the pose refinement stage and the registration baseline reuse it, so it stays small, pure
numpy + ``scipy.spatial.cKDTree``, and returns plain 4x4 matrices that act on row points as
``p' = M[:3, :3] @ p + M[:3, 3]`` (``transforms.apply_transform``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .validation import as_points


@dataclass(frozen=True)
class IcpResult:
    """Outcome of :func:`icp`."""

    matrix: np.ndarray
    """(4, 4) transform taking ``source`` onto ``target``: rigid, or similarity with a uniform
    scale (``matrix[:3, :3] = s R``) when ``with_scale=True``. Composed with ``init``."""
    rmse: float
    """Root mean squared distance from each transformed source point to its nearest target
    point, over the correspondences kept (within ``max_distance``); ``inf`` if none were."""
    iterations: int
    """Correspondence + update rounds actually run (< ``iterations`` when it converged)."""
    inlier_fraction: float
    """Share of source points that had a target point within ``max_distance`` at the end
    (1.0 when no distance limit is set)."""


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = False) -> np.ndarray:
    """Least-squares rigid or similarity transform taking ``src`` onto ``dst`` (Umeyama 1991).

    Minimises ``sum_i || dst_i - (c R src_i + t) ||^2`` over rotations R (det R = +1), t, and
    c (c = 1 unless ``with_scale``). With centred sets ``X = src - mean(src)``,
    ``Y = dst - mean(dst)``, covariance ``S = Y^T X / N = U D V^T`` and
    ``E = diag(1, 1, sign(det U det V))``::

        R = U E V^T,   c = trace(D E) / mean_i ||X_i||^2,   t = mean(dst) - c R mean(src)

    Args:
        src: (N, 3) source points; row i corresponds to ``dst[i]``.
        dst: (N, 3) destination points.
        with_scale: also fit one uniform scale factor.

    Returns:
        (4, 4) matrix M with ``M[:3, :3] = c R`` and ``M[:3, 3] = t``.

    Raises:
        ValueError: bad shapes, NaN, empty input, mismatched counts, or (with scale) a source
        set with no spread.
    """
    src = as_points("src", src)
    dst = as_points("dst", dst)
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must have the same shape, got {src.shape} and {dst.shape}")
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    x, y = src - mu_src, dst - mu_dst
    cov = y.T @ x / len(src)
    u, d, vt = np.linalg.svd(cov)
    e = np.ones(3)
    # Reflection guard: flip the weakest axis so R is a proper rotation.
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2] = -1.0
    rotation = (u * e) @ vt
    scale = 1.0
    if with_scale:
        var_src = float((x**2).sum(1).mean())
        if var_src <= 1e-300:
            raise ValueError("src has no spread; the scale is undefined")
        scale = float((d * e).sum() / var_src)
    m = np.eye(4)
    m[:3, :3] = scale * rotation
    m[:3, 3] = mu_dst - scale * rotation @ mu_src
    return m


def icp(
    source: np.ndarray,
    target: np.ndarray,
    iterations: int = 50,
    with_scale: bool = False,
    tolerance: float = 1e-7,
    init: np.ndarray | None = None,
    max_distance: float | None = None,
    workers: int = -1,
) -> IcpResult:
    """Point-to-point ICP aligning ``source`` (N, 3) to ``target`` (M, 3).

    Each round pairs every transformed source point with its nearest target point
    (``cKDTree``, built once), drops pairs farther than ``max_distance``, and re-fits the
    whole transform from the *original* source to the paired targets with :func:`umeyama`
    (so no drift accumulates from composing increments). It stops after ``iterations``
    rounds or when the pairing RMSE changes by less than ``tolerance`` (absolute, in the
    units of the points).

    Args:
        source: (N, 3) points to move.
        target: (M, 3) points to align to (same frame and units as the result).
        iterations: maximum number of rounds (>= 1).
        with_scale: also fit a uniform scale. Point-to-point ICP with scale can shrink the
            source onto part of the target; use it only from a reasonable ``init``.
        tolerance: stop when |rmse_k - rmse_{k-1}| < tolerance.
        init: optional (4, 4) initial transform applied to ``source`` (default identity). It
            only seeds the first pairing; the result is re-fitted from scratch, so a scale in
            ``init`` is dropped unless ``with_scale``.
        max_distance: optional maximum correspondence distance; pairs farther apart are
            ignored (robustness to outliers and partial overlap).
        workers: threads per nearest-neighbour query (``cKDTree.query``; -1: every core).
            Use 1 for a few hundred points aligned many times over, where starting the
            threads costs more than the query itself.

    Returns:
        :class:`IcpResult` whose ``matrix`` maps ``source`` onto ``target`` (init included).

    Raises:
        ValueError: bad shapes, NaN, empty point sets, ``iterations < 1``, a non-finite or
        wrongly shaped ``init``, or a non-positive ``max_distance``.
    """
    source = as_points("source", source)
    target = as_points("target", target)
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if max_distance is not None and not max_distance > 0:
        raise ValueError(f"max_distance must be positive or None, got {max_distance}")
    if init is None:
        matrix = np.eye(4)
    else:
        matrix = np.asarray(init, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
            raise ValueError(f"init must be a finite (4, 4) matrix, got shape {matrix.shape}")
        matrix = matrix.copy()
    upper = np.inf if max_distance is None else float(max_distance)
    tree = cKDTree(target)

    def match(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        moved = source @ m[:3, :3].T + m[:3, 3]
        dist, idx = tree.query(moved, k=1, distance_upper_bound=upper, workers=workers)
        keep = np.isfinite(dist)
        return dist, idx, keep

    prev_rmse = np.inf
    rounds = 0
    for _ in range(int(iterations)):
        dist, idx, keep = match(matrix)
        if not keep.any():
            break
        rmse = float(np.sqrt(np.mean(dist[keep] ** 2)))
        if abs(prev_rmse - rmse) < tolerance:
            break
        prev_rmse = rmse
        rounds += 1
        # Fewer than 3 pairs leave the rotation underdetermined; keep the last estimate.
        if keep.sum() < 3:
            break
        matrix = umeyama(source[keep], target[idx[keep]], with_scale=with_scale)

    dist, _, keep = match(matrix)
    rmse = float(np.sqrt(np.mean(dist[keep] ** 2))) if keep.any() else float("inf")
    return IcpResult(
        matrix=matrix, rmse=rmse, iterations=rounds, inlier_fraction=float(keep.mean())
    )
