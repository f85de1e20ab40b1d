"""Procedural everyday objects: CSG shapes built from their id alone (our own, CC0).

Each category builder draws proportions and part choices from a numpy ``Generator`` and returns
one manifold3d solid in metres, standing on y = 0 with +y up and its front towards +z. Parts
overlap by a few millimetres (or meet at a hinge bead) so the union is one connected watertight
body; hollow objects (mug, bowl, vase, box, ...) are carved with a boolean difference.
:class:`ProceduralSource` seeds the generator from a hash of the object id, then validates and
canonicalises the mesh (``scenemaker.geometry.canonical``).

The file holds one idea, a catalogue of shapes, so it stays one file despite its length; the
builders share the small primitive helpers at the top.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import manifold3d
import numpy as np

from scenemaker.geometry.canonical import canonicalize_mesh
from scenemaker.synth.sources.base import MeshError, ObjectAsset, ObjectSource, validate_mesh

_Solid = manifold3d.Manifold
_SEG = 28
"""Circular segments of body-sized round parts (cups, pots, lamp shades)."""
_SEG_SMALL = 14
"""Circular segments of rods, knobs and leaves."""
_EMBED = 0.003
"""Metres by which touching parts sink into each other, so unions stay one body."""


# --- primitives (metres, +y up) ------------------------------------------------------------


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


# --- furniture ---------------------------------------------------------------------------


def _chair(rng) -> _Solid:
    if _chance(rng, 0.25):
        return _office_chair(rng)
    seat_w, seat_d = _u(rng, 0.40, 0.52), _u(rng, 0.38, 0.50)
    seat_h, seat_t, back_h = _u(rng, 0.42, 0.48), _u(rng, 0.03, 0.06), _u(rng, 0.35, 0.55)
    seat_y = seat_h - seat_t
    leg, inset = _u(rng, 0.028, 0.045), _u(rng, 0.0, 0.03)
    lx, lz = seat_w / 2 - inset - leg / 2, seat_d / 2 - inset - leg / 2
    style = _pick(rng, ("panel", "slats", "rails"))
    round_legs = _chance(rng, 0.4)
    parts = [_block((seat_w, seat_t, seat_d), y=seat_y)]
    for sx in (-1, 1):
        for sz in (-1, 1):
            top = seat_h + back_h if sz < 0 and style != "panel" else seat_y + _EMBED
            if round_legs:
                parts.append(_cylinder(leg / 2, top, sx * lx, 0, sz * lz, segments=_SEG_SMALL))
            else:
                parts.append(_block((leg, top, leg), sx * lx, 0, sz * lz))
    if style == "panel":
        thick = _u(rng, 0.02, 0.035)
        size = (seat_w * _u(rng, 0.85, 1.0), back_h + seat_t, thick)
        panel = _block(size, 0, seat_y, -seat_d / 2 + thick / 2)
        parts.append(_turn(panel, (-_u(rng, 0, 14), 0, 0), (0, seat_h, -seat_d / 2)))
    else:
        rail_h = _u(rng, 0.04, 0.1)
        top_y = seat_h + back_h - rail_h
        parts.append(_block((2 * lx, rail_h, leg * 0.8), 0, top_y, -lz))
        if style == "slats":
            for x in np.linspace(-lx, lx, int(rng.integers(2, 6)) + 2)[1:-1]:
                size = (_u(rng, 0.015, 0.05), top_y - seat_h + 2 * _EMBED, leg * 0.6)
                parts.append(_block(size, x, seat_h - _EMBED, -lz))
        else:
            for y in np.linspace(seat_h, top_y, int(rng.integers(2, 4)) + 1)[1:-1]:
                parts.append(_block((2 * lx, rail_h * 0.6, leg * 0.6), 0, y, -lz))
    if _chance(rng, 0.4):  # side stretchers
        y = _u(rng, 0.08, 0.2)
        parts += [_block((leg * 0.6, leg * 0.6, 2 * lz), sx * lx, y) for sx in (-1, 1)]
    if _chance(rng, 0.35):  # armrests
        arm_y = seat_h + _u(rng, 0.18, 0.25)
        length = lz + leg / 2 + seat_d / 2
        for sx in (-1, 1):
            parts.append(_block((leg, arm_y - seat_y + _EMBED, leg), sx * lx, seat_y, lz))
            parts.append(
                _block((leg * 1.3, 0.025, length), sx * lx, arm_y, lz + leg / 2 - length / 2)
            )
    return _union(parts)


def _office_chair(rng) -> _Solid:
    seat_w, seat_d = _u(rng, 0.45, 0.55), _u(rng, 0.42, 0.50)
    seat_h, cushion, back_h = _u(rng, 0.44, 0.52), _u(rng, 0.06, 0.09), _u(rng, 0.4, 0.6)
    caster, spread = _u(rng, 0.022, 0.03), _u(rng, 0.26, 0.33)
    hub_y, seat_y = 2 * caster + 0.025, seat_h - cushion
    phase = _u(rng, 0, 72)
    parts = [
        _cylinder(0.035, 0.06, y=hub_y - 0.03, segments=_SEG_SMALL),
        _cylinder(0.022, seat_y - hub_y, y=hub_y, segments=_SEG_SMALL),
        _block((0.2, 0.045, 0.2), y=seat_y - 0.04),
        _block((seat_w, cushion, seat_d), y=seat_y),
    ]
    for k in range(5):
        x, z = _xz(spread, phase + 72 * k)
        parts.append(_rod((0, hub_y, 0), (x, hub_y - 0.01, z), 0.016))
        parts.append(_rod((x, caster, z), (x, hub_y - 0.005, z), 0.008))
        parts.append(_ball(caster, (x, caster, z)))
    back_z = -seat_d / 2 - 0.035
    spine = [(0, seat_y - 0.02, -0.06), (0, seat_y - 0.02, back_z), (0, seat_h + 0.1, back_z)]
    parts.append(_path(spine, 0.015))
    back = _block((seat_w * _u(rng, 0.85, 1.0), back_h, 0.05), 0, seat_h + 0.05, back_z)
    parts.append(_turn(back, (-_u(rng, 0, 12), 0, 0), (0, seat_h + 0.05, back_z)))
    if _chance(rng, 0.6):
        for sx in (-1, 1):
            x = sx * (seat_w / 2 + 0.01)
            parts.append(
                _path(
                    [(sx * (seat_w / 2 - 0.03), seat_y + 0.01, -0.05), (x, seat_h + 0.2, -0.05)],
                    0.012,
                )
            )
            parts.append(_block((0.05, 0.025, 0.22), x, seat_h + 0.19, -0.05))
    return _union(parts)


def _stool(rng) -> _Solid:
    height, seat_t, r_seat = _u(rng, 0.45, 0.8), _u(rng, 0.03, 0.05), _u(rng, 0.15, 0.21)
    seat_y = height - seat_t
    n_legs = 3 if _chance(rng, 0.45) else 4
    if n_legs == 3 or _chance(rng, 0.6):
        parts = [_cylinder(r_seat, seat_t, y=seat_y)]
        phase = _u(rng, 0, 360 / n_legs)
    else:
        parts = [_block((1.8 * r_seat, seat_t, 1.8 * r_seat), y=seat_y)]
        phase = 45.0
    r_top = r_seat * _u(rng, 0.55, 0.75)
    r_bottom = r_top + _u(rng, 0.01, 0.08)
    leg_r = _u(rng, 0.012, 0.022)
    legs = []
    for k in range(n_legs):
        angle = phase + k * 360 / n_legs
        bx, bz = _xz(r_bottom, angle)
        tx, tz = _xz(r_top, angle)
        legs.append((np.array([bx, -0.05, bz]), np.array([tx, seat_y + _EMBED, tz])))
        parts.append(_rod(*legs[-1], leg_r))

    def on_leg(k, y):
        bottom, top = legs[k % n_legs]
        return bottom + (top - bottom) * (y - bottom[1]) / (top[1] - bottom[1])

    if _chance(rng, 0.5):  # footrest ring
        y = height * _u(rng, 0.25, 0.4)
        radius = float(np.hypot(*on_leg(0, y)[[0, 2]]))
        parts.append(_ring(radius, _u(rng, 0.007, 0.011)).rotate((90, 0, 0)).translate((0, y, 0)))
    else:  # rungs between some neighbouring legs, at staggered heights
        for k in range(n_legs):
            if k == 0 or _chance(rng, 0.5):
                y = height * _u(rng, 0.18, 0.35)
                parts.append(_rod(on_leg(k, y), on_leg(k + 1, y), leg_r * 0.7))
    if _chance(rng, 0.25):  # low backrest
        z = -0.8 * r_seat
        top = height + _u(rng, 0.15, 0.25)
        parts += [_rod((x, seat_y, z), (x, top, z - 0.03), 0.01) for x in (-0.06, 0.06)]
        parts.append(_block((r_seat * 1.4, 0.07, 0.025), 0, top - 0.05, z - 0.03))
    return _union(parts)


def _table(rng) -> _Solid:
    height, top_t = _u(rng, 0.70, 0.78), _u(rng, 0.025, 0.05)
    top_y = height - top_t
    if _chance(rng, 0.4):
        return _round_table(rng, height, top_t)
    length = _u(rng, 0.8, 1.8)
    depth = min(_u(rng, 0.6, 0.95), length)
    leg, inset = _u(rng, 0.035, 0.07), _u(rng, 0.02, 0.08)
    lx, lz = length / 2 - inset - leg / 2, depth / 2 - inset - leg / 2
    parts = [_block((length, top_t, depth), y=top_y)]
    tapered = _chance(rng, 0.5)
    for sx in (-1, 1):
        for sz in (-1, 1):
            if tapered:
                parts.append(
                    _cylinder(
                        leg / 2 * 0.6, top_y + _EMBED, sx * lx, 0, sz * lz, leg / 2, _SEG_SMALL
                    )
                )
            else:
                parts.append(_block((leg, top_y + _EMBED, leg), sx * lx, 0, sz * lz))
    drawer = _chance(rng, 0.75)
    if drawer or _chance(rng, 0.5):
        apron_h = _u(rng, 0.07, 0.12)
        y = top_y - apron_h + _EMBED
        parts += [_block((2 * lx, apron_h, 0.02), 0, y, sz * lz) for sz in (-1, 1)]
        parts += [_block((0.02, apron_h, 2 * lz), sx * lx, y) for sx in (-1, 1)]
        if drawer:
            width = _u(rng, 0.2, 0.45) * length
            x = _u(rng, -1, 1) * (lx - width / 2 - leg / 2)
            front = lz + 0.01
            parts.append(_block((width, apron_h * 0.85, 0.02), x, y + apron_h * 0.05, front))
            parts.append(_ball(0.012, (x, y + apron_h / 2, front + 0.015)))
    if _chance(rng, 0.3):
        parts.append(_block((2 * lx, 0.02, 2 * lz), y=_u(rng, 0.12, 0.25)))
    return _union(parts)


def _round_table(rng, height, top_t) -> _Solid:
    radius, top_y = _u(rng, 0.4, 0.65), height - top_t
    parts = [_cylinder(radius, top_t, y=top_y, segments=40)]
    if _chance(rng, 0.5):
        n_legs, phase = int(rng.integers(3, 5)), _u(rng, 0, 120)
        r_top, r_bottom, leg_r = radius * 0.6, radius * _u(rng, 0.6, 0.8), _u(rng, 0.018, 0.03)
        for k in range(n_legs):
            bx, bz = _xz(r_bottom, phase + k * 360 / n_legs)
            tx, tz = _xz(r_top, phase + k * 360 / n_legs)
            parts.append(_rod((bx, -0.05, bz), (tx, top_y + _EMBED, tz), leg_r))
    else:
        column = _u(rng, 0.035, 0.07)
        parts.append(_cylinder(column, top_y + _EMBED, radius_top=column * _u(rng, 0.7, 1.2)))
        n_feet, phase, reach = int(rng.integers(3, 5)), _u(rng, 0, 120), _u(rng, 0.22, 0.35)
        for k in range(n_feet):
            x, z = _xz(reach, phase + k * 360 / n_feet)
            parts.append(
                _path([(0, 0.09, 0), (x * 0.6, 0.05, z * 0.6), (x, 0.02, z)], 0.025, 0.018)
            )
            parts.append(_cylinder(0.022, 0.03, x, 0, z, segments=_SEG_SMALL))
    return _union(parts)


def _desk(rng) -> _Solid:
    width, depth, height = _u(rng, 1.0, 1.6), _u(rng, 0.55, 0.75), _u(rng, 0.72, 0.76)
    top_t = _u(rng, 0.025, 0.04)
    top_y = height - top_t
    side = _pick(rng, (-1, 1))
    ped_w = _u(rng, 0.35, 0.45)
    px = side * (width / 2 - ped_w / 2 - _u(rng, 0, 0.02))
    kick = _u(rng, 0.0, 0.06)
    front = depth * 0.475
    parts = [
        _block((width, top_t, depth), y=top_y),
        _block((ped_w, top_y + _EMBED, depth * 0.95), px),
    ]
    n_drawers = int(rng.integers(2, 5))
    weights = rng.uniform(0.7, 1.3, n_drawers)
    edges = (
        kick
        + 0.01
        + np.concatenate([[0], np.cumsum(weights) / weights.sum()]) * (top_y - 0.03 - kick)
    )
    bar = _chance(rng, 0.5)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        parts.append(
            _block((ped_w - 0.02, high - low - 0.006, 0.018), px, low, front + 0.009 - _EMBED)
        )
        mid = (low + high) / 2
        if bar:
            parts.append(_block((ped_w * 0.4, 0.012, 0.02), px, mid, front + 0.02))
        else:
            parts.append(_ball(0.012, (px, mid, front + 0.02)))
    far = -side * (width / 2 - 0.03)
    if _chance(rng, 0.5):
        parts.append(_block((0.03, top_y + _EMBED, depth * 0.95), far))
    else:
        parts += [
            _block((0.045, top_y + _EMBED, 0.045), far, 0, sz * (depth / 2 - 0.05))
            for sz in (-1, 1)
        ]
    if _chance(rng, 0.5):  # modesty panel hanging at the back
        span = width - ped_w - 0.04
        h = _u(rng, 0.25, 0.45)
        parts.append(
            _block((span, h, 0.018), (far + px) / 2, top_y - h + _EMBED, -depth / 2 + 0.06)
        )
    if _chance(rng, 0.3):  # monitor riser at the back
        w = _u(rng, 0.5, 0.9)
        x = _u(rng, -1, 1) * (width - w) / 2
        h = _u(rng, 0.08, 0.14)
        z = -depth / 2 + 0.12
        parts += [
            _block((0.02, h, 0.2), x + sx * (w / 2 - 0.01), height - _EMBED, z) for sx in (-1, 1)
        ]
        parts.append(_block((w, 0.018, 0.2), x, height + h - 0.018, z))
    return _union(parts)


def _bookshelf(rng) -> _Solid:
    width, height, depth = _u(rng, 0.6, 1.2), _u(rng, 0.8, 2.0), _u(rng, 0.25, 0.4)
    t, kick = _u(rng, 0.016, 0.025), _u(rng, 0.0, 0.08)
    parts = [_block((t, height, depth), sx * (width / 2 - t / 2)) for sx in (-1, 1)]
    back = 0.006 if _chance(rng, 0.75) else 0.0
    if back:
        parts.append(
            _block(
                (width - 2 * t + 2 * _EMBED, height - kick, back), 0, kick, -depth / 2 + back / 2
            )
        )
    n = max(2, int(round((height - kick) / _u(rng, 0.28, 0.4))))
    weights = rng.uniform(0.7, 1.3, n)
    levels = kick + np.concatenate([[0], np.cumsum(weights) / weights.sum()]) * (height - kick - t)
    inner_w = width - 2 * t + 2 * _EMBED
    for y in levels:
        parts.append(_block((inner_w, t, depth - back + _EMBED), 0, y, (back - _EMBED) / 2))
    if kick > 0.01:
        parts.append(_block((inner_w, kick, t), 0, 0, depth / 2 - t))
    filled = rng.random(n) < 0.75
    filled[int(rng.integers(n))] = True
    left, right = -width / 2 + t, width / 2 - t
    for low, high, full in zip(levels[:-1] + t, levels[1:], filled, strict=True):
        if full:
            parts += _books(rng, left, right, low - _EMBED, high - low, depth - back)
    return _union(parts)


def _books(rng, left, right, floor, room, depth) -> list[_Solid]:
    """Upright, leaning and stacked books from x = left along one shelf."""
    parts, x = [], left + 0.003 + _u(rng, 0, 0.3) * (right - left)
    stop = right - _u(rng, 0, 0.4) * (right - left)
    z_back = -depth / 2
    after_book = False  # a book only leans on an upright neighbour
    while x < stop:
        action = _pick(rng, ("book", "gap", "stack", "lean"), p=(0.8, 0.06, 0.06, 0.08))
        if action == "gap":
            x += _u(rng, 0.03, 0.12)
            after_book = False
            continue
        if action == "stack":
            w = _u(rng, 0.14, 0.24)
            if x + w > right:
                break
            y = floor
            for _ in range(int(rng.integers(2, 6))):
                h, d = _u(rng, 0.02, 0.045), depth * _u(rng, 0.6, 0.85)
                if y + h > floor + room * 0.9:
                    break
                parts.append(
                    _block(
                        (w * _u(rng, 0.85, 1.0), h + _EMBED, d), x + w / 2, y, z_back + d / 2 + 0.01
                    )
                )
                y += h
            x += w + 0.005
            after_book = False
            continue
        w, h = _u(rng, 0.015, 0.05), min(room * _u(rng, 0.55, 0.9), 0.34)
        d = depth * _u(rng, 0.6, 0.92)
        if x + w > right - 0.003:
            break
        book = _block((w, h + _EMBED, d), x + w / 2, floor, z_back + d / 2 + 0.01)
        if action == "lean" and after_book:
            book = _turn(book, (0, 0, _u(rng, 8, 20)), (x, floor, 0))
        parts.append(book)
        # neighbours either overlap by a millimetre or leave a clear gap, never touch exactly
        x += w + (-0.001 if _chance(rng, 0.7) else _u(rng, 0.003, 0.012))
        after_book = action == "book"
    return parts


def _sofa(rng) -> _Solid:
    width, depth = _u(rng, 1.5, 2.3), _u(rng, 0.8, 1.0)
    seat_h, back_h, back_t = _u(rng, 0.38, 0.46), _u(rng, 0.72, 0.95), _u(rng, 0.15, 0.28)
    leg_h = _u(rng, 0.04, 0.14) if _chance(rng, 0.7) else 0.0
    cushion_t = _u(rng, 0.08, 0.14)
    base_top = seat_h - cushion_t
    arm_w, arm_h = _u(rng, 0.1, 0.25), seat_h + _u(rng, 0.1, 0.22)
    arms = _pick(rng, ((-1, 1), (-1,), (1,), ()), p=(0.75, 0.075, 0.075, 0.1))
    chaise = _pick(rng, (-1, 1)) if _chance(rng, 0.35) else 0
    if chaise:
        arms = tuple(s for s in arms if s != chaise)
    parts = [
        _block((width, base_top - leg_h, depth), 0, leg_h),
        _block((width, back_h - leg_h, back_t), 0, leg_h, -depth / 2 + back_t / 2),
    ]
    inner_left = -width / 2 + (arm_w if -1 in arms else 0)
    inner_right = width / 2 - (arm_w if 1 in arms else 0)
    n_cushions = int(rng.integers(2, 4))
    edges = np.linspace(inner_left, inner_right, n_cushions + 1)
    seat_d = depth - back_t
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        parts.append(
            _block(
                (b - a - 0.01, cushion_t + _EMBED, seat_d + _EMBED),
                (a + b) / 2,
                base_top - _EMBED,
                depth / 2 - (seat_d + _EMBED) / 2,
            )
        )
        if _chance(rng, 0.5):
            pad = _block(
                (b - a - 0.02, back_h - seat_h - 0.05, 0.12),
                (a + b) / 2,
                seat_h - _EMBED,
                -depth / 2 + back_t + 0.05,
            )
            parts.append(_turn(pad, (-_u(rng, 5, 15), 0, 0), (0, seat_h, -depth / 2 + back_t)))
    round_arms = _chance(rng, 0.5)
    for s in arms:
        x = s * (width / 2 - arm_w / 2)
        parts.append(_block((arm_w, arm_h - leg_h, depth), x, leg_h))
        if round_arms:
            parts.append(
                _Solid.cylinder(depth, arm_w / 2, arm_w / 2, _SEG, True).translate((x, arm_h, 0))
            )
    feet = [(sx * (width / 2 - 0.06), sz * (depth / 2 - 0.06)) for sx in (-1, 1) for sz in (-1, 1)]
    if chaise:
        chaise_w, chaise_d = _u(rng, 0.6, 0.9), _u(rng, 0.5, 0.8)
        cx, cz = chaise * (width / 2 - chaise_w / 2), depth / 2 + chaise_d / 2 - _EMBED
        parts.append(_block((chaise_w, base_top - leg_h, chaise_d + _EMBED), cx, leg_h, cz))
        parts.append(_block((chaise_w - 0.01, cushion_t, chaise_d), cx, base_top - _EMBED, cz))
        feet.append((cx + chaise * (chaise_w / 2 - 0.06), depth / 2 + chaise_d - 0.06))
    if leg_h:
        parts += [_block((0.05, leg_h + _EMBED, 0.05), x, 0, z) for x, z in feet]
    for _ in range(int(rng.integers(0, 3))):  # throw pillows against the back
        x = _u(rng, inner_left + 0.25, inner_right - 0.25)
        corners = [_ball(0.05, (sx * 0.15, sy * 0.13, 0)) for sx in (-1, 1) for sy in (-1, 1)]
        pillow = _Solid.batch_hull(corners + [_ball(0.2, (0, 0, 0), (0.9, 0.8, 0.35))])
        pillow = pillow.rotate((-15, 0, _u(rng, -25, 25))).translate(
            (x, seat_h + 0.15, -depth / 2 + back_t + 0.06)
        )
        parts.append(pillow)
    return _union(parts)


def _bed(rng) -> _Solid:
    width, length = _u(rng, 0.9, 1.8), _u(rng, 1.95, 2.1)
    frame_h, mattress_t = _u(rng, 0.2, 0.38), _u(rng, 0.16, 0.28)
    leg_h = _u(rng, 0.05, 0.15) if _chance(rng, 0.5) else 0.0
    board_t = _u(rng, 0.04, 0.09)
    parts = [_block((width, frame_h - leg_h, length), 0, leg_h)]
    if leg_h:
        parts += [
            _block(
                (0.06, leg_h + _EMBED, 0.06), sx * (width / 2 - 0.05), 0, sz * (length / 2 - 0.05)
            )
            for sx in (-1, 1)
            for sz in (-1, 1)
        ]
    top = frame_h + mattress_t - _EMBED
    parts.append(_block((width - 0.04, mattress_t, length - 0.04), 0, frame_h - _EMBED, 0))
    head_z = -length / 2 - board_t / 2 + _EMBED
    head_h = _u(rng, 0.8, 1.25)
    parts.append(_block((width + 0.04, head_h, board_t), 0, 0, head_z))
    if _chance(rng, 0.4):  # rounded headboard top
        parts.append(
            _ball(
                width / 2,
                (0, head_h, head_z),
                (1.0, _u(rng, 0.15, 0.35) / (width / 2), board_t / width),
            ).trim_by_plane((0, 1, 0), head_h - _EMBED)
        )
    if _chance(rng, 0.4):
        foot_h = _u(rng, 0.35, 0.6)
        parts.append(
            _block((width + 0.04, foot_h, board_t), 0, 0, length / 2 + board_t / 2 - _EMBED)
        )
    n_pillows = 1 if width < 1.3 else int(rng.integers(1, 3))
    for k in range(n_pillows):
        pw = (width - 0.1) / n_pillows
        x = -width / 2 + 0.05 + pw * (k + 0.5) + _u(rng, -0.04, 0.04)
        pillow = _ball(1.0, (0, 0, 0), (pw * 0.45, 0.07, 0.22)).rotate((0, _u(rng, -8, 8), 0))
        parts.append(pillow.translate((x, top + 0.05, -length / 2 + 0.3)))
    if _chance(rng, 0.6):  # blanket over the foot end, draped down the sides
        cover = length * _u(rng, 0.45, 0.7)
        z = length / 2 - cover / 2 - 0.01
        parts.append(_block((width + 0.02, 0.03, cover), _u(rng, -0.03, 0.03), top - 0.01, z))
        drop = mattress_t * _u(rng, 0.5, 1.0)
        parts += [
            _block((0.015, drop, cover), sx * (width / 2 + 0.004), top + 0.02 - drop, z)
            for sx in (-1, 1)
        ]
        parts.append(
            _block((width + 0.02, 0.05, _u(rng, 0.15, 0.3)), 0, top - 0.01, length / 2 - cover)
        )
    return _union(parts)


def _cabinet(rng) -> _Solid:
    width, depth, t = _u(rng, 0.5, 1.2), _u(rng, 0.4, 0.6), _u(rng, 0.016, 0.024)
    dresser = _chance(rng, 0.45)
    height = _u(rng, 0.7, 1.2) if dresser else _u(rng, 0.8, 2.0)
    leg_h = _u(rng, 0.08, 0.18) if _chance(rng, 0.5) else 0.0
    parts = []
    if leg_h:
        parts += [
            _cylinder(
                0.02,
                leg_h + _EMBED,
                sx * (width / 2 - 0.04),
                0,
                sz * (depth / 2 - 0.04),
                0.025,
                _SEG_SMALL,
            )
            for sx in (-1, 1)
            for sz in (-1, 1)
        ]
    carcass = _block((width, height - leg_h, depth), 0, leg_h)
    if not leg_h:  # recessed plinth
        carcass = carcass - _block((width + 0.1, 0.08, 0.05), 0, -0.01, depth / 2)
    if _chance(rng, 0.35):
        parts.append(_block((width + 0.04, 0.03, depth + 0.02), 0, height - _EMBED, 0.01))
    knob = _chance(rng, 0.5)
    body_y, front = leg_h + (0 if leg_h else 0.07), depth / 2
    if dresser:
        parts.append(carcass)
        n_rows = int(rng.integers(3, 6))
        edges = np.linspace(body_y + 0.01, height - 0.01, n_rows + 1)
        pulled = {int(rng.integers(n_rows))} if _chance(rng, 0.7) or not leg_h else set()
        for row, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            h = high - low - 0.006
            columns = 2 if row == n_rows - 1 and width > 0.8 and _chance(rng, 0.6) else 1
            dw = (width - 0.02) / columns
            for c in range(columns):
                x = -width / 2 + 0.01 + dw * (c + 0.5)
                out = _u(rng, 0.15, 0.35) * depth if row in pulled and c == 0 else 0.0
                drawer = [_block((dw - 0.006, h, 0.02), x, low, front + 0.01 - _EMBED + out)]
                if out:
                    tray = _block(
                        (dw - 0.04, h * 0.8, out + 0.05), x, low + 0.01, front + out / 2 - 0.02
                    )
                    tray = tray - _block(
                        (dw - 0.06, h, out + 0.05), x, low + 0.02, front + out / 2 - 0.03
                    )
                    drawer.append(tray)
                pull = (x, low + h / 2, front + 0.025 + out)
                drawer.append(
                    _ball(0.013, pull)
                    if knob
                    else _block(
                        (min(0.12, dw * 0.4), 0.012, 0.02), pull[0], pull[1], pull[2] - 0.005
                    )
                )
                parts += drawer
        return _union(parts)
    n_doors = 1 if width < 0.6 else 2
    opened = [_u(rng, 20, 110) if _chance(rng, 0.5) else 0.0 for _ in range(n_doors)]
    if not leg_h and not any(opened):  # otherwise it would be a plain box
        opened[0] = _u(rng, 20, 110)
    if any(opened):  # carve the inside only when it shows, so no closed void is left
        carcass = carcass - _block(
            (width - 2 * t, height - body_y - 2 * t, depth), 0, body_y + t, t
        )
        for y in np.sort(rng.uniform(body_y + 0.2, height - 0.2, int(rng.integers(1, 4)))):
            parts.append(_block((width - 2 * t + 2 * _EMBED, t, depth - t - 0.03), 0, y, 0))
    parts.append(carcass)
    door_w, door_h = width / n_doors, height - body_y
    hinges = (-1, 1) if n_doors == 2 else (_pick(rng, (-1, 1)),)
    for hinge, angle in zip(hinges, opened, strict=True):
        hx = hinge * (width / 2 - t / 2)
        door = _block(
            (door_w - 0.004, door_h - 0.004, t),
            hinge * (width / 2 - door_w / 2),
            body_y + 0.002,
            front,
        )
        free_x = hinge * (width / 2 - door_w + 0.05)
        handle_h = min(0.3, door_h * 0.3)
        mid = body_y + door_h * (0.5 if door_h < 1.2 else 0.45)
        if knob:
            door = door + _ball(0.014, (free_x, mid, front + t / 2 + 0.012))
        else:
            door = door + _block(
                (0.014, handle_h, 0.025), free_x, mid - handle_h / 2, front + t / 2
            )
        # the pivot sits inside the side wall, so an open door still overlaps the carcass
        parts.append(_turn(door, (0, hinge * angle, 0), (hx, 0, front - t / 2)) if angle else door)
    return _union(parts)


def _bench(rng) -> _Solid:
    length, depth, height = _u(rng, 1.0, 1.8), _u(rng, 0.3, 0.45), _u(rng, 0.42, 0.47)
    kind = _pick(rng, ("park", "plain", "storage"), p=(0.45, 0.25, 0.3))
    seat_t = _u(rng, 0.03, 0.05)
    seat_y = height - seat_t
    parts = []
    if kind == "park":
        n = int(rng.integers(3, 6))
        slat = depth / n
        parts += [
            _block((length, seat_t, slat - 0.01), 0, seat_y, -depth / 2 + slat * (i + 0.5))
            for i in range(n)
        ]
        n_frames = 2 if length < 1.4 else 3
        back = _chance(rng, 0.65)
        back_top = height + _u(rng, 0.3, 0.45)
        for x in np.linspace(-length / 2 + 0.08, length / 2 - 0.08, n_frames):
            parts.append(_block((0.04, seat_y + _EMBED, 0.05), x, 0, depth / 2 - 0.05))
            top = back_top if back else seat_y + _EMBED
            parts.append(
                _path(
                    [
                        (x, 0, -depth / 2 + 0.04),
                        (x, seat_y, -depth / 2 + 0.03),
                        (x, top, -depth / 2 - 0.06 * back),
                    ],
                    0.022,
                )
            )
            parts.append(_block((0.04, 0.04, depth - 0.02), x, seat_y - 0.04 + _EMBED))
        if back:
            for k in range(int(rng.integers(2, 4))):
                y = height + 0.06 + k * 0.1
                z = -depth / 2 + 0.03 - 0.06 * (y - seat_y) / (back_top - seat_y) - 0.02
                parts.append(_block((length, 0.07, 0.025), 0, y, z))
        if _chance(rng, 0.5):
            for x in (-length / 2 + 0.08, length / 2 - 0.08):
                parts.append(
                    _path(
                        [
                            (x, height - _EMBED, depth / 2 - 0.05),
                            (x, height + 0.22, depth / 2 - 0.05),
                            (x, height + 0.22, -depth / 2 + 0.02),
                        ],
                        0.018,
                    )
                )
    elif kind == "plain":
        parts.append(_block((length, seat_t, depth), 0, seat_y))
        if _chance(rng, 0.5):
            parts += [
                _block((0.04, seat_y + _EMBED, depth * 0.9), sx * (length / 2 - 0.1))
                for sx in (-1, 1)
            ]
        else:
            parts += [
                _block(
                    (0.045, seat_y + _EMBED, 0.045),
                    sx * (length / 2 - 0.06),
                    0,
                    sz * (depth / 2 - 0.05),
                )
                for sx in (-1, 1)
                for sz in (-1, 1)
            ]
            parts += [
                _block((length - 0.12, 0.03, 0.03), 0, 0.12, sz * (depth / 2 - 0.05))
                for sz in (-1, 1)
            ]
        if _chance(rng, 0.7):  # cushion or folded blanket on one end
            w = _u(rng, 0.3, 0.5)
            parts.append(
                _block(
                    (w, _u(rng, 0.03, 0.08), depth * 0.9),
                    _u(rng, -1, 1) * (length - w) / 2,
                    height - _EMBED,
                )
            )
    else:  # storage bench: cubbies with some baskets
        # panels stop a few millimetres short of each other's faces: coplanar faces leave
        # needle triangles in the union
        n = int(rng.integers(2, 5))
        parts.append(_block((length, seat_t, depth), 0, seat_y))
        parts.append(_block((length - 0.01, 0.02, depth - 0.008), 0, 0.03))
        back_h = seat_y - 0.05 + 2 * _EMBED
        parts.append(_block((length - 0.01, back_h, 0.012), 0, 0.05 - _EMBED, -depth / 2 + 0.009))
        xs = np.linspace(-length / 2 + 0.013, length / 2 - 0.013, n + 1)
        parts += [_block((0.02, seat_y + _EMBED, depth - 0.004), x, 0) for x in xs]
        for a, b in zip(xs[:-1], xs[1:], strict=True):
            if _chance(rng, 0.55):
                w, h = b - a - 0.04, (seat_y - 0.05) * _u(rng, 0.6, 0.9)
                basket = _block((w, h, depth * 0.85), (a + b) / 2, 0.05 - _EMBED)
                basket = basket - _block((w - 0.02, h, depth * 0.85 - 0.02), (a + b) / 2, 0.06)
                parts.append(basket.translate((0, 0, _u(rng, 0.0, 0.08))))
    return _union(parts)


# --- tableware and containers ------------------------------------------------------------


def _mug(rng) -> _Solid:
    radius, height = _u(rng, 0.038, 0.05), _u(rng, 0.085, 0.12)
    r_top = radius * _u(rng, 0.92, 1.12)
    outer, cavity = _vessel(
        [0, 0.004, height],
        [radius - 0.003, radius, r_top],
        _u(rng, 0.004, 0.006),
        _u(rng, 0.007, 0.012),
    )
    tube = _u(rng, 0.005, 0.008)
    sy = _u(rng, 1.0, 1.35)
    major = min(_u(rng, 0.022, 0.035), (height * 0.45 - tube) / sy)
    cy = _u(rng, 0.45, 0.55) * height
    r_mid = float(np.interp(cy, [0, height], [radius, r_top]))
    if _chance(rng, 0.7):
        handle = _ring(major, tube, 20).scale((1, sy, 1)).translate((r_mid + major * 0.5, cy, 0))
    else:  # squared handle
        reach, half = r_mid + major * 1.4, major * sy
        handle = _path(
            [
                (r_mid - 0.005, cy + half, 0),
                (reach, cy + half, 0),
                (reach, cy - half, 0),
                (r_mid - 0.005, cy - half, 0),
            ],
            tube,
        )
    return (outer + handle) - cavity


def _cup(rng) -> _Solid:
    kind = _pick(rng, ("tumbler", "wine", "teacup"), p=(0.45, 0.12, 0.43))
    if kind == "tumbler":
        radius, height = _u(rng, 0.03, 0.045), _u(rng, 0.08, 0.16)
        r_top, floor, wall = radius * _u(rng, 1.0, 1.3), _u(rng, 0.006, 0.015), 0.003
        outer, cavity = _vessel([0, height], [radius, r_top], wall, floor)
        cup = outer - cavity
        if _chance(rng, 0.6):  # straw leaning on the rim at a random azimuth
            cup = cup + _straw(rng, floor, height, radius - wall, r_top - wall)
        if _chance(rng, 0.5):  # citrus slice pushed onto the rim
            slice_r = _u(rng, 0.018, 0.028)
            wedge = _Solid.cylinder(0.006, slice_r, slice_r, 20, True).translate(
                (r_top - wall / 2, height + slice_r * 0.2, 0)
            )
            cup = cup + _turn(wedge, (0, _u(rng, 0, 360), 0), (0, 0, 0))
        return cup
    if kind == "wine":
        foot, stem, bowl_h = _u(rng, 0.03, 0.04), _u(rng, 0.05, 0.09), _u(rng, 0.07, 0.1)
        r_bowl = _u(rng, 0.035, 0.045)
        s = np.linspace(0, 1, 9)
        heights = np.concatenate([[0, 0.004, 0.01, stem], stem + 0.005 + bowl_h * s])
        radii = np.concatenate(
            [
                [foot, foot * 0.95, 0.005, 0.005],
                0.006 + (r_bowl - 0.006) * np.sin(s * np.pi * _u(rng, 0.6, 0.85)) ** 0.7,
            ]
        )
        outer, cavity = _vessel(heights, radii, 0.0025, stem + 0.01)
        return outer - cavity
    saucer_r = _u(rng, 0.065, 0.08)
    saucer = _lathe(
        [
            (0, 0),
            (0.5 * saucer_r, 0),
            (saucer_r, 0.014),
            (saucer_r, 0.017),
            (0.55 * saucer_r, 0.009),
            (0, 0.009),
        ]
    )
    r_base, r_top, height = _u(rng, 0.022, 0.028), _u(rng, 0.04, 0.05), _u(rng, 0.05, 0.07)
    heights = np.array([0, 0.005, height * 0.5, height]) + 0.007
    outer, cavity = _vessel(heights, [r_base * 0.9, r_base, r_top * 0.85, r_top], 0.003, 0.015)
    cy = 0.007 + height * 0.6
    handle = _ring(0.013, 0.004, 16).translate(
        (float(np.interp(cy, heights, [r_base * 0.9, r_base, r_top * 0.85, r_top])) + 0.006, cy, 0)
    )
    cup = _turn((outer + handle) - cavity, (0, _u(rng, 0, 360), 0), (0, 0, 0))
    parts = [saucer, cup]
    if _chance(rng, 0.4):  # teaspoon on the saucer
        a = _u(rng, 0, 360)
        inner, outer_pt = _xz(r_base * 0.8, a), _xz(saucer_r * 0.95, a + _u(rng, 20, 50))
        parts.append(_rod((inner[0], 0.011, inner[1]), (outer_pt[0], 0.02, outer_pt[1]), 0.003))
        parts.append(_ball(0.012, (outer_pt[0], 0.02, outer_pt[1]), (1.0, 0.3, 1.0)))
    return _union(parts)


def _straw(rng, floor, rim_y, r_floor, r_rim, radius=0.003) -> _Solid:
    """Straw from the cup floor, leaning out over the rim at a random azimuth."""
    a = _u(rng, 0, 360)
    bottom_off = -0.4 * r_floor
    rim_off = 0.75 * r_rim
    top_y = rim_y + _u(rng, 0.03, 0.08)
    y0 = floor - 0.002
    top_off = bottom_off + (rim_off - bottom_off) * (top_y - y0) / (rim_y - y0)
    points = [(bottom_off, y0), (top_off, top_y)]
    if _chance(rng, 0.5):  # bendy straw
        points.append((top_off + _u(rng, 0.02, 0.04), top_y + _u(rng, 0.0, 0.02)))
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    return _path([(o * c, y, o * s) for o, y in points], radius, segments=10)


def _bottle(rng) -> _Solid:
    kind = _pick(rng, ("plain", "spray", "jug", "pump"), p=(0.2, 0.3, 0.25, 0.25))
    if kind == "jug":
        return _detergent_jug(rng)
    radius, body_h = _u(rng, 0.028, 0.045), _u(rng, 0.12, 0.22)
    shoulder, neck_h = _u(rng, 0.02, 0.06), _u(rng, 0.02, 0.08)
    neck_r = min(_u(rng, 0.01, 0.016), radius * 0.6)
    t = np.linspace(0, 1, 7)[1:]
    heights = np.concatenate(
        [[0, 0.004, body_h], body_h + shoulder * t, [body_h + shoulder + neck_h]]
    )
    radii = np.concatenate(
        [
            [radius - 0.004, radius, radius],
            neck_r + (radius - neck_r) * np.cos(t * np.pi / 2),
            [neck_r],
        ]
    )
    top = float(heights[-1])
    body = _lathe(list(zip([0, *radii, 0], [0, *heights, top], strict=True)))
    if kind == "spray":
        body = body.scale((1.0, 1.0, _u(rng, 0.65, 1.0)))  # flattened front to back
    parts = [body]
    if kind == "plain":
        parts.append(_cylinder(neck_r * 1.15, _u(rng, 0.012, 0.025), y=top - _EMBED))
    elif kind == "pump":  # pump dispenser, nozzle pointing roughly forward
        stem = _u(rng, 0.01, 0.03)
        parts.append(_cylinder(neck_r * 1.3, 0.015, y=top - _EMBED))
        parts.append(_cylinder(0.005, stem + 0.01, y=top + 0.01, segments=10))
        head_y = top + 0.015 + stem
        parts.append(_cylinder(0.016, 0.018, y=head_y))
        x, z = _xz(_u(rng, 0.045, 0.07), 90 + _u(rng, -40, 40))
        parts.append(_rod((0, head_y + 0.01, 0), (x, head_y + 0.006, z), 0.006, 0.004))
    else:  # trigger sprayer facing +z
        collar_h, head_h, head_l = 0.015, _u(rng, 0.035, 0.05), _u(rng, 0.06, 0.09)
        parts.append(_cylinder(neck_r * 1.3, collar_h, y=top - _EMBED))
        head_y = top + collar_h - 2 * _EMBED  # sunk into the collar, not resting on it
        parts.append(_block((0.03, head_h, head_l), 0, head_y, head_l / 2 - 0.02))
        parts.append(
            _rod(
                (0, head_y + head_h * 0.7, head_l - 0.03), (0, head_y + head_h * 0.7, head_l), 0.008
            )
        )
        trigger = _block((0.014, 0.045, 0.012), 0, head_y - 0.04, head_l - 0.035)
        parts.append(_turn(trigger, (_u(rng, 5, 25), 0, 0), (0, head_y, head_l - 0.035)))
    return _union(parts)


def _detergent_jug(rng) -> _Solid:
    """Rounded-rectangle jug, spout off to one side, carry handle cut through the other."""
    width, depth, height = _u(rng, 0.1, 0.15), _u(rng, 0.06, 0.09), _u(rng, 0.2, 0.3)
    corner = min(width, depth) * 0.3
    pillars = [
        _cylinder(
            corner, height, sx * (width / 2 - corner), 0, sz * (depth / 2 - corner), segments=16
        )
        for sx in (-1, 1)
        for sz in (-1, 1)
    ]
    body = _Solid.batch_hull(pillars)
    hole_r = _u(rng, 0.015, 0.022)
    hole = _Solid.cylinder(depth * 2, hole_r, hole_r, 20, True).translate(
        (width / 2 - hole_r - _u(rng, 0.012, 0.02), height - hole_r - _u(rng, 0.015, 0.025), 0)
    )
    spout_x = -width / 2 + _u(rng, 0.025, 0.035)
    parts = [body - hole, _cylinder(0.018, 0.02, spout_x, height - _EMBED, 0)]
    parts.append(_cylinder(0.022, _u(rng, 0.02, 0.03), spout_x, height + 0.015, 0))
    return _union(parts)


def _bowl(rng) -> _Solid:
    radius = _u(rng, 0.06, 0.15)
    depth, r_base, wall = (
        radius * _u(rng, 0.4, 0.75),
        radius * _u(rng, 0.35, 0.55),
        max(0.003, radius * 0.04),
    )
    s = np.linspace(0, 1, 10)
    foot = 0.006
    heights = np.concatenate([[0], foot + depth * s])
    radii = np.concatenate([[r_base * 0.85], r_base + (radius - r_base) * s ** _u(rng, 0.4, 0.8)])
    floor = foot + wall * 1.5
    outer, cavity = _vessel(heights, radii, wall, floor)
    bowl = outer - cavity
    extra = _pick(rng, ("none", "spoon", "fruit", "lug"), p=(0.1, 0.3, 0.35, 0.25))
    top = foot + depth
    if extra == "spoon":
        a = _u(rng, 0, 360)
        c, sn = np.cos(np.radians(a)), np.sin(np.radians(a))
        a0, y0, a1 = -0.3 * r_base, floor + 0.004, radius * 1.2
        y1 = y0 + (top + 0.008 - y0) * (a1 - a0) / (radius - a0)
        head = (
            _ball(1.0, (0, 0, 0), (0.02, 0.006, 0.013))
            .rotate((0, -a, 0))
            .translate((a0 * c, y0, a0 * sn))
        )
        bowl = bowl + head + _rod((a0 * c, y0, a0 * sn), (a1 * c, y1, a1 * sn), 0.0035)
    elif extra == "fruit":
        fruits = []
        for _ in range(int(rng.integers(1, 4))):
            r = _u(rng, 0.3, 0.45) * r_base
            x, z = _xz(_u(rng, 0.2, 0.6) * r_base, _u(rng, 0, 360))
            fruits.append(_ball(r, (x, floor + r - 0.004, z), segments=20))
        bowl = bowl + _union(fruits)
    elif extra == "lug":  # porringer handle: flat pierced tab level with the rim
        reach, tab_w = _u(rng, 0.035, 0.06), _u(rng, 0.035, 0.055)
        rim = float(np.interp(top - 0.012, heights, radii))  # the wall curves in below the rim
        lug = _block((reach + 2 * wall, 0.008, tab_w), rim + reach / 2 - wall, top - 0.012)
        lug = lug - _cylinder(tab_w * 0.22, 0.05, rim + reach * 0.6, top - 0.03, 0, segments=16)
        bowl = bowl + _turn(lug, (0, _u(rng, 0, 360), 0), (0, 0, 0))
    return bowl


def _vase(rng) -> _Solid:
    height, r_base = _u(rng, 0.2, 0.5), _u(rng, 0.04, 0.08)
    belly_r, belly_y = _u(rng, 0.05, 0.12), height * _u(rng, 0.2, 0.6)
    neck_r = _u(rng, 0.025, min(belly_r * 0.8, 0.06))
    neck_y = height * _u(rng, 0.7, 0.9)
    lip_r = neck_r * _u(rng, 1.0, 1.6)
    heights, radii = _smooth_profile([0, belly_y, neck_y, height], [r_base, belly_r, neck_r, lip_r])
    wall, floor = 0.004, 0.012
    outer, cavity = _vessel(heights, radii, wall, floor)
    n_handles = _pick(rng, (0, 1, 2), p=(0.65, 0.2, 0.15))
    for k in range(n_handles):
        side = -1 if k == 0 else 1
        y_top, y_low = neck_y + (height - neck_y) * 0.3, belly_y + (neck_y - belly_y) * 0.2
        r_top, r_low = (float(np.interp(y, heights, radii)) for y in (y_top, y_low))
        outer = outer + _path(
            [
                (side * (r_top - 0.002), y_top, 0),
                (side * (belly_r + 0.03), y_top, 0),
                (side * (r_low - 0.002), y_low, 0),
            ],
            0.006,
        )
    vase = outer - cavity
    if _chance(rng, 0.65):  # flowers standing in the vase
        inner_min = float(radii[heights > floor].min()) - wall
        stem_r = 0.003
        reach = 0.7 * (inner_min - stem_r)
        stems = []
        for _ in range(int(rng.integers(1, 6))):
            a = _u(rng, 0, 360)
            c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
            lean = reach * _u(rng, 0.3, 1.0)
            tip_off, tip_y = lean + _u(rng, 0.02, 0.12), height + _u(rng, 0.05, 0.25)
            stems.append(
                _path(
                    [
                        (-0.2 * lean * c, floor - 0.003, -0.2 * lean * s),
                        (lean * c, height + _u(rng, 0.002, 0.02), lean * s),
                        (tip_off * c, tip_y, tip_off * s),
                    ],
                    stem_r,
                    segments=8,
                )
            )
            stems.append(
                _ball(_u(rng, 0.015, 0.035), (tip_off * c, tip_y, tip_off * s), (1, 0.7, 1))
            )
        vase = vase + _union(stems)
    if _chance(rng, 0.35):  # leaning designer vase: shear keeps the base flat on y = 0
        # the centre of mass moves by about k * height / 2; keep it well inside the foot
        kx, kz = _xz(_u(rng, 0.3, 0.8) * r_base / height, _u(rng, 0, 360))
        vase = vase.transform(np.array([[1.0, kx, 0, 0], [0, 1, 0, 0], [0, kz, 1, 0]]))
    return vase


def _box(rng) -> _Solid:
    width, depth, height, t = (
        _u(rng, 0.2, 0.5),
        _u(rng, 0.15, 0.4),
        _u(rng, 0.1, 0.35),
        _u(rng, 0.004, 0.012),
    )
    box = _block((width, height, depth)) - _block((width - 2 * t, height, depth - 2 * t), 0, t)
    kind = _pick(rng, ("flaps", "hinged", "slid", "open"), p=(0.35, 0.3, 0.2, 0.15))
    parts = [box]
    if kind == "flaps":  # cardboard flaps folded out at random angles about the top edges
        for sz in (-1, 1):
            length = min(depth / 2, 0.9 * height)
            flap = _block((width, length + t, t), 0, height - t, sz * (depth / 2 - t / 2))
            pivot = (0, height, sz * depth / 2)
            parts += [
                _turn(flap, (sz * _u(rng, 20, 150), 0, 0), pivot),
                _hinge_x(width, t, height, sz * depth / 2),
            ]
        for sx in (-1, 1):
            length = min(width / 2, 0.9 * height)
            flap = _block((t, length + t, depth), sx * (width / 2 - t / 2), height - t)
            parts.append(_turn(flap, (0, 0, -sx * _u(rng, 20, 150)), (sx * width / 2, height, 0)))
            parts.append(
                _hinge_x(depth, t, height, 0).rotate((0, 90, 0)).translate((sx * width / 2, 0, 0))
            )
    elif kind == "hinged":
        lid = _block((width, t, depth), 0, height, 0)
        pivot = (0, height, -depth / 2)
        parts += [
            _turn(lid, (-_u(rng, 40, 115), 0, 0), pivot),
            _hinge_x(width, t * 1.2, height, -depth / 2),
        ]
    elif kind == "slid":
        lid = _block((width + 0.01, t, depth + 0.01), 0, height - _EMBED)
        x, z = _xz(_u(rng, 0.2, 0.4) * min(width, depth), _u(rng, 0, 360))
        parts.append(_turn(lid, (0, _u(rng, -15, 15), 0), (0, 0, 0)).translate((x, 0, z)))
    else:  # open crate with hand holes on the short sides
        hole = _block((width + 0.02, 0.025, min(0.1, depth * 0.4)), 0, height * 0.75)
        parts = [box - hole]
    return _union(parts)


def _kettle(rng) -> _Solid:
    kind = _pick(rng, ("electric", "teapot", "stovetop"))
    if kind == "teapot":
        r_max, height = _u(rng, 0.07, 0.1), _u(rng, 0.1, 0.16)
        heights, radii = _smooth_profile(
            [0, height * _u(rng, 0.35, 0.5), height], [r_max * 0.65, r_max, r_max * 0.5]
        )
        spout = _path(
            [
                (r_max * 0.6, height * 0.3, 0),
                (r_max + 0.04, height * 0.55, 0),
                (r_max + _u(rng, 0.06, 0.09), height * 1.0, 0),
            ],
            0.016,
            0.007,
        )
        handle = _ring(height * 0.35, 0.008, 20).translate(
            (-r_max - height * 0.1, height * 0.55, 0)
        )
    else:
        r_base = _u(rng, 0.07, 0.09) if kind == "electric" else _u(rng, 0.09, 0.11)
        r_top = r_base * (_u(rng, 0.7, 0.95) if kind == "electric" else _u(rng, 0.5, 0.7))
        height = _u(rng, 0.18, 0.25) if kind == "electric" else _u(rng, 0.12, 0.17)
        heights, radii = [0, 0.004, height], [r_base - 0.004, r_base, r_top]
        if kind == "electric":
            spout = _rod(
                (r_top * 0.6, height * 0.8, 0), (r_top + 0.03, height * 0.98, 0), 0.018, 0.008
            )
            hx = -r_base - 0.04
            handle = _path(
                [
                    (-r_top * 0.7, height * 0.9, 0),
                    (hx, height * 0.85, 0),
                    (hx, height * 0.3, 0),
                    (-r_base + 0.005, height * 0.2, 0),
                ],
                0.011,
            )
        else:
            spout = _path(
                [
                    (r_base * 0.7, height * 0.35, 0),
                    (r_base + 0.04, height * 0.7, 0),
                    (r_base + 0.06, height * 0.85, 0),
                ],
                0.014,
                0.009,
            )
            handle = _path(
                [
                    (-r_top * 0.8, height - 0.005, 0),
                    (-r_top * 0.6, height + 0.07, 0),
                    (r_top * 0.6, height + 0.07, 0),
                    (r_top * 0.8, height - 0.005, 0),
                ],
                0.007,
            )
            handle = _turn(handle, (0, _u(rng, -30, 30), 0), (0, 0, 0))
    parts = [
        _lathe(list(zip([0, *radii, 0], [0, *heights, heights[-1]], strict=True))),
        spout,
        handle,
    ]
    lid_r = float(radii[-1]) * 0.85
    parts.append(_ball(lid_r, (0, float(heights[-1]) - _EMBED, 0), (1, 0.35, 1), segments=20))
    parts.append(_ball(0.012, (0, float(heights[-1]) + lid_r * 0.35, 0)))
    if kind == "electric":
        parts.append(_cylinder(float(radii[1]) * 1.08, 0.015, segments=_SEG))
        if _chance(rng, 0.6):  # water window
            window = _block(
                (0.012, float(heights[-1]) * 0.6, 0.03), float(radii[1]) - 0.002, 0.03, 0
            )
            parts.append(_turn(window, (0, _u(rng, 30, 150) * _pick(rng, (-1, 1)), 0), (0, 0, 0)))
    return _union(parts)


def _watering_can(rng) -> _Solid:
    radius, height = _u(rng, 0.07, 0.11), _u(rng, 0.15, 0.25)
    oval = _u(rng, 0.8, 1.2)
    body = _cylinder(radius, height).scale((oval, 1, 1))
    length, elevation = _u(rng, 0.2, 0.35), np.radians(_u(rng, 35, 55))
    start = np.array([radius * oval * 0.6, height * 0.15, 0])
    tip = start + length * np.array([np.cos(elevation), np.sin(elevation), 0])
    direction = (tip - start) / length
    parts = [body, _rod(start, tip, 0.012, 0.008)]
    if _chance(rng, 0.7):  # rose
        parts.append(_rod(tip - direction * 0.01, tip + direction * 0.03, 0.009, 0.025))
    r = radius * oval
    parts.append(
        _path(
            [
                (0.0, height - 0.005, 0),
                (-r * 0.1, height + 0.07, 0),
                (-r * 0.8, height + 0.07, 0),
                (-r - 0.03, height * 0.6, 0),
                (-r + 0.005, height * 0.35, 0),
            ],
            0.01,
        )
    )
    opening = min(_u(rng, 0.025, 0.045), 0.3 * r)
    ox = _u(rng, 0.35, 0.55) * r
    collar = _cylinder(opening + 0.005, 0.02, ox, height - _EMBED) - _cylinder(
        opening, 0.05, ox, height - 0.02
    )
    parts.append(collar)
    can = _union(parts) - _cylinder(opening, 0.03, ox, height - 0.02)
    return can


def _trash_bin(rng) -> _Solid:
    kind = _pick(rng, ("pedal", "open", "swing"), p=(0.35, 0.4, 0.25))
    radius, height = _u(rng, 0.1, 0.16), _u(rng, 0.28, 0.5) * (1.4 if kind == "swing" else 1.0)
    round_body = _chance(rng, 0.6)

    def body_solid(r, h, y=0.0, r_top=None):
        if round_body:
            return _cylinder(r, h, y=y, radius_top=r_top)
        top = r if r_top is None else r_top
        return (
            _Solid.extrude(
                manifold3d.CrossSection.square((2 * r, 2 * r), True), h, 0, 0, (top / r, top / r)
            )
            .rotate((-90, 0, 0))
            .translate((0, y, 0))
        )

    r_top = radius * _u(rng, 1.0, 1.15)
    if kind == "open":
        outer = body_solid(radius, height, r_top=r_top)
        cavity = body_solid(radius - 0.005, height, 0.01, r_top - 0.005)
        trash_y = height * _u(rng, 0.4, 0.85)
        parts = [
            outer - cavity.translate((0, 0.001, 0)),
            body_solid(radius - 0.004, trash_y - 0.01, 0.008),
        ]
        for _ in range(int(rng.integers(1, 6))):
            r = _u(rng, 0.025, 0.05)
            x, z = _xz(_u(rng, 0, radius - r - 0.01), _u(rng, 0, 360))
            parts.append(_ball(r, (x, trash_y + r * 0.5, z), segments=12))
        return _union(parts)
    parts = [body_solid(radius, height, r_top=r_top)]
    if kind == "pedal":
        parts.append(body_solid(r_top * 1.03, 0.025, height - _EMBED))
        parts.append(_block((0.08, 0.025, 0.06), 0, 0.01, radius + 0.02))
        parts.append(_block((0.06, 0.03, 0.03), 0, height - 0.01, -r_top - 0.01))
    else:
        dome = _ball(r_top, (0, height - _EMBED, 0), (1, 0.6, 1), segments=24).trim_by_plane(
            (0, 1, 0), height - _EMBED
        )
        flap = _block((r_top * 1.2, r_top * 0.35, 0.2), 0, height + 0.01, r_top * 0.7)
        parts.append(dome - flap)
    return _union(parts)


# --- electronics and lighting ------------------------------------------------------------


def _monitor(rng) -> _Solid:
    sw = _u(rng, 0.48, 0.72)
    sh = sw / _pick(rng, (16 / 9, 16 / 10, 21 / 9))
    pt, bezel = _u(rng, 0.012, 0.025), _u(rng, 0.008, 0.02)
    bottom = _u(rng, 0.07, 0.16)
    panel = _block((sw, sh, pt), 0, bottom)
    panel = panel - _block(
        (sw - 2 * bezel, sh - 2.5 * bezel, 0.004), 0, bottom + bezel * 1.5, pt / 2
    )
    bulge = _u(rng, 0.02, 0.05)
    neck_z = -pt / 2 - bulge - 0.008
    panel = panel + _block(
        (sw * 0.5, sh * 0.5, bulge + _EMBED), 0, bottom + sh * 0.25, -pt / 2 - bulge / 2
    )
    if _chance(rng, 0.3):  # webcam on the top edge
        panel = panel + _block((0.05, 0.02, 0.025), _u(rng, -0.05, 0.05), bottom + sh - _EMBED, 0)
    pivot = (0, bottom + sh * 0.4, neck_z)
    base_t = 0.012
    neck = _block(
        (_u(rng, 0.03, 0.06), bottom + sh * 0.45 - base_t, 0.02), 0, base_t - _EMBED, neck_z
    )
    foot = _pick(rng, ("oval", "plate", "vee"))
    base_z = (neck_z + 0.03) / 2 + 0.02
    if foot == "oval":
        base = (
            _cylinder(1.0, base_t)
            .scale((_u(rng, 0.1, 0.15), 1, _u(rng, 0.08, 0.11)))
            .translate((0, 0, base_z))
        )
    elif foot == "plate":
        base = _block((_u(rng, 0.18, 0.28), base_t, _u(rng, 0.15, 0.2)), 0, 0, base_z)
    else:
        angle = _u(rng, 20, 35)
        base = _union(
            [
                _turn(
                    _block((0.03, base_t, 0.22), 0, 0, neck_z + 0.09),
                    (0, s * angle, 0),
                    (0, 0, neck_z),
                )
                for s in (-1, 1)
            ]
        )
    return _union([_turn(panel, (-_u(rng, 0, 12), 0, 0), pivot), neck, base])


def _laptop(rng) -> _Solid:
    width, depth = _u(rng, 0.30, 0.38), _u(rng, 0.21, 0.26)
    tb, tl = _u(rng, 0.012, 0.02), _u(rng, 0.005, 0.008)
    base = _block((width, tb, depth))
    base = base - _block((width * 0.85, 0.004, depth * 0.45), 0, tb - 0.0015, -depth * 0.1)
    base = base - _block((width * 0.3, 0.004, depth * 0.25), 0, tb - 0.0015, depth * 0.3)
    hinge_r = max(tl, 0.006)
    hz = -depth / 2 + hinge_r
    lid_d = depth - hinge_r
    lid = _block((width, tl, lid_d), 0, tb - tl / 2, hz + lid_d / 2)
    lid = lid - _block(
        (width * 0.9, 0.003, lid_d * 0.85), 0, tb - tl / 2 - 0.0015, hz + lid_d * 0.5
    )
    lid = _turn(lid, (-_u(rng, 95, 135), 0, 0), (0, tb, hz))
    return _union([base, lid, _hinge_x(width * 0.8, hinge_r, tb, hz)])


def _lamp_shade(bottom_y, r_bottom, r_top, height, wall=0.003, x=0.0, z=0.0) -> _Solid:
    """Open conical shade (a truncated cone shell) centred on the vertical line (x, z)."""
    outer = _cylinder(r_bottom, height, x, bottom_y, z, radius_top=r_top)
    slope = (r_top - r_bottom) / height
    inner = _cylinder(
        r_bottom - 0.01 * slope - wall,
        height + 0.02,
        x,
        bottom_y - 0.01,
        z,
        radius_top=r_top + 0.01 * slope - wall,
    )
    return outer - inner


def _shade_with_spider(rng, hub, r_bottom, r_top, height, drop, wall=0.003) -> _Solid:
    """Shade around a bulb at ``hub``, held by 2-4 thin spider arms to the shade wall."""
    bottom_y = hub[1] - height * drop
    arms_y = bottom_y + height * 0.9
    arm_reach = r_bottom + (r_top - r_bottom) * 0.9 - wall / 2  # the middle of the wall
    n, phase = int(rng.integers(2, 5)), _u(rng, 0, 180)
    parts = [
        _lamp_shade(bottom_y, r_bottom, r_top, height, wall, hub[0], hub[2]),
        _ball(0.03, hub, (1, 1.3, 1)),
    ]
    for k in range(n):
        x, z = _xz(arm_reach, phase + k * 360 / n)
        parts.append(_rod(hub, (hub[0] + x, arms_y, hub[2] + z), 0.003, segments=8))
    return _union(parts)


def _table_lamp(rng) -> _Solid:
    if _chance(rng, 0.4):
        return _desk_lamp(rng)
    base_kind = _pick(rng, ("disc", "urn", "block"))
    stem_x = stem_z = 0.0
    if base_kind == "disc":
        base_top, base_r = _u(rng, 0.025, 0.04), _u(rng, 0.07, 0.11)
        base = _cylinder(base_r, base_top)
        stem_x, stem_z = _xz(_u(rng, 0, 0.5) * base_r, _u(rng, 0, 360))
    elif base_kind == "urn":
        base_top = _u(rng, 0.12, 0.25)
        r = _u(rng, 0.05, 0.08)
        heights, radii = _smooth_profile(
            [0, base_top * _u(rng, 0.3, 0.6), base_top], [r * 0.6, r, 0.015]
        )
        base = _lathe(list(zip([0, *radii, 0], [0, *heights, base_top], strict=True)))
    else:  # slab with the stem towards one end
        base_top, side_x, side_z = _u(rng, 0.03, 0.15), _u(rng, 0.1, 0.2), _u(rng, 0.08, 0.14)
        base = _block((side_x, base_top, side_z))
        stem_x = _u(rng, -0.3, 0.3) * side_x
    stem_top = base_top + _u(rng, 0.12, 0.3)
    hub = np.array([stem_x, stem_top, stem_z])
    if base_kind != "urn" and _chance(rng, 0.5):  # gooseneck: the stem bends sideways
        bend_x, bend_z = _xz(_u(rng, 0.03, 0.07), _u(rng, 0, 360))
        hub = hub + (bend_x, 0, bend_z)
        knee = (stem_x, base_top + (stem_top - base_top) * 0.5, stem_z)
        stem = _path([(stem_x, base_top - _EMBED, stem_z), knee, hub], 0.009)
    else:
        stem = _cylinder(0.01, stem_top - base_top + _EMBED, stem_x, base_top - _EMBED, stem_z)
    r_bottom = _u(rng, 0.1, 0.2)
    shade = _shade_with_spider(
        rng, hub, r_bottom, r_bottom * _u(rng, 0.55, 0.9), _u(rng, 0.12, 0.25), _u(rng, 0.2, 0.45)
    )
    parts = [base, stem, shade]
    if _chance(rng, 0.5):  # switch knob on the stem
        x, z = _xz(0.012, _u(rng, 0, 360))
        parts.append(_ball(0.008, (stem_x + x, base_top + (stem_top - base_top) * 0.3, stem_z + z)))
    return _union(parts)


def _desk_lamp(rng) -> _Solid:
    """Architect lamp: heavy foot, two arm segments, cone head aimed down and out."""
    base_r, base_h = _u(rng, 0.09, 0.12), _u(rng, 0.04, 0.06)
    azimuth = _u(rng, 0, 360)
    c, s = np.cos(np.radians(azimuth)), np.sin(np.radians(azimuth))
    joint = np.array([0, base_h + 0.02, 0])
    e1, l1 = np.radians(_u(rng, 65, 88)), _u(rng, 0.2, 0.28)
    e2, l2 = np.radians(_u(rng, -20, 15)), _u(rng, 0.15, 0.24)
    elbow = joint + l1 * np.array([np.cos(e1) * c, np.sin(e1), np.cos(e1) * s])
    wrist = elbow + l2 * np.array([np.cos(e2) * c, np.sin(e2), np.cos(e2) * s])
    down = np.radians(_u(rng, 40, 80))
    head_dir = np.array([np.cos(down) * c, -np.sin(down), np.cos(down) * s])
    cone = _rod(wrist, wrist + 0.12 * head_dir, 0.02, 0.065, _SEG) - _rod(
        wrist + 0.01 * head_dir, wrist + 0.13 * head_dir, 0.015, 0.062, _SEG
    )
    return _union(
        [
            _cylinder(base_r, base_h),
            _rod((0, base_h - _EMBED, 0), joint, 0.012),
            _ball(0.015, joint),
            _path([joint, elbow, wrist], 0.008),
            _ball(0.02, wrist),
            cone,
        ]
    )


def _floor_lamp(rng) -> _Solid:
    kind = _pick(rng, ("classic", "arc", "tripod", "torchiere"), p=(0.35, 0.25, 0.25, 0.15))
    height = _u(rng, 1.3, 1.75)
    if kind == "tripod":
        hub_y, spread, phase = height * _u(rng, 0.55, 0.7), _u(rng, 0.25, 0.4), _u(rng, 0, 120)
        parts = []
        for k in range(3):
            x, z = _xz(spread, phase + 120 * k)
            parts.append(_rod((x, -0.05, z), (0, hub_y, 0), 0.012))
        parts.append(_cylinder(0.012, height - hub_y - 0.05, y=hub_y - 0.02, segments=_SEG_SMALL))
        r = _u(rng, 0.15, 0.25)
        parts.append(
            _shade_with_spider(
                rng, (0, height - 0.1, 0), r, r * _u(rng, 0.85, 1.0), _u(rng, 0.2, 0.35), 0.4
            )
        )
        return _union(parts)
    base_r = _u(rng, 0.14, 0.19)
    base_h = _u(rng, 0.025, 0.04)
    if kind == "arc":
        side = _u(rng, 0.36, 0.44)
        base_h = _u(rng, 0.08, 0.1)  # heavy marble block balances the arc
        reach = _u(rng, 0.5, 0.8)
        azimuth = _u(rng, 0, 360)
        c, s = np.cos(np.radians(azimuth)), np.sin(np.radians(azimuth))
        t = np.linspace(0, 1, 9)
        radial, ys = (
            reach * np.sin(t * np.pi / 2) ** 2,
            base_h + (height - base_h) * np.sin(t * np.pi * 0.6) / np.sin(np.pi * 0.6),
        )
        arc = _path([(r * c, y, r * s) for r, y in zip(radial, ys, strict=True)], 0.012)
        dome_r = _u(rng, 0.13, 0.18)
        center = (reach * c, height - dome_r - 0.04, reach * s)
        dome = _ball(dome_r, center, segments=24) - _ball(dome_r - 0.003, center, segments=24)
        dome = dome.trim_by_plane((0, 1, 0), center[1] - dome_r * 0.2)
        drop = _rod(
            (center[0], center[1] + dome_r - 0.002, center[2]),
            (reach * c, height, reach * s),
            0.012,
        )
        return _union([_block((side, base_h, side)), arc, dome, drop])
    pole_top = height if kind == "classic" else height - 0.09
    parts = [
        _cylinder(base_r, base_h),
        _cylinder(0.012, pole_top - base_h, y=base_h - _EMBED, segments=_SEG_SMALL),
    ]
    if kind == "classic":
        r = _u(rng, 0.16, 0.25)
        parts.append(
            _shade_with_spider(
                rng, (0, height, 0), r, r * _u(rng, 0.55, 0.85), _u(rng, 0.22, 0.32), 0.4
            )
        )
    else:
        bowl_r = _u(rng, 0.15, 0.22)
        outer, cavity = _vessel([height - 0.1, height], [0.015, bowl_r], 0.004, height - 0.09)
        parts.append(outer - cavity)
    if _chance(rng, 0.8):  # reading arm
        azimuth = _u(rng, 0, 360)
        x, z = _xz(_u(rng, 0.25, 0.35), azimuth)
        joint = (0, height * _u(rng, 0.55, 0.7), 0)
        head = (x, joint[1] + _u(rng, 0.1, 0.25), z)
        down = (x * 1.15, head[1] - 0.1, z * 1.15)
        parts.append(_path([joint, head], 0.008))
        parts.append(
            _rod(head, down, 0.02, 0.045, 20)
            - _rod(head, np.add(down, (x * 0.01, -0.01, z * 0.01)), 0.0, 0.04, 20)
        )
        parts[-1] = parts[-1] + _ball(0.022, head)
    return _union(parts)


# --- other ---------------------------------------------------------------------------------


def _toy_car(rng) -> _Solid:
    kind = _pick(rng, ("car", "truck", "bus", "race"), p=(0.45, 0.25, 0.15, 0.15))
    length = _u(rng, 0.12, 0.3)
    width = length * _u(rng, 0.38, 0.48)
    wheel_r, wheel_w = length * _u(rng, 0.09, 0.13), width * _u(rng, 0.15, 0.22)
    if kind == "bus":
        wheel_r *= 0.8
    clearance = wheel_r * _u(rng, 0.4, 0.8)
    body_h = length * (_u(rng, 0.12, 0.2) if kind != "race" else _u(rng, 0.08, 0.11))
    if kind == "bus":
        body_h = length * _u(rng, 0.35, 0.45)
    nose = length * (_u(rng, 0.03, 0.12) if kind != "bus" else 0.02)
    top_y = clearance + body_h
    hood_drop = body_h * (_u(rng, 0.1, 0.35) if kind != "bus" else 0.05)
    hw = width / 2
    body = _Solid.hull_points(
        np.array(
            [
                [sx * hw, y, z]
                for sx in (-1, 1)
                for y, z in (
                    (clearance, -length / 2),
                    (clearance, length / 2),
                    (top_y, -length / 2),
                    (top_y - hood_drop, length / 2 - nose),
                )
            ]
        )
    )
    axle = length / 2 - wheel_r * _u(rng, 1.3, 1.8)
    arches = _union(
        [
            _Solid.cylinder(wheel_w * 1.4, wheel_r * 1.12, wheel_r * 1.12, 20, True)
            .rotate((0, 90, 0))
            .translate((sx * (hw - wheel_w * 0.5), wheel_r, sz * axle))
            for sx in (-1, 1)
            for sz in (-1, 1)
        ]
    )
    parts = [body - arches]
    for sz in (-1, 1):
        parts.append(
            _Solid.cylinder(width - wheel_w * 0.4, wheel_r * 0.25, wheel_r * 0.25, 10, True)
            .rotate((0, 90, 0))
            .translate((0, wheel_r, sz * axle))
        )
        for sx in (-1, 1):
            parts.append(
                _Solid.cylinder(wheel_w, wheel_r, wheel_r, 20, True)
                .rotate((0, 90, 0))
                .translate((sx * (hw - wheel_w * 0.3), wheel_r, sz * axle))
            )
    if kind == "car":
        back, front = -length * _u(rng, 0.3, 0.4), length * _u(rng, 0.05, 0.2)
        cab_h = length * _u(rng, 0.1, 0.16)
        rake = (front - back) * _u(rng, 0.15, 0.3)
        parts.append(
            _Solid.hull_points(
                np.array(
                    [
                        [sx * hw * f, y, z]
                        for sx in (-1, 1)
                        for f, y, z in (
                            (1, top_y - _EMBED, back),
                            (1, top_y - _EMBED, front),
                            (0.85, top_y + cab_h, back + rake * 0.5),
                            (0.85, top_y + cab_h, front - rake),
                        )
                    ]
                )
            )
        )
    elif kind == "truck":
        cab_l = length * _u(rng, 0.25, 0.35)
        cab_h = length * _u(rng, 0.15, 0.22)
        parts.append(
            _block(
                (width * 0.95, cab_h + hood_drop + _EMBED, cab_l),
                0,
                top_y - hood_drop - _EMBED,
                length / 2 - nose - cab_l / 2 - length * 0.05,
            )
        )
        bed_l = length / 2 - nose - cab_l - length * 0.06 + length / 2
        bed = _block((width, body_h * 0.6, bed_l), 0, top_y - _EMBED, -length / 2 + bed_l / 2)
        parts.append(
            bed
            - _block(
                (width - 0.01, body_h, bed_l - 0.01), 0, top_y + 0.003, -length / 2 + bed_l / 2
            )
        )
    elif kind == "bus":
        band_y = clearance + body_h * 0.6
        windows = _block((width + 0.01, body_h * 0.25, length * 0.7), 0, band_y, -length * 0.08)
        windshield = _block((width * 0.85, body_h * 0.3, 0.01), 0, band_y, length / 2 - nose * 0.2)
        door = _block(
            (0.01, body_h * 0.55, length * 0.08), hw, clearance + body_h * 0.1, length * 0.3
        )
        side_band = windows - _block((width - 0.006, top_y + 1, length + 1))
        parts[0] = parts[0] - _union([side_band, windshield, door])
    else:  # race car: cockpit bubble and rear wing
        parts.append(
            _ball(
                1.0,
                (0, top_y, -length * 0.05),
                (hw * 0.45, body_h * 0.8, length * 0.15),
                segments=20,
            )
        )
        wing_y = top_y + body_h * _u(rng, 0.4, 0.8)
        parts += [
            _block(
                (0.006, wing_y - top_y + _EMBED, length * 0.04),
                sx * hw * 0.5,
                top_y - _EMBED,
                -length / 2 + length * 0.06,
            )
            for sx in (-1, 1)
        ]
        parts.append(
            _turn(
                _block((width, 0.006, length * 0.1), 0, wing_y, -length / 2 + length * 0.06),
                (_u(rng, -15, 0), 0, 0),
                (0, wing_y, -length / 2 + length * 0.06),
            )
        )
    return _union(parts)


def _potted_plant(rng) -> _Solid:
    r_base, pot_h = _u(rng, 0.05, 0.1), _u(rng, 0.08, 0.2)
    r_top = r_base * _u(rng, 1.1, 1.5)
    saucer = 0.012 if _chance(rng, 0.4) else 0.0
    soil_y = saucer + pot_h - _u(rng, 0.01, 0.03)
    heights = np.array([0, pot_h]) + saucer
    outer, cavity = _vessel(heights, [r_base, r_top], 0.006, soil_y)
    parts = [outer - cavity]
    if saucer:
        parts.append(_cylinder(r_base * 1.2, saucer + _EMBED, radius_top=r_base * 1.3))
    kind = _pick(rng, ("leafy", "cactus", "tree", "grass"), p=(0.4, 0.2, 0.2, 0.2))
    soil_r = r_top - 0.006 - (r_top - r_base) * (pot_h + saucer - soil_y) / pot_h
    ground = soil_y - _EMBED
    if kind == "leafy":
        scale = _u(rng, 0.7, 1.6)
        for _ in range(int(rng.integers(5, 13))):
            yaw, pitch = _u(rng, 0, 360), _u(rng, 20, 75)
            stem = scale * _u(rng, 0.06, 0.18)
            direction = np.array(
                [
                    np.sin(np.radians(yaw)) * np.cos(np.radians(pitch)),
                    np.sin(np.radians(pitch)),
                    np.cos(np.radians(yaw)) * np.cos(np.radians(pitch)),
                ]
            )
            start = np.array([*_xz(_u(rng, 0, 0.3) * soil_r, _u(rng, 0, 360))])
            start = np.array([start[0], ground, start[1]])
            end = start + stem * direction
            leaf_len, leaf_w = scale * _u(rng, 0.04, 0.09), scale * _u(rng, 0.02, 0.045)
            leaf = _ball(1.0, (0, 0, 0), (leaf_w, 0.003, leaf_len), segments=12).translate(
                (0, 0, leaf_len * 0.9)
            )
            leaf = leaf.rotate((-pitch * _u(rng, 0.3, 1.0), yaw, 0)).translate(tuple(end))
            parts += [_rod(start, end, 0.003, 0.002, 8), leaf]
    elif kind == "cactus":
        r, h = min(_u(rng, 0.02, 0.05), soil_r * 0.8), _u(rng, 0.1, 0.3)
        parts += [_cylinder(r, h, y=ground, segments=20), _ball(r, (0, ground + h, 0), segments=20)]
        for _ in range(int(rng.integers(0, 4))):
            y, a = ground + h * _u(rng, 0.3, 0.7), _u(rng, 0, 360)
            out, up = _u(rng, 0.03, 0.06), _u(rng, 0.03, 0.1)
            x, z = _xz(r + out, a)
            ar = r * _u(rng, 0.45, 0.7)
            parts.append(_path([(0, y, 0), (x, y, z), (x, y + up, z)], ar, segments=16))
            parts.append(_ball(ar, (x, y + up, z), segments=16))
    elif kind == "tree":
        trunk_h = _u(rng, 0.2, 0.6)
        x, z = _xz(_u(rng, 0, 0.05), _u(rng, 0, 360))
        crown = np.array([x, ground + trunk_h, z])
        parts.append(_rod((0, ground, 0), crown, 0.008, 0.005))
        size = _u(rng, 0.07, 0.15)
        count = int(rng.integers(3, 8))
        offsets = rng.normal(0, size * 0.6, (count, 3)) * (1, 0.6, 1)
        radii = size * rng.uniform(0.5, 0.9, count)
        # balance the crown over the trunk (volume-weighted), or the pot tips over
        offsets[:, [0, 2]] -= np.average(offsets[:, [0, 2]], axis=0, weights=radii**3)
        for offset, radius in zip(offsets, radii, strict=True):
            parts.append(_ball(radius, crown + offset, segments=16))
            parts.append(_rod(crown - (0, 0.05, 0), crown + offset, 0.005, 0.003, 8))
    else:
        for _ in range(int(rng.integers(8, 21))):
            x, z = _xz(_u(rng, 0, 0.8) * soil_r, _u(rng, 0, 360))
            lx, lz = _xz(_u(rng, 0.02, 0.1), _u(rng, 0, 360))
            parts.append(
                _rod(
                    (x, ground, z), (x + lx, ground + _u(rng, 0.1, 0.35), z + lz), 0.004, 0.0005, 6
                )
            )
    return _union(parts)


# --- registry and source -------------------------------------------------------------------


def _hex_palette(*codes: str) -> tuple[tuple[float, float, float], ...]:
    """sRGB hex codes to linear RGB."""
    out = []
    for code in codes:
        srgb = np.array([int(code[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        out.append(tuple(float(c) for c in linear))
    return tuple(out)


_WOOD = _hex_palette("8b5a2b", "a0522d", "c19a6b", "6f4e37", "deb887", "5c4033")
_PAINT = _hex_palette("f5f5f0", "2f4f4f", "708090", "1c1c1c", "b0c4de", "8fbc8f")
_FABRIC = _hex_palette("4a6fa5", "8b3a3a", "556b2f", "a9a9a9", "d2b48c", "3c3c5a", "c97b5b")
_CERAMIC = _hex_palette("f2efe6", "c0392b", "2e86c1", "f4d03f", "27ae60", "34495e", "e8a0bf")
_GLASS = _hex_palette("d6eaf8", "a9cce3", "d5f5e3", "f9e79f", "e5e8e8")
_METAL = _hex_palette("c0c0c0", "8c8c8c", "2b2b2b", "b87333", "d4af37")
_PLASTIC = _hex_palette("e74c3c", "3498db", "2ecc71", "f1c40f", "9b59b6", "ecf0f1", "1abc9c")
_DARK = _hex_palette("1a1a1a", "2c2c2c", "3d3d3d", "c8c8c8", "4b4b5a")
_PLANT = _hex_palette("2e7d32", "388e3c", "558b2f", "33691e", "6b8e23")


@dataclass(frozen=True)
class _Category:
    build: Callable[[np.random.Generator], _Solid]
    size_range: tuple[float, float]
    """Longest side in metres once placed."""
    palette: tuple[tuple[float, float, float], ...]


_CATEGORIES: dict[str, _Category] = {
    "chair": _Category(_chair, (0.75, 1.15), _WOOD + _PAINT),
    "stool": _Category(_stool, (0.45, 1.0), _WOOD + _METAL),
    "table": _Category(_table, (0.8, 1.8), _WOOD),
    "desk": _Category(_desk, (1.0, 1.6), _WOOD + _PAINT),
    "bookshelf": _Category(_bookshelf, (0.8, 2.0), _WOOD + _PAINT),
    "sofa": _Category(_sofa, (1.5, 2.4), _FABRIC),
    "bed": _Category(_bed, (1.95, 2.3), _FABRIC + _WOOD),
    "cabinet": _Category(_cabinet, (0.8, 2.0), _WOOD + _PAINT),
    "bench": _Category(_bench, (1.0, 1.8), _WOOD + _METAL),
    "mug": _Category(_mug, (0.11, 0.16), _CERAMIC),
    "cup": _Category(_cup, (0.1, 0.24), _GLASS + _CERAMIC),
    "bottle": _Category(_bottle, (0.22, 0.38), _GLASS + _PLASTIC),
    "bowl": _Category(_bowl, (0.12, 0.34), _CERAMIC + _WOOD),
    "vase": _Category(_vase, (0.2, 0.75), _CERAMIC + _GLASS),
    "box": _Category(_box, (0.25, 0.9), _hex_palette("c8a165", "b5895a", "d9c09a") + _PLASTIC),
    "kettle": _Category(_kettle, (0.22, 0.35), _METAL + _CERAMIC),
    "watering_can": _Category(_watering_can, (0.3, 0.5), _METAL + _PLASTIC),
    "trash_bin": _Category(_trash_bin, (0.3, 0.75), _METAL + _PLASTIC + _DARK),
    "monitor": _Category(_monitor, (0.48, 0.72), _DARK),
    "laptop": _Category(_laptop, (0.3, 0.4), _DARK + _METAL),
    "table_lamp": _Category(_table_lamp, (0.33, 0.65), _CERAMIC + _METAL),
    "floor_lamp": _Category(_floor_lamp, (1.35, 1.95), _METAL + _DARK),
    "toy_car": _Category(_toy_car, (0.13, 0.3), _PLASTIC),
    "potted_plant": _Category(_potted_plant, (0.27, 0.85), _PLANT),
}
CATEGORIES: list[str] = list(_CATEGORIES)
"""Category names as they appear in object ids; labels replace ``_`` with a space."""


def build_mesh(category: str, rng: np.random.Generator):
    """One random instance of ``category`` as a ``trimesh.Trimesh`` in metres (not canonical).

    The mesh is watertight, rests on y = 0 (+y up) and faces +z. Raises KeyError for an
    unknown category.
    """
    import trimesh

    if category not in _CATEGORIES:
        raise KeyError(f"unknown procedural category {category!r}; known: {', '.join(CATEGORIES)}")
    solid = _CATEGORIES[category].build(rng).trim_by_plane((0.0, 1.0, 0.0), 0.0)
    # Booleans of nearly touching parts leave needle triangles of zero area, which
    # validate_mesh drops (opening holes); collapsing sub-micrometre features removes them.
    mesh = solid.simplify(1e-6).to_mesh64()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def seed_of(object_id: str, attempt: int = 0) -> int:
    """Stable 64-bit seed of an object id (not Python's salted ``hash``)."""
    key = f"procedural/{object_id}" + (f"#{attempt}" if attempt else "")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


_MAX_ATTEMPTS = 8
"""Draws per id: a rare draw whose parts meet in a degenerate way is replaced by the next
draw of the same id's seed sequence, so ids stay deterministic and every mesh is clean."""


def _is_clean(mesh) -> bool:
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.body_count == 1)


