"""A z-buffered triangle rasteriser in numpy (no OpenGL): which face covers each pixel, where
on it (perspective-correct barycentrics) and how far.

Pixel centres are at integer coordinates (OpenCV). Used to find which texels of a mesh the
photo's camera saw (the mesh's own depth) and to render baked textures without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CANDIDATES = 4_000_000  # (pixel, face) pairs tested at once: bounds the memory


@dataclass
class Raster:
    face: np.ndarray  # (H, W) int64: the nearest face at each pixel, -1 where none
    bary: np.ndarray  # (H, W, 3) float64: perspective-correct barycentrics on that face
    depth: np.ndarray  # (H, W) float64: camera z of the nearest surface, inf where none


def project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) OpenCV camera points -> (pixel coordinates (N, 2), z (N,))."""
    points = np.asarray(points, dtype=np.float64)
    z = points[:, 2]
    safe = np.where(np.abs(z) < 1e-12, 1e-12, z)
    xy = points[:, :2] / safe[:, None] * np.diag(K)[:2] + K[:2, 2]
    return xy, z


def rasterize(
    xy: np.ndarray, z: np.ndarray, faces: np.ndarray, width: int, height: int, near: float = 1e-3
) -> Raster:
    """Rasterise triangles given by vertex pixel coordinates ``xy`` (V, 2) and camera depths
    ``z`` (V,). Faces with a vertex nearer than ``near`` (or not finite) are left out."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    face_map = np.full(height * width, -1, dtype=np.int64)
    bary_map = np.zeros((height * width, 3))
    depth_map = np.full(height * width, np.inf)
    out = Raster(face_map, bary_map, depth_map)
    if len(faces) == 0:
        return _shaped(out, width, height)
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    tri, tz = xy[faces], z[faces]  # (F, 3, 2), (F, 3)
    x0, y0 = np.ceil(tri[..., 0].min(1)), np.ceil(tri[..., 1].min(1))
    x1, y1 = np.floor(tri[..., 0].max(1)), np.floor(tri[..., 1].max(1))
    ok = np.isfinite(tri).all(axis=(1, 2)) & np.isfinite(tz).all(1) & (tz > near).all(1)
    x0, y0 = np.clip(x0, 0, width), np.clip(y0, 0, height)
    x1, y1 = np.clip(x1, -1, width - 1), np.clip(y1, -1, height - 1)
    area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (
        tri[:, 2, 0] - tri[:, 0, 0]
    ) * (tri[:, 1, 1] - tri[:, 0, 1])
    ok &= (x1 >= x0) & (y1 >= y0) & (np.abs(area) > 1e-12)
    ids = np.nonzero(ok)[0]
    if len(ids) == 0:
        return _shaped(out, width, height)
    bw = (x1[ids] - x0[ids] + 1).astype(np.int64)
    counts = bw * (y1[ids] - y0[ids] + 1).astype(np.int64)
    # faces in chunks of at most MAX_CANDIDATES candidate pixels (a bigger face goes alone)
    ends = np.cumsum(counts)
    starts = 0
    found = []
    while starts < len(ids):
        base = ends[starts - 1] if starts else 0
        stop = max(int(np.searchsorted(ends, base + MAX_CANDIDATES, side="right")), starts + 1)
        sel = slice(starts, stop)
        found.append(_candidates(ids[sel], counts[sel], bw[sel], x0, y0, tri, tz, area, width))
        starts = stop
    pix = np.concatenate([f[0] for f in found])
    if len(pix) == 0:
        return _shaped(out, width, height)
    depth = np.concatenate([f[1] for f in found])
    face = np.concatenate([f[2] for f in found])
    bary = np.concatenate([f[3] for f in found])
    order = np.lexsort((depth, pix))  # by pixel, nearest first
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
    face_map[pix[first]] = face[first]
    bary_map[pix[first]] = bary[first]
    depth_map[pix[first]] = depth[first]
    return _shaped(out, width, height)


def _candidates(ids, counts, bw, x0, y0, tri, tz, area, width):
    """Pixels inside faces ``ids``: (flat pixel index, depth, face, barycentrics)."""
    owner = np.repeat(np.arange(len(ids)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    face = ids[owner]
    px = x0[face] + offset % bw[owner]
    py = y0[face] + offset // bw[owner]
    t = tri[face]
    w1 = (px - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 2, 0] - t[:, 0, 0]) * (
        py - t[:, 0, 1]
    )
    w2 = (t[:, 1, 0] - t[:, 0, 0]) * (py - t[:, 0, 1]) - (px - t[:, 0, 0]) * (
        t[:, 1, 1] - t[:, 0, 1]
    )
    w1, w2 = w1 / area[face], w2 / area[face]
    w0 = 1.0 - w1 - w2
    eps = -1e-9
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
    face, px, py = face[inside], px[inside], py[inside]
    w = np.stack([w0[inside], w1[inside], w2[inside]], axis=1).clip(0.0, None)
    inv = w / tz[face]  # perspective-correct: 1/z is affine in screen space
    total = inv.sum(1)
    depth = 1.0 / total
    return (py * width + px).astype(np.int64), depth, face, inv / total[:, None]


def _shaped(r: Raster, width: int, height: int) -> Raster:
    return Raster(
        r.face.reshape(height, width), r.bary.reshape(height, width, 3),
        r.depth.reshape(height, width),
    )  # fmt: skip
