"""Render-and-compare score of candidate poses against one object's observation.

For each object the observation is cut to a crop around its visible mask (enlarged so that a
candidate that is too big or misplaced still shows where it spills over) and resampled to at
most ``max_tile`` pixels a side. A candidate's depth is rendered in that crop
(:class:`~scenemaker.render.candidates.CandidateRenderer`) and scored, lower is better::

    score = (1 - IoU) + depth_weight * residual

* ``IoU`` = rendered pixels inside the visible mask / (mask pixels + violating pixels), where a
  rendered pixel outside the mask *violates* when the camera saw something farther away there
  (free space: observed depth more than ``tolerance`` behind the rendered surface) or saw
  nothing at all (no depth and no other object's mask). Rendered pixels behind an observed
  surface (another object or the floor in front) are hidden: they do not count against it.
* ``residual``: mean |rendered - observed depth| over rendered mask pixels with valid depth,
  each capped at ``cap`` and divided by it (1 when the candidate covers none of the mask).

The tolerance and cap grow with the candidate's size and with depth noise (``depth_noise``:
the expected standard deviation of the observed depth at 1 m, scaled by z^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..render.candidates import crop_intrinsics


@dataclass
class CropObservation:
    """One object's observation, resampled to its crop grid."""

    box: tuple[int, int, int, int]  # x0, y0, w, h in image pixels
    stride: int  # crop pixel (i, j) = image pixel (x0 + i * stride, y0 + j * stride)
    tile_w: int
    tile_h: int
    K: np.ndarray  # (3, 3) intrinsics of the crop grid
    depth: np.ndarray  # (th, tw) observed camera z, 0 = invalid
    own: np.ndarray  # (th, tw) bool: this object's visible mask
    other: np.ndarray  # (th, tw) bool: other objects' visible masks
    own_pixels: int
    free: tuple[bool, bool, bool, bool] = (False, False, False, False)
    """Sides (left, right, top, bottom) where the visible mask ends at the object's own
    outline: not at the image border, and no other object in front next to it there."""

    def rays(self) -> np.ndarray:
        """(th, tw, 3) camera-frame ray of each crop pixel, scaled to z = 1."""
        v, u = np.mgrid[0 : self.tile_h, 0 : self.tile_w]
        x = (u - self.K[0, 2]) / self.K[0, 0]
        y = (v - self.K[1, 2]) / self.K[1, 1]
        return np.stack([x, y, np.ones(u.shape)], -1)


def crop_observation(
    depth: np.ndarray,
    K: np.ndarray,
    own: np.ndarray,
    other: np.ndarray,
    margin: float = 0.5,
    max_tile: int = 64,
) -> CropObservation | None:
    """The crop around ``own`` (None for an empty mask): its box grown by ``margin`` of its
    longer side on every side, clipped to the image, sampled every ``stride`` pixels so that
    its longer side has <= ``max_tile`` px."""
    rows, cols = np.nonzero(own)
    if len(rows) == 0:
        return None
    h_img, w_img = own.shape
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    grow = int(np.ceil(margin * max(y1 - y0, x1 - x0)))
    x0, y0 = max(0, x0 - grow), max(0, y0 - grow)
    x1, y1 = min(w_img, x1 + grow), min(h_img, y1 + grow)
    w, h = int(x1 - x0), int(y1 - y0)
    stride = max(1, int(np.ceil(max(w, h) / max_tile)))
    grid = (slice(y0, y1, stride), slice(x0, x1, stride))
    crop_depth = np.asarray(depth, dtype=np.float32)[grid]
    crop_depth = np.where(np.isfinite(crop_depth) & (crop_depth > 0), crop_depth, 0.0)
    crop_own = np.asarray(own, dtype=bool)[grid]
    th, tw = crop_own.shape
    if not crop_own.any():  # a mask thinner than the sampling step: keep its pixels
        crop_own = _max_pool(np.asarray(own, dtype=bool)[y0:y1, x0:x1], stride, th, tw)
    crop_other = np.asarray(other, dtype=bool)[grid] & ~crop_own
    border = (cols.min() == 0, cols.max() == w_img - 1, rows.min() == 0, rows.max() == h_img - 1)
    free = tuple(
        not cut and not hidden
        for cut, hidden in zip(
            border, _occluded_sides(crop_own, crop_other, crop_depth), strict=True
        )
    )
    return CropObservation(
        (int(x0), int(y0), w, h), stride, tw, th, crop_intrinsics(K, x0, y0, stride),
        crop_depth.astype(np.float32), crop_own, crop_other, int(crop_own.sum()), free,
    )  # fmt: skip


