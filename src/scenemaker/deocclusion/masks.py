"""Crop geometry and the paper's synthetic occlusion masks, for de-occlusion training triplets.

The crop box follows :func:`scenemaker.deocclusion.base.make_crop` exactly (a square around the
visible mask's box, the box filling ``BOX_RATIO`` of the side); :func:`crop_box` and
:func:`warp_mask` repeat its arithmetic so that occlusion ratios can be measured without
warping images (``tests/deocclusion/test_deocclusion_data.py`` checks that the two agree).

The synthetic masks are drawn in image pixels over a fully visible object and return the
*occluder*: the (H, W) bool pixels that become white in the input.

* ``cutout``: another object's silhouette, scaled and placed over the object;
* ``border``: the object cut by a straight image edge (one side) or by two (a corner), as
  ``make_crop`` renders an object truncated by the real image border: white beyond the edge;
* ``brush``: thick random strokes (OpenCV polylines of random width).

Each generator aims at ``share`` of the object's visible pixels; the caller measures the
ratio actually obtained in crop space and redraws when it falls outside its range.
"""

from __future__ import annotations

import numpy as np

from .base import BOX_RATIO

SYNTHETIC_TYPES = ("cutout", "border", "brush")


def crop_box(mask: np.ndarray, ratio: float = BOX_RATIO) -> tuple[float, float, float, float]:
    """The square crop box (x0, y0, x1, y1) in image pixels that ``make_crop`` uses for ``mask``."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("mask is empty: no crop box")
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(y1 - y0, x1 - x0) / ratio
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return tuple(float(b) for b in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))


def shift_box(box: tuple[float, ...], offset: int) -> tuple[float, float, float, float]:
    """The same box in a frame padded by ``offset`` pixels on every side."""
    return tuple(float(b + offset) for b in box)


def warp_mask(mask: np.ndarray, box: tuple[float, ...], size: int) -> np.ndarray:
    """(size, size) bool: ``mask`` resampled into ``box`` (nearest, outside = False)."""
    from PIL import Image

    warped = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).transform(
        (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.NEAREST, fillcolor=0
    )
    return np.asarray(warped) > 127


def warp_image(image: np.ndarray, box: tuple[float, ...], size: int) -> np.ndarray:
    """(size, size, 3) uint8: ``image`` resampled into ``box`` (bilinear, outside = white)."""
    from PIL import Image

    warped = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).transform(
        (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.BILINEAR,
        fillcolor=(255, 255, 255),
    )  # fmt: skip
    return np.asarray(warped).copy()


def silhouette(mask: np.ndarray) -> np.ndarray | None:
    """A mask cut to its bounding box (None if empty): a cut-out shape."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return None
    return np.asarray(mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], dtype=bool)


