"""Everything else: toy cars (car, truck, bus, race car) and potted plants."""

from __future__ import annotations

import numpy as np

from .primitives import (
    _EMBED,
    _ball,
    _block,
    _chance,
    _cylinder,
    _path,
    _pick,
    _rod,
    _Solid,
    _turn,
    _u,
    _union,
    _vessel,
    _xz,
)


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