def _occluded_sides(own: np.ndarray, other: np.ndarray, depth: np.ndarray):
    """(left, right, top, bottom): whether some mask pixel's neighbour on that side belongs to
    another object that is nearer (or has no depth): the outline there may be hidden."""
    result = []
    for axis, step in ((1, -1), (1, 1), (0, -1), (0, 1)):
        n = own.shape[axis]
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        # mask pixel at i, neighbour at i + step
        a[axis] = slice(max(0, -step), n - max(0, step))
        b[axis] = slice(max(0, step), n - max(0, -step))
        edge = own[tuple(a)] & other[tuple(b)]
        if edge.any():
            d_own, d_nb = depth[tuple(a)][edge], depth[tuple(b)][edge]
            result.append(
                bool(((d_nb <= 0) | (d_nb < d_own + 0.02 * np.maximum(d_own, 0.1))).any())
            )
        else:
            result.append(False)
    return tuple(result)


def _max_pool(mask: np.ndarray, stride: int, th: int, tw: int) -> np.ndarray:
    out = np.zeros((th, tw), dtype=bool)
    rr, cc = np.nonzero(mask)
    out[np.minimum(rr // stride, th - 1), np.minimum(cc // stride, tw - 1)] = True
    return out


@dataclass
class ScoreSettings:
    depth_weight: float = 0.5
    """Weight of the capped depth residual against (1 - IoU)."""
    tolerance: float = 0.02
    """Metres a rendered surface may lie in front of the observed depth before it violates
    free space (plus ``tolerance_size`` x size and the depth noise)."""
    tolerance_size: float = 0.05
    cap_size: float = 0.1
    """Residual cap, as a share of the candidate's size (plus the depth noise)."""
    depth_noise: float = 0.0
    """Expected depth noise standard deviation at 1 m (metres; grows with z^2)."""
    penetration_weight: float = 2.0
    """Weight of how deep the candidate goes below the support plane (share of its size)."""
    gap_weight: float = 1.0
    """Weight of the gap between the candidate's lowest part and the support plane or another
    object's observed surface (share of its size): objects rest on something."""
    box_weight: float = 0.0
    """Weight of how far the rendered silhouette's extreme pixels miss the visible mask's on
    its free sides (share of the mask's longer side; 1 for a candidate that draws nothing):
    a thin part that sticks out or falls short costs few pixels but moves the object's box."""
    size_prior: float = 0.0
    """Weight of |log(size / prior size)|: breaks ties the image leaves open (an object cut by
    the image border or hidden behind others shows only a lower bound on its size)."""
    size_range: float = 4.0
    """Sizes more than this factor above or below the prior size (the pose model's median)
    cost 10 per unit of log size beyond it (0: no limit). An object cut by the image border
    shows only a lower bound on its size, and a search could grow it without end: a floor
    lamp cut by the top border grew to 17 x its size in one validation run (another setting
    of the search), 2.4 x with this limit. The default search kept every pose of the 180
    validation scenes (docs/MODELS.md)."""


def score_depths(
    rendered: np.ndarray,
    sizes: np.ndarray,
    crop: CropObservation,
    settings: ScoreSettings,
    prior_size: float | None = None,
) -> dict[str, np.ndarray]:
    """Scores of (N, th, tw) rendered depths of candidates with sizes (N,):
    {"score", "iou", "residual", "violations", "hits"} arrays of length N."""
    z = rendered
    drawn = z > 0
    D = crop.depth[None]
    valid = D > 0
    own = crop.own[None]
    sizes = np.asarray(sizes, dtype=np.float32).reshape(-1, 1, 1)
    noise = settings.depth_noise * np.square(np.where(valid, D, 1.0)) * 3.0
    tolerance = settings.tolerance + settings.tolerance_size * sizes + noise
    cap = settings.cap_size * sizes + noise
    hit = drawn & own
    outside = drawn & ~own
    seen_in_front = valid & (z < D - tolerance)
    violation = outside & (seen_in_front | (~valid & ~crop.other[None]))
    hits = hit.sum((1, 2))
    violations = violation.sum((1, 2))
    iou = hits / np.maximum(crop.own_pixels + violations, 1)
    measured = hit & valid
    residual_sum = np.where(measured, np.minimum(np.abs(z - D), cap) / cap, 0.0).sum((1, 2))
    counted = measured.sum((1, 2))
    # rendered pixels of the mask without valid depth count as neither good nor bad
    residual = np.where(counted > 0, residual_sum / np.maximum(counted, 1), 1.0)
    score = (1.0 - iou) + settings.depth_weight * residual
    if settings.box_weight > 0 and any(crop.free):
        score = score + settings.box_weight * box_misfit(drawn, crop)
    if prior_size is not None and settings.size_prior > 0:
        score = score + settings.size_prior * np.abs(np.log(sizes.reshape(-1) / prior_size))
    if prior_size is not None and settings.size_range > 0:
        beyond = np.abs(np.log(sizes.reshape(-1) / prior_size)) - np.log(settings.size_range)
        score = score + 10.0 * np.maximum(beyond, 0.0)
    return {
        "score": score.astype(np.float64),
        "iou": iou.astype(np.float64),
        "residual": residual.astype(np.float64),
        "violations": violations,
        "hits": hits,
    }


def depth_shift(rendered: np.ndarray, crop: CropObservation) -> np.ndarray:
    """(N,) median observed - rendered depth over each candidate's rendered mask pixels: how far
    to move it along the viewing ray (0 where they do not overlap)."""
    D = crop.depth[None]
    measured = (rendered > 0) & crop.own[None] & (D > 0)
    diff = np.where(measured, D - rendered, np.inf).reshape(len(rendered), -1)
    count = measured.reshape(len(rendered), -1).sum(1)
    shift = np.zeros(len(rendered))
    overlap = count > 0
    if overlap.any():
        # each row's median over its measured pixels (the others sort last, as inf), all rows
        # in one sort: np.nanmedian's result without its row-by-row loop
        ordered = np.sort(diff[overlap], axis=1)
        n = count[overlap]
        rows = np.arange(len(n))
        low, high = ordered[rows, (n - 1) // 2], ordered[rows, n // 2]
        shift[overlap] = (low + high) / 2
    return shift


def box_misfit(drawn: np.ndarray, crop: CropObservation) -> np.ndarray:
    """(N,) mean over the crop's free sides of |rendered extreme - mask extreme| in crop
    pixels over the mask's longer side, capped at 1 (1 where nothing is drawn)."""
    rows, cols = np.nonzero(crop.own)
    target = np.array([cols.min(), cols.max(), rows.min(), rows.max()], dtype=np.float64)
    span = max(cols.max() - cols.min(), rows.max() - rows.min(), 1)
    across = drawn.any(1)  # (N, tw): columns drawn
    down = drawn.any(2)  # (N, th): rows drawn
    empty = ~across.any(1)
    extremes = np.stack([
        across.argmax(1), crop.tile_w - 1 - across[:, ::-1].argmax(1),
        down.argmax(1), crop.tile_h - 1 - down[:, ::-1].argmax(1),
    ], 1).astype(np.float64)  # fmt: skip
    free = np.asarray(crop.free)
    miss = np.minimum(np.abs(extremes - target[None])[:, free] / span, 1.0).mean(1)
    return np.where(empty, 1.0, miss)
