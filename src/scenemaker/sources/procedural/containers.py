"""Containers: bottles and detergent jugs, boxes, watering cans and trash bins."""

from __future__ import annotations

import manifold3d
import numpy as np

from .primitives import (
    _EMBED,
    _ball,
    _block,
    _chance,
    _cylinder,
    _hinge_x,
    _lathe,
    _path,
    _pick,
    _rod,
    _Solid,
    _turn,
    _u,
    _union,
    _xz,
)


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
