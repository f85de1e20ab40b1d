"""Shared building blocks of the procedural shapes: manifold3d solids in metres, +y up.

Every category builder composes these: boxes, cylinders, rods, tubes, tori, lathe profiles
and open vessels, plus rotation about a pivot, a hinge bead and the random draws
(``_u``, ``_chance``, ``_pick``) that all builders take from one numpy ``Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import manifold3d
import numpy as np

_Solid = manifold3d.Manifold
_SEG = 28
"""Circular segments of body-sized round parts (cups, pots, lamp shades)."""
_SEG_SMALL = 14
"""Circular segments of rods, knobs and leaves."""
_EMBED = 0.003
"""Metres by which touching parts sink into each other, so unions stay one body."""


def _union(parts: Sequence[_Solid]) -> _Solid:
    return _Solid.batch_boolean(list(parts), manifold3d.OpType.Add)


def _block(size, x=0.0, y=0.0, z=0.0) -> _Solid:
    """Axis-aligned box of ``size`` (x, y, z) whose bottom face is centred on (x, y, z)."""
    return _Solid.cube(tuple(size), True).translate((x, y + size[1] / 2, z))


def _cylinder(radius, height, x=0.0, y=0.0, z=0.0, radius_top=None, segments=_SEG) -> _Solid:
    """Vertical cylinder (a frustum with ``radius_top``) standing on (x, y, z)."""
    top = radius if radius_top is None else radius_top
    solid = _Solid.cylinder(height, radius, top, segments)
    return solid.rotate((-90.0, 0.0, 0.0)).translate((x, y, z))


def _rod(start, end, radius, radius_end=None, segments=_SEG_SMALL) -> _Solid:
    """Cylinder (a frustum with ``radius_end``) from point ``start`` to point ``end``."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = float(np.linalg.norm(axis))
    axis /= length
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(helper, axis)
    u /= np.linalg.norm(u)
    frame = np.column_stack([u, np.cross(axis, u), axis, start])
    r_end = radius if radius_end is None else radius_end
    return _Solid.cylinder(length, radius, r_end, segments).transform(frame)


def _ball(radius, center, scale=(1.0, 1.0, 1.0), segments=_SEG_SMALL) -> _Solid:
    """Sphere, or ellipsoid with semi-axes ``radius * scale``."""
    return _Solid.sphere(radius, segments).scale(tuple(scale)).translate(tuple(center))


def _path(points, radius, radius_end=None, segments=_SEG_SMALL) -> _Solid:
    """Tube along a polyline (rods joined by balls), radius tapering linearly to ``radius_end``."""
    points = np.asarray(points, float)
    radii = np.linspace(radius, radius if radius_end is None else radius_end, len(points))
    parts = [
        _rod(points[i], points[i + 1], radii[i], radii[i + 1], segments)
        for i in range(len(points) - 1)
    ]
    # joint balls a little fatter than the rods, so the rods' end rims do not lie on the sphere
    parts += [
        _ball(radii[i] * 1.05, points[i], segments=segments) for i in range(1, len(points) - 1)
    ]
    return _union(parts)


def _ring(major, minor, segments=_SEG, degrees=360.0) -> _Solid:
    """Torus around the z axis (a ring standing in the x-y plane), centred on the origin."""
    section = manifold3d.CrossSection.circle(minor, 12).translate((major, 0.0))
    return _Solid.revolve(section, segments, degrees)


def _lathe(profile, segments=_SEG) -> _Solid:
    """_Solid of revolution about the y axis from a closed polygon of (radius, height) points."""
    points = np.asarray(profile, float)
    x, y = points[:, 0], points[:, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # CrossSection wants CCW
        points = points[::-1]
    return _Solid.revolve(manifold3d.CrossSection([points]), segments).rotate((-90.0, 0.0, 0.0))


def _vessel(heights, radii, wall, floor, segments=_SEG) -> tuple[_Solid, _Solid]:
    """(outer solid, cavity) of a lathe vessel with outer radius ``radii`` at ``heights``.

    The cavity starts at height ``floor`` and pokes out above the rim, so ``outer - cavity``
    is open at the top; handles are added to ``outer`` before the cavity is subtracted.
    """
    heights, radii = np.asarray(heights, float), np.asarray(radii, float)
    outer = _lathe(
        [(0.0, heights[0]), *zip(radii, heights, strict=True), (0.0, heights[-1])], segments
    )
    above = heights > floor
    inner_h = np.concatenate([[floor], heights[above], [heights[-1] + 0.05]])
    inner_r = np.concatenate([[np.interp(floor, heights, radii)], radii[above], radii[-1:]])
    inner_r = np.maximum(inner_r - wall, wall)
    cavity = _lathe(
        [(0.0, floor), *zip(inner_r, inner_h, strict=True), (0.0, inner_h[-1])], segments
    )
    return outer, cavity


def _turn(solid: _Solid, degrees_xyz, pivot) -> _Solid:
    """Rotate about ``pivot`` (Euler x, then y, then z in the global frame, degrees)."""
    p = np.asarray(pivot, float)
    return solid.translate(tuple(-p)).rotate(tuple(degrees_xyz)).translate(tuple(p))


def _hinge_x(length, radius, y, z, x=0.0) -> _Solid:
    """Bead along x through (y, z): joins a lid or flap to its box at any opening angle."""
    return (
        _Solid.cylinder(length, radius, radius, _SEG_SMALL, True)
        .rotate((0, 90, 0))
        .translate((x, y, z))
    )


def _xz(radius, degrees) -> tuple[float, float]:
    """(x, z) of the point at ``radius`` from the y axis, azimuth ``degrees`` (0 = +x, 90 = +z)."""
    a = np.radians(degrees)
    return float(radius * np.cos(a)), float(radius * np.sin(a))


def _u(rng, low, high) -> float:
    return float(rng.uniform(low, high))


def _chance(rng, p) -> bool:
    return bool(rng.random() < p)


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _smooth_profile(control_h, control_r, count=16) -> tuple[np.ndarray, np.ndarray]:
    """Radii through control points with smoothstep easing between them (vases, teapots)."""
    heights = np.linspace(control_h[0], control_h[-1], count)
    index = np.clip(np.searchsorted(control_h, heights, side="right") - 1, 0, len(control_h) - 2)
    h0, h1 = np.asarray(control_h)[index], np.asarray(control_h)[index + 1]
    r0, r1 = np.asarray(control_r)[index], np.asarray(control_r)[index + 1]
    t = np.clip((heights - h0) / (h1 - h0), 0.0, 1.0)
    return heights, r0 + (r1 - r0) * t * t * (3 - 2 * t)