def _box_side(visible: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    rows, cols = np.nonzero(visible)
    if len(rows) == 0:
        raise ValueError("visible mask is empty: nothing to occlude")
    side = float(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
    return rows, cols, side


def _paste(shape: tuple[int, int], shape_mask: np.ndarray, centre, length: float) -> np.ndarray:
    """``shape_mask`` resized so its longer side is ``length`` px, centred at (x, y), clipped."""
    import cv2

    h, w = shape_mask.shape
    scale = length / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(shape_mask.astype(np.uint8), (new_w, new_h), interpolation=0) > 0
    canvas = np.zeros(shape, dtype=bool)
    x0, y0 = round(centre[0] - new_w / 2), round(centre[1] - new_h / 2)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + new_w, shape[1]), min(y0 + new_h, shape[0])
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = resized[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return canvas


def cutout_mask(
    visible: np.ndarray, silhouettes: list[np.ndarray], share: float, rng: np.random.Generator
) -> np.ndarray:
    """Another object's silhouette pasted over the object, covering about ``share`` of it.

    The silhouette is centred near a random object pixel (with a random offset, so it often
    covers an edge, as a real occluder does); its size is found by bisection on the covered
    share.
    """
    if not silhouettes:
        raise ValueError("no silhouettes to cut out")
    rows, cols, side = _box_side(visible)
    shape_mask = silhouettes[int(rng.integers(len(silhouettes)))]
    if rng.uniform() < 0.5:
        shape_mask = shape_mask[:, ::-1]
    k = int(rng.integers(len(rows)))
    centre = (cols[k] + rng.uniform(-0.3, 0.3) * side, rows[k] + rng.uniform(-0.3, 0.3) * side)
    total = visible.sum()

    def covered(length: float) -> tuple[float, np.ndarray]:
        occluder = _paste(visible.shape, shape_mask, centre, length)
        return float((occluder & visible).sum() / total), occluder

    lo, hi = 1.0, 4.0 * side
    best = covered(hi)
    for _ in range(14):
        mid = (lo + hi) / 2
        got = covered(mid)
        if abs(got[0] - share) < abs(best[0] - share):
            best = got
        if got[0] < share:
            lo = mid
        else:
            hi = mid
    return best[1]


def border_mask(visible: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The object cut by a straight image edge (60%) or an image corner (40%): about ``share``
    of its pixels lie beyond the edge(s). Returns the region beyond the edge(s)."""
    rows, cols, _ = _box_side(visible)
    h, w = visible.shape
    yy, xx = np.mgrid[0:h, 0:w]
    # a coordinate that grows towards the cut side's opposite: "beyond the edge" is coord < t
    axes = {
        "left": (cols, xx),
        "right": (-cols, -xx),
        "top": (rows, yy),
        "bottom": (-rows, -yy),
    }
    corner = rng.uniform() < 0.4
    if corner:
        sides = [("left", "right")[int(rng.integers(2))], ("top", "bottom")[int(rng.integers(2))]]
        shares = [share * rng.uniform(0.3, 0.7)]
        shares.append(share - shares[0])
    else:
        sides = [("left", "right", "top", "bottom")[int(rng.integers(4))]]
        shares = [share]
    n = len(rows)
    removed = np.zeros(n, dtype=bool)
    region = np.zeros((h, w), dtype=bool)
    for side_name, part in zip(sides, shares, strict=True):
        coord, grid = axes[side_name]
        remaining = np.sort(coord[~removed])
        k = min(max(int(round(part * n)), 0), len(remaining) - 1)
        if k <= 0:
            continue
        threshold = remaining[k]
        removed |= coord < threshold
        region |= grid < threshold
    return region


def brush_mask(
    visible: np.ndarray, share: float, rng: np.random.Generator, max_strokes: int = 12
) -> np.ndarray:
    """Thick random strokes (2-4 point polylines, width 8-25% of the object's box) drawn over
    the object until at least ``share`` of it is covered (or ``max_strokes`` are drawn)."""
    import cv2

    rows, cols, side = _box_side(visible)
    margin = 0.15 * side
    lo = np.array([cols.min() - margin, rows.min() - margin])
    hi = np.array([cols.max() + margin, rows.max() + margin])
    canvas = np.zeros(visible.shape, dtype=np.uint8)
    total = visible.sum()
    for _ in range(max_strokes):
        points = rng.uniform(lo, hi, size=(int(rng.integers(2, 5)), 2))
        width = max(2, int(round(rng.uniform(0.08, 0.25) * side)))
        cv2.polylines(canvas, [np.rint(points).astype(np.int32)], False, 1, thickness=width)
        if (canvas.astype(bool) & visible).sum() >= share * total:
            break
    return canvas.astype(bool)


def synthetic_occluder(
    kind: str,
    visible: np.ndarray,
    share: float,
    rng: np.random.Generator,
    silhouettes: list[np.ndarray] | None = None,
) -> np.ndarray:
    """(H, W) bool occluder of one synthetic ``kind`` ("cutout" | "border" | "brush")."""
    if kind == "cutout":
        return cutout_mask(visible, silhouettes or [], share, rng)
    if kind == "border":
        return border_mask(visible, share, rng)
    if kind == "brush":
        return brush_mask(visible, share, rng)
    raise ValueError(f"synthetic mask type must be one of {SYNTHETIC_TYPES}, got {kind!r}")
