"""Inside / outside of a triangle surface."""

from __future__ import annotations

import numpy as np


def winding_number(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Generalised winding number of (P, 3) points w.r.t. (F, 3, 3) triangles.

    ``w(p) = sum_f Omega_f(p) / (4 pi)`` with the signed solid angle of each triangle
    (Van Oosterom & Strackee): for ``a, b, c`` = corners - p,
    ``tan(Omega / 2) = a . (b x c) / (|a||b||c| + (a.b)|c| + (b.c)|a| + (c.a)|b|)``.
    ~1 inside a closed surface, ~0 outside, and degrades gracefully on open meshes.
    """
    # float32 after centring: twice as fast, and the 0.5 threshold needs no more precision.
    # Per-component arrays in cache-sized chunks run ~10x faster than (P, F, 3) einsums.
    origin = triangles.reshape(-1, 3).mean(0)
    tri = (triangles - origin).astype(np.float32)
    pts = (points - origin).astype(np.float32)
    corners = [[np.ascontiguousarray(tri[:, k, j])[None] for j in range(3)] for k in range(3)]
    out = np.empty(len(pts))
    chunk = max(1, 65_536 // len(tri))
    for start in range(0, len(pts), chunk):
        p = [pts[start : start + chunk, j, None] for j in range(3)]
        (ax, ay, az), (bx, by, bz), (cx, cy, cz) = (
            [c[j] - p[j] for j in range(3)] for c in corners
        )
        la = np.sqrt(ax * ax + ay * ay + az * az)
        lb = np.sqrt(bx * bx + by * by + bz * bz)
        lc = np.sqrt(cx * cx + cy * cy + cz * cz)
        det = ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx)
        den = (
            la * lb * lc
            + (ax * bx + ay * by + az * bz) * lc
            + (bx * cx + by * cy + bz * cz) * la
            + (cx * ax + cy * ay + cz * az) * lb
        )
        # atan2 gives Omega / 2, so w = sum(atan2) / (2 pi).
        out[start : start + chunk] = np.arctan2(det, den).sum(-1, dtype=np.float64) / (2 * np.pi)
    return out
