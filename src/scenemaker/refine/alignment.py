"""Dense alignment of rendered candidates with the observed depth of their crop.

Point-to-plane ICP with projective association (every rendered pixel of the object's mask is
paired with the observed surface point on the same pixel's ray, and the distance is measured
along that point's normal), solved for a small rotation and a translation of each candidate
and, optionally, its size (scaled about its centre). With every pixel of the crop taking part
it converges where a few sampled point pairs cannot: near the right pose the score's depth
residual falls to the level of the depth noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scoring import CropObservation


@dataclass
class SurfaceGrid:
    """The observed surface of a crop: points, unit normals (towards the camera), validity."""

    rays: np.ndarray  # (th, tw, 3), z = 1
    points: np.ndarray  # (th, tw, 3)
    normals: np.ndarray  # (th, tw, 3)
    valid: np.ndarray  # (th, tw) bool: depth and a normal


def surface_grid(crop: CropObservation, jump: float = 0.05) -> SurfaceGrid:
    """Observed points and normals (central differences; none across depth jumps larger than
    ``jump`` x depth)."""
    rays = crop.rays()
    D = crop.depth.astype(np.float64)
    P = rays * D[..., None]
    normals = np.zeros_like(P)
    valid = np.zeros(D.shape, dtype=bool)
    if D.shape[0] >= 3 and D.shape[1] >= 3:
        c = D[1:-1, 1:-1]
        left, right, up, down = D[1:-1, :-2], D[1:-1, 2:], D[:-2, 1:-1], D[2:, 1:-1]
        ok = (c > 0) & (left > 0) & (right > 0) & (up > 0) & (down > 0)
        for n in (left, right, up, down):
            ok &= np.abs(n - c) < jump * np.maximum(c, 1e-6)
        dx = P[1:-1, 2:] - P[1:-1, :-2]
        dy = P[2:, 1:-1] - P[:-2, 1:-1]
        nrm = np.cross(dx, dy)
        length = np.linalg.norm(nrm, axis=-1)
        ok &= length > 1e-12
        nrm = nrm / np.maximum(length, 1e-12)[..., None]
        # towards the camera: n . p < 0
        flip = (nrm * P[1:-1, 1:-1]).sum(-1) > 0
        nrm[flip] *= -1.0
        normals[1:-1, 1:-1] = nrm
        valid[1:-1, 1:-1] = ok
    return SurfaceGrid(rays, P, normals, valid & crop.own)


def point_to_plane_step(
    z: np.ndarray,
    grid: SurfaceGrid,
    R: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    cap: np.ndarray,
    scale: bool = True,
    min_pixels: int = 12,
):
    """One Gauss-Newton step for each of N candidates from their rendered depths z (N, th, tw):
    returns the updated (R, t, s) and a bool mask of the candidates that moved. Pairs whose
    distance exceeds ``cap`` (N,) are left out; the rest are weighted by Tukey's biweight."""
    N = len(z)
    R, t, s = R.copy(), t.copy(), s.copy()
    moved = np.zeros(N, dtype=bool)
    for n in range(N):
        use = (z[n] > 0) & grid.valid
        if use.sum() < min_pixels:
            continue
        p = grid.rays[use] * z[n][use][:, None]  # rendered points
        q = grid.points[use]
        nrm = grid.normals[use]
        r = ((p - q) * nrm).sum(1)
        keep = np.abs(r) < cap[n]
        if keep.sum() < min_pixels:
            continue
        p, nrm, r = p[keep], nrm[keep], r[keep]
        a = p - t[n]
        # residual after p -> p + w x a + v + sigma a: r + (a x n).w + n.v + (n.a) sigma
        cols = [np.cross(a, nrm), nrm]
        if scale:
            cols.append((nrm * a).sum(1, keepdims=True))
        J = np.concatenate(cols, 1)
        c = max(cap[n] / 2.0, 1e-9)
        w = np.square(np.clip(1.0 - np.square(r / c), 0.0, None))  # Tukey
        if not (w > 0).sum() >= min_pixels:
            continue
        H = (J * w[:, None]).T @ J
        g = (J * w[:, None]).T @ r
        H += np.eye(len(H)) * (1e-3 * np.trace(H) / len(H) + 1e-12)
        try:
            x = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            continue
        if not np.isfinite(x).all():
            continue
        omega, v = x[:3], x[3:6]
        sigma = float(x[6]) if scale else 0.0
        angle = np.linalg.norm(omega)
        if angle > np.radians(10) or abs(sigma) > 0.1 or np.linalg.norm(v) > 0.1 * s[n]:
            continue  # far outside the small-motion regime: leave it to the search
        from .hypotheses import rotvec_matrices

        dR = rotvec_matrices(omega[None])[0]
        R[n] = dR @ R[n]
        t[n] = t[n] + v
        s[n] = s[n] * (1.0 + sigma)
        moved[n] = True
    return R, t, s, moved
