"""Electronics and lighting: monitors, laptops, table and desk lamps, floor lamps."""

from __future__ import annotations

import numpy as np

from .primitives import (
    _EMBED,
    _SEG,
    _SEG_SMALL,
    _ball,
    _block,
    _chance,
    _cylinder,
    _hinge_x,
    _lathe,
    _path,
    _pick,
    _rod,
    _smooth_profile,
    _Solid,
    _turn,
    _u,
    _union,
    _vessel,
    _xz,
)


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
