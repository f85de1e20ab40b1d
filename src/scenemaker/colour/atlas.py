"""A texture atlas for any triangle mesh, without a UV-unwrapping library.

Faces are paired into square cells of ``L + 2`` texels, one face below the cell's diagonal
and one above, with a two-texel gap between them; a face's cell side grows with the square
root of its area (uniform texel density, clamped to at least 2 texels), and the cells are
shelf-packed, largest first, into a square texture of ``size`` texels (doubled up to
``max_size`` for dense meshes; denser ones get a colour per face). Within a size class the cells follow the faces' Morton
order, so neighbouring cells hold neighbouring surface and mipmaps blend similar colours.

Every texel of a cell belongs to one of its two faces (texels between the triangles are
clamped onto the nearer one), and bilinear filtering anywhere inside a face reads only that
face's texels, so no colour bleeds between faces. Why not xatlas: on this machine it took
3 s for a 20k-face mesh and crashed the process (segmentation fault) at 80k faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_LEG = 2


class AtlasError(ValueError):
    """The mesh cannot be given a texture (no faces with area, or too many faces)."""


@dataclass
class Atlas:
    size: int  # the texture is size x size texels
    corner_uv: np.ndarray  # (F, 3, 2) texel coordinates (x right, y down; texel (i, j) spans
    # [i, i+1] x [j, j+1]) of each face's corners
    texel_xy: np.ndarray  # (T, 2) int: column, row of each texel that belongs to a face
    texel_face: np.ndarray  # (T,) int: that face
    texel_bary: np.ndarray  # (T, 3) float: the texel centre's barycentrics on that face

    def uv(self) -> np.ndarray:
        """(F * 3, 2) trimesh UVs (v up) of the corners, face by face."""
        uv = self.corner_uv.reshape(-1, 2) / self.size
        return np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)


def morton_order(points: np.ndarray) -> np.ndarray:
    """Morton (Z-order) codes of (N, 3) points: close codes, close points."""
    lo, hi = points.min(0), points.max(0)
    q = ((points - lo) / np.maximum(hi - lo, 1e-12) * 1023).astype(np.uint64)
    code = np.zeros(len(points), dtype=np.uint64)
    for bit in range(10):
        for axis in range(3):
            code |= ((q[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return code


def _quantise(legs: np.ndarray) -> np.ndarray:
    """Legs below 16 texels stay exact; longer ones are rounded down to ~8 steps per octave
    (fewer size classes to pack)."""
    legs = legs.astype(np.int64)
    octave = np.floor(np.log2(np.maximum(legs, 1))).astype(np.int64)
    step = 2 ** np.maximum(octave - 3, 0)
    return np.where(legs < 16, legs, legs // step * step)


def _pack(sides: np.ndarray, size: int):
    """Shelf-pack square cells (``sides`` non-increasing) into a strip ``size`` wide: their
    (x, y) origins and the strip's height."""
    xs = np.zeros(len(sides), np.int64)
    ys = np.zeros(len(sides), np.int64)
    values, first, counts = np.unique(-sides, return_index=True, return_counts=True)
    x = y = shelf = 0
    for side, start, count in zip(-values, first, counts, strict=True):
        done = 0
        if shelf and side <= size:  # the rest of the current (taller) shelf
            take = min((size - x) // side, count)
            xs[start : start + take] = x + side * np.arange(take)
            ys[start : start + take] = y
            x += take * side
            done = take
        if done < count:
            per_row = max(size // side, 1)
            rest = np.arange(count - done)
            y += shelf
            xs[start + done : start + count] = (rest % per_row) * side
            ys[start + done : start + count] = y + (rest // per_row) * side
            rows = (count - done - 1) // per_row + 1
            y += (rows - 1) * side
            x = ((count - done - 1) % per_row + 1) * side
            shelf = side
    return xs, ys, y + shelf


def _legs(areas: np.ndarray, density: float, size: int) -> np.ndarray:
    legs = np.floor(np.sqrt(2.0 * areas) * density)
    return _quantise(np.clip(legs, MIN_LEG, size - 2))


def _cell_sides(legs_sorted: np.ndarray) -> np.ndarray:
    """Cells of consecutive pairs of faces sorted by leg (non-increasing): side = leg + 2."""
    return legs_sorted[0::2] + 2


def build_atlas(vertices: np.ndarray, faces: np.ndarray, size: int = 512, max_size: int = 1024):
    """An :class:`Atlas` of the mesh; faces without area get a point of the first cell.

    Meshes too dense for cells of the minimum size in ``max_size`` texels (over ~130k faces
    at 1024) get one texel per face instead (:func:`palette_atlas`): their faces are about a
    pixel wide in any photo anyway."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    tri = vertices[faces]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    scale = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    real = np.isfinite(areas) & (areas > 1e-12 * max(scale, 1e-12) ** 2)
    if not real.any():
        raise AtlasError("degenerate mesh (no face with area)")
    ids = np.nonzero(real)[0]
    by_area = ids[np.argsort(-areas[ids], kind="stable")]
    while True:  # the smallest texture that holds every cell at the minimum size
        if _pack(_cell_sides(np.full(len(ids), MIN_LEG)), size)[2] <= size:
            break
        if size * 2 > max_size:
            return palette_atlas(len(faces))
        size *= 2
    # the largest texel density that fits (bisection in log space)
    lo, hi = 0.0, np.log(size / np.sqrt(2.0 * areas[by_area[-1]]) + 1.0)
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        sides = _cell_sides(_legs(areas[by_area], np.expm1(mid), size))
        if _pack(np.sort(sides)[::-1], size)[2] <= size:
            lo = mid
        else:
            hi = mid
    legs = _legs(areas[ids], np.expm1(lo), size)
    order = np.lexsort((morton_order(tri[ids].mean(1)), -legs))
    pairs_upper = ids[order[0::2]]  # the larger face of each pair (leg L) above the diagonal
    pairs_lower = np.full(len(pairs_upper), -1)
    pairs_lower[: len(order) // 2] = ids[order[1::2]]  # leg L - 1 below (none: odd face out)
    pair_legs = legs[order[0::2]]
    xs, ys, _ = _pack(pair_legs + 2, size)
    return _fill(size, len(faces), pairs_upper, pairs_lower, pair_legs, xs, ys)


def _template(leg: int):
    """Texels of one cell with leg ``leg``: (a, b, upper?, barycentrics (n, 3))."""
    a, b = np.meshgrid(np.arange(leg + 2), np.arange(leg + 2), indexing="ij")
    a, b = a.ravel(), b.ravel()
    upper = a + b >= leg + 1
    lw1, lw2 = a / (leg - 1), b / (leg - 1)  # lower: corners (0,0), (L-1,0), (0,L-1)
    uw1, uw2 = (leg + 1 - a) / leg, (leg + 1 - b) / leg  # upper: (L+1,L+1), (1,L+1), (L+1,1)
    w1, w2 = np.where(upper, uw1, lw1), np.where(upper, uw2, lw2)
    w = np.stack([1.0 - w1 - w2, w1, w2], axis=1).clip(0.0, None)
    return a, b, upper, w / w.sum(1, keepdims=True)


def _fill(size, n_faces, upper_faces, lower_faces, legs, xs, ys) -> Atlas:
    corner_uv = np.tile(np.array([xs[0] + 0.5, ys[0] + 0.5]), (n_faces, 3, 1)).astype(np.float64)
    texel_xy, texel_face, texel_bary = [], [], []
    for leg in np.unique(legs):
        cells = np.nonzero(legs == leg)[0]
        origin = np.stack([xs[cells], ys[cells]], axis=1).astype(np.float64) + 0.5
        up = np.array([[leg + 1, leg + 1], [1, leg + 1], [leg + 1, 1]], dtype=np.float64)
        low = np.array([[0, 0], [leg - 1, 0], [0, leg - 1]], dtype=np.float64)
        corner_uv[upper_faces[cells]] = origin[:, None] + up
        has_lower = lower_faces[cells] >= 0
        corner_uv[lower_faces[cells][has_lower]] = origin[has_lower, None] + low
        a, b, upper, w = _template(int(leg))
        face = np.where(upper[None], upper_faces[cells, None], lower_faces[cells, None])
        keep = face >= 0
        tx = xs[cells, None] + a[None]
        ty = ys[cells, None] + b[None]
        texel_xy.append(np.stack([tx[keep], ty[keep]], axis=1))
        texel_face.append(face[keep])
        texel_bary.append(np.broadcast_to(w[None], (*face.shape, 3))[keep])
    return Atlas(
        size, corner_uv, np.concatenate(texel_xy).astype(np.int64),
        np.concatenate(texel_face), np.concatenate(texel_bary),
    )  # fmt: skip


def palette_atlas(n_faces: int, max_size: int = 4096) -> Atlas:
    """One texel per face (all three corners at its centre): a colour per face."""
    size = 256
    while size * size < n_faces:
        size *= 2
    if size > max_size:
        raise AtlasError(f"mesh too dense for a {max_size} px texture ({n_faces} faces)")
    ids = np.arange(n_faces)
    xy = np.stack([ids % size, ids // size], axis=1)
    corner_uv = np.repeat((xy + 0.5)[:, None].astype(np.float64), 3, axis=1)
    return Atlas(size, corner_uv, xy, ids, np.full((n_faces, 3), 1.0 / 3.0))
