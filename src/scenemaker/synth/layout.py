"""Layout sampler: objects on a ground plane (y = 0) with random yaw and non-intersecting boxes.

Each object stands on the floor (its box bottom at y = 0) and turns about +y. Because every
box spans y from 0 upwards, two boxes intersect exactly when their footprints (oriented
rectangles in the xz plane) do, which the separating-axis test checks with a clearance.
Objects are placed one by one next to an already placed one, so scenes are compact and views
from low elevations show objects hiding each other.
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

    def validate(self) -> None:
        if self.min_objects < 1 or self.max_objects < self.min_objects:
            raise LayoutError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}..{self.max_objects}"
            )
        if self.max_objects > 253:
            raise LayoutError(f"at most 253 objects per scene (uint8 ids), got {self.max_objects}")
        if self.arena_radius is not None and self.arena_radius <= 0:
            raise LayoutError(f"arena_radius must be positive, got {self.arena_radius}")


@dataclass
class Footprint:
    corners: np.ndarray  # (4, 2) xz
    radius: float  # circumradius of the rectangle


def object_pose(extents: np.ndarray, size: float, yaw: float, center_xz) -> Pose:
    """Pose standing a canonical mesh with box ``extents`` (each <= 2) on the floor."""
    t = np.array([center_xz[0], size / 2.0 * extents[1] / 2.0, center_xz[1]])
    return Pose(yaw_matrix(yaw), t, size)


def footprint(extents: np.ndarray, size: float, yaw: float, center_xz) -> Footprint:
    half = (size / 2.0 * extents[0] / 2.0, size / 2.0 * extents[2] / 2.0)
    return Footprint(rectangle_corners(center_xz, half, yaw), float(np.hypot(*half)))


def sample_layout(
    extents: list[np.ndarray],
    sizes: list[float],
    rng: np.random.Generator,
    config: LayoutConfig,
) -> list[Pose]:
    """Place objects with canonical box ``extents`` and longest sides ``sizes`` (metres).

    Returns one Pose per object. Raises LayoutError when an object cannot be placed in
    ``config.max_tries`` attempts (or, with an arena, when the footprints cannot fit at all).
    """
    n = len(extents)
    if n != len(sizes):
        raise ValueError(f"got {n} extents but {len(sizes)} sizes")
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
    for k in range(n):
        for _ in range(config.max_tries):
            yaw = float(rng.uniform(0.0, 2.0 * np.pi))
            probe = footprint(extents[k], sizes[k], yaw, (0.0, 0.0))
            if k == 0:
                center = np.zeros(2)
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
                    extents[k],
                    sizes[k],
                    yaw,
                    config.clearance,
                )
                gap = rng.uniform(0.0, config.spread) * probe.radius
                center = centers[anchor] + (touch + gap) * direction
            fp = footprint(extents[k], sizes[k], yaw, center)
            if config.arena_radius is not None and (
                np.linalg.norm(fp.corners, axis=1).max() > config.arena_radius
            ):
                continue
            if any(
                convex_polygons_overlap(fp.corners, o.corners, config.clearance) for o in prints
            ):
                continue
            poses.append(object_pose(extents[k], sizes[k], yaw, center))
            prints.append(fp)
            centers.append(center)
            break
        else:
            raise LayoutError(
                f"could not place object {k + 1} of {n} without overlap in {config.max_tries} "
                "tries; use fewer objects or a larger arena"
            )
    return poses


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
    """True if any two placed, floor-standing, yaw-only boxes intersect (touching is not)."""
    prints = []
    for e, p in zip(extents, poses, strict=True):
        yaw = float(np.arctan2(p.R[0, 2], p.R[0, 0]))
        prints.append(footprint(e, p.s, yaw, (p.t[0], p.t[2])))
    return any(
        convex_polygons_overlap(prints[i].corners, prints[j].corners, -1e-9)
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
    )