def parse_object_id(object_id: str) -> tuple[str, int]:
    """``"table_lamp_0007"`` -> ``("table_lamp", 7)``; ValueError / KeyError when malformed."""
    if not isinstance(object_id, str):
        raise ValueError(f"object_id must be a string, got {type(object_id).__name__}")
    category, sep, index = object_id.rpartition("_")
    if not sep or len(index) != 4 or not index.isdigit():
        raise ValueError(
            f"malformed procedural object id {object_id!r}; expected '<category>_<4 digits>'"
        )
    if category not in _CATEGORIES:
        raise KeyError(f"unknown procedural category {category!r} in id {object_id!r}")
    return category, int(index)


class ProceduralSource(ObjectSource):
    """Everyday objects generated from CSG primitives; each id builds the same mesh every time."""

    name = "procedural"
    licence = "CC0-1.0"

    def __init__(self, instances_per_category: int = 40):
        if isinstance(instances_per_category, bool) or not isinstance(instances_per_category, int):
            raise ValueError(
                f"instances_per_category must be an int, got {instances_per_category!r}"
            )
        if not 1 <= instances_per_category <= 10_000:
            raise ValueError(
                f"instances_per_category must be in [1, 10000], got {instances_per_category}"
            )
        self.instances_per_category = instances_per_category

    def all_ids(self) -> list[str]:
        return [f"{c}_{i:04d}" for c in CATEGORIES for i in range(self.instances_per_category)]

    def load(self, object_id: str) -> ObjectAsset:
        category, index = parse_object_id(object_id)
        if index >= self.instances_per_category:
            raise KeyError(
                f"{object_id!r} is not in this source (instances_per_category={self.instances_per_category})"
            )
        for attempt in range(_MAX_ATTEMPTS):
            seed = seed_of(object_id, attempt)
            mesh = validate_mesh(build_mesh(category, np.random.default_rng(seed)), object_id)
            if _is_clean(mesh):
                break
        else:
            raise MeshError(f"{object_id}: no clean mesh in {_MAX_ATTEMPTS} draws")
        extent = np.ptp(mesh.vertices, axis=0)
        mesh, _ = canonicalize_mesh(mesh)
        spec = _CATEGORIES[category]
        colour_rng = np.random.default_rng([seed, 1])  # own stream: colour never shifts geometry
        base = np.asarray(spec.palette[int(colour_rng.integers(len(spec.palette)))])
        colour = np.clip(base * colour_rng.uniform(0.8, 1.2) + colour_rng.normal(0, 0.01, 3), 0, 1)
        return ObjectAsset(
            object_id=object_id,
            label=category.replace("_", " "),
            mesh=mesh,
            source=self.name,
            licence=self.licence,
            size_range=spec.size_range,
            color=tuple(float(c) for c in colour),
            extra={"seed": seed, "attempt": attempt, "extent_m": [float(e) for e in extent]},
        )
