"""Layout sampler: objects on a ground plane (y = 0) with random yaw and non-intersecting boxes.

By default each object stands upright on the floor (its box bottom at y = 0) and turns about
+y. With ``any_face`` an object may rest on any of the six faces of its box (lying on its side
or upside down), and with ``stack`` it may rest on top of an object placed before it (given
the objects' surface samples, lowered from the support's box top onto its surface). Every
box keeps one axis vertical, so two boxes intersect exactly when their footprints (oriented
rectangles in the xz plane, separating-axis test with a clearance) and their height intervals
both overlap. Objects are placed one by one next to (or on) an already placed one, so scenes
are compact and views from low elevations show objects hiding each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.boxes import convex_polygons_overlap, rectangle_corners
from ..geometry.rotations import yaw_matrix
from ..scene import Pose


class LayoutError(ValueError):
    """Layout settings that cannot be satisfied (e.g. more objects than fit in the arena)."""


@dataclass
class LayoutConfig:
    min_objects: int = 2
    """Fewest objects per scene."""
    max_objects: int = 5
    """Most objects per scene (the paper: 2-5; up to 12 tested, at most 253)."""
    arena_radius: float | None = None
    """Every footprint must lie within this radius (metres) of the origin; None: unbounded."""
    clearance: float = 0.02
    """Minimum gap between two footprints, metres."""
    spread: float = 0.5
    """Largest extra gap between neighbours, as a fraction of the newcomer's footprint radius
    (0: objects placed as close as the clearance allows)."""
    max_tries: int = 300
    """Placement attempts per object before the layout is declared impossible."""
    any_face: float = 0.0
    """Probability that an object rests on one of the five other faces of its box (on its
    side, upside down) instead of standing upright."""
    stack: float = 0.0
    """Probability that an object (after the first) is put on top of a placed object whose
    top is large enough, instead of on the floor."""

    def validate(self) -> None:
        if self.min_objects < 1 or self.max_objects < self.min_objects:
            raise LayoutError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}..{self.max_objects}"
            )
        if self.max_objects > 253:
            raise LayoutError(f"at most 253 objects per scene (uint8 ids), got {self.max_objects}")
        if self.arena_radius is not None and self.arena_radius <= 0:
            raise LayoutError(f"arena_radius must be positive, got {self.arena_radius}")
        for name in ("any_face", "stack"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise LayoutError(f"{name} must be a probability in [0, 1], got {value}")


# rotations laying a canonical box on each face: the chosen axis direction points down
# (+y first: upright)
RESTING_FACES = (
    np.eye(3),
    np.diag([1.0, -1.0, -1.0]),  # upside down
    np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # on a side (x up)
    np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),  # on its back / front
    np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
)


@dataclass
class Footprint:
    corners: np.ndarray  # (4, 2) xz
    radius: float  # circumradius of the rectangle


def object_pose(
    extents: np.ndarray, size: float, yaw: float, center_xz, face: int = 0, base: float = 0.0
) -> Pose:
    """Pose resting a canonical mesh with box ``extents`` (each <= 2) on face ``face`` of its
    box (0: upright; see RESTING_FACES), turned by ``yaw``, its bottom at height ``base``."""
    rotation = yaw_matrix(yaw) @ RESTING_FACES[face]
    height = _placed_extents(extents, face)[1]
    t = np.array([center_xz[0], base + size / 2.0 * height / 2.0, center_xz[1]])
    return Pose(rotation, t, size)


def _placed_extents(extents: np.ndarray, face: int) -> np.ndarray:
    """Box extents along the (pre-yaw) x, y, z axes once laid on ``face``."""
    return np.abs(RESTING_FACES[face]) @ np.asarray(extents, dtype=np.float64)


def footprint(extents: np.ndarray, size: float, yaw: float, center_xz) -> Footprint:
    half = (size / 2.0 * extents[0] / 2.0, size / 2.0 * extents[2] / 2.0)
    return Footprint(rectangle_corners(center_xz, half, yaw), float(np.hypot(*half)))


def sample_layout(
    extents: list[np.ndarray],
    sizes: list[float],
    rng: np.random.Generator,
    config: LayoutConfig,
    surfaces: list[np.ndarray] | None = None,
) -> list[Pose]:
    """Place objects with canonical box ``extents`` and longest sides ``sizes`` (metres).

    ``surfaces``: each object's canonical surface samples (M, 3). With them a stacked object
    is lowered from the top of its support's box until its surface rests on the surfaces
    below it (off a cone's apex it comes down onto the slope); without them it rests on the
    support's box.

    Returns one Pose per object. Raises LayoutError when an object cannot be placed in
    ``config.max_tries`` attempts (or, with an arena, when the footprints cannot fit at all).
    """
    n = len(extents)
    if n != len(sizes):
        raise ValueError(f"got {n} extents but {len(sizes)} sizes")
    if surfaces is not None and (
        len(surfaces) != n or any(np.ndim(p) != 2 or np.shape(p)[-1] != 3 for p in surfaces)
    ):
        raise ValueError(f"surfaces: expected {n} arrays of (M, 3) surface samples")
    if config.arena_radius is not None:
        area = sum((s / 2.0 * e[0]) * (s / 2.0 * e[2]) for e, s in zip(extents, sizes, strict=True))
        if area > 0.6 * np.pi * config.arena_radius**2:
            raise LayoutError(
                f"{n} objects with {area:.2f} m^2 of footprint cannot fit in an arena of radius "
                f"{config.arena_radius} m; use fewer objects or a larger arena"
            )
    poses: list[Pose] = []
    prints: list[Footprint] = []
    centers: list[np.ndarray] = []
    heights: list[tuple[float, float]] = []  # (bottom, top) of each placed box
    supports: list[bool] = []  # already carries an object on top
    posed: list[np.ndarray] = []  # each placed object's surface samples, world frame
    for k in range(n):
        face = 0
        if config.any_face > 0 and rng.random() < config.any_face:
            face = int(rng.integers(1, len(RESTING_FACES)))
        placed_ext = _placed_extents(extents[k], face)
        tall = sizes[k] / 2.0 * placed_ext[1]
        for _ in range(config.max_tries):
            yaw = float(rng.uniform(0.0, 2.0 * np.pi))
            probe = footprint(placed_ext, sizes[k], yaw, (0.0, 0.0))
            base = 0.0
            stacked_on = None
            if k > 0 and config.stack > 0 and rng.random() < config.stack:
                stacked_on = _stack_target(prints, supports, probe, rng)
            if k == 0:
                center = np.zeros(2)
            elif stacked_on is not None:
                # on top of a placed object, its footprint inside the support's
                slack = max(prints[stacked_on].radius - probe.radius, 0.0)
                offset = rng.uniform(-0.5, 0.5, 2) * slack
                center = centers[stacked_on] + offset
                base = heights[stacked_on][1] + config.clearance / 2
            else:
                # slide the newcomer along a random direction until it just clears a random
                # placed object, then add a random gap: compact scenes, hence occlusion
                anchor = int(rng.integers(k))
                angle = rng.uniform(0.0, 2.0 * np.pi)
                direction = np.array([np.cos(angle), np.sin(angle)])
                touch = _contact_distance(
                    prints[anchor],
                    centers[anchor],
                    direction,
                    placed_ext,
                    sizes[k],
                    yaw,
                    config.clearance,
                )
                gap = rng.uniform(0.0, config.spread) * probe.radius
                center = centers[anchor] + (touch + gap) * direction
            fp = footprint(placed_ext, sizes[k], yaw, center)
            if config.arena_radius is not None and (
                np.linalg.norm(fp.corners, axis=1).max() > config.arena_radius
            ):
                continue
            span = (base, base + tall)
            if any(
                _spans_overlap(span, heights[j])
                and convex_polygons_overlap(fp.corners, o.corners, config.clearance)
                for j, o in enumerate(prints)
            ):
                continue
            if stacked_on is not None and not _inside(fp, prints[stacked_on]):
                continue
            pose = object_pose(extents[k], sizes[k], yaw, center, face, base)
            if surfaces is not None:
                points = pose.apply(np.asarray(surfaces[k], dtype=np.float64))
                if stacked_on is not None:  # down onto what is really below it
                    drop = _rest_drop(points, posed, sizes[k]) - config.clearance / 2
                    drop = min(max(drop, 0.0), base)
                    pose = Pose(pose.R, pose.t - np.array([0.0, drop, 0.0]), pose.s)
                    points[:, 1] -= drop
                    span = (base - drop, base - drop + tall)
                posed.append(points)
            poses.append(pose)
            prints.append(fp)
            centers.append(center)
            heights.append(span)
            supports.append(False)
            if stacked_on is not None:
                supports[stacked_on] = True
            break
        else:
            raise LayoutError(
                f"could not place object {k + 1} of {n} without overlap in {config.max_tries} "
                "tries; use fewer objects or a larger arena"
            )
    return poses


def _rest_drop(points: np.ndarray, others: list[np.ndarray], size: float) -> float:
    """How far surface samples ``points`` (M, 3) can move down (-y) before they meet the
    samples of ``others`` or the floor (y = 0): on a grid of xz cells (3 % of ``size``), the
    least height of an own lowest point over the highest other point in that cell or a
    neighbouring one, among those below it."""
    cell = 0.03 * size
    own = np.floor(points[:, [0, 2]] / cell).astype(np.int64)
    keys, inverse = np.unique(own, axis=0, return_inverse=True)
    lowest = np.full(len(keys), np.inf)
    np.minimum.at(lowest, inverse.reshape(-1), points[:, 1])
    drop = float(points[:, 1].min())  # to the floor
    if not others:
        return drop
    other = np.concatenate(others)
    cells = np.floor(other[:, [0, 2]] / cell).astype(np.int64)
    code = keys[:, 0] * (1 << 32) + keys[:, 1]  # sorted, as np.unique left them
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            c = (cells[:, 0] + di) * (1 << 32) + cells[:, 1] + dj
            at = np.minimum(np.searchsorted(code, c), len(code) - 1)
            hit = code[at] == c
            if not hit.any():
                continue
            gap = lowest[at[hit]] - other[hit, 1]
            gap = gap[gap >= -1e-9]  # only what lies below the object's lowest point there
            if len(gap):
                drop = min(drop, float(gap.min()))
    return max(drop, 0.0)


def _spans_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] - 1e-9 and b[0] < a[1] - 1e-9


def _stack_target(prints, supports, probe: Footprint, rng) -> int | None:
    """A placed object free on top whose footprint can hold ``probe``, or None."""
    fits = [j for j, fp in enumerate(prints) if not supports[j] and fp.radius >= probe.radius]
    return int(rng.choice(fits)) if fits else None


def _inside(fp: Footprint, support: Footprint) -> bool:
    """The centre of ``fp`` lies within the support's rectangle (the newcomer does not tip)."""
    centre = fp.corners.mean(0)
    corners = support.corners
    for i in range(4):
        edge = corners[(i + 1) % 4] - corners[i]
        rel = centre - corners[i]
        if edge[0] * rel[1] - edge[1] * rel[0] < -1e-9:
            break
    else:
        return True
    for i in range(4):  # the other winding
        edge = corners[(i + 1) % 4] - corners[i]
        rel = centre - corners[i]
        if edge[0] * rel[1] - edge[1] * rel[0] > 1e-9:
            return False
    return True


def _contact_distance(anchor: Footprint, anchor_center, direction, extents, size, yaw, clearance):
    """Smallest distance from the anchor's centre, along ``direction``, at which the newcomer's
    footprint clears the anchor's by ``clearance`` (bisection: overlapping translations of two
    convex shapes form a convex set, so along a ray from inside it they form one interval)."""
    lo, hi = 0.0, anchor.radius + footprint(extents, size, yaw, (0.0, 0.0)).radius + 2 * clearance
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        fp = footprint(extents, size, yaw, anchor_center + mid * direction)
        if convex_polygons_overlap(fp.corners, anchor.corners, clearance):
            lo = mid
        else:
            hi = mid
    return hi


def boxes_intersect(extents: list[np.ndarray], poses: list[Pose]) -> bool:
    """True if any two placed boxes (each with one axis vertical: upright, on a side or
    upside down, turned about +y) intersect (touching is not)."""
    prints, spans = [], []
    for e, p in zip(extents, poses, strict=True):
        half = p.s / 2.0 * np.asarray(e, dtype=np.float64) / 2.0
        up = int(np.argmax(np.abs(p.R[1])))  # the box axis that points up or down
        horizontal = [i for i in range(3) if i != up]
        axis = p.R[:, horizontal[0]]
        yaw = float(np.arctan2(-axis[2], axis[0]))
        prints.append(
            Footprint(
                rectangle_corners(
                    (p.t[0], p.t[2]), (half[horizontal[0]], half[horizontal[1]]), yaw
                ),
                float(np.hypot(half[horizontal[0]], half[horizontal[1]])),
            )
        )
        spans.append((p.t[1] - half[up], p.t[1] + half[up]))
    return any(
        _spans_overlap(spans[i], spans[j])
        and convex_polygons_overlap(prints[i].corners, prints[j].corners, -1e-9)
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
    )
