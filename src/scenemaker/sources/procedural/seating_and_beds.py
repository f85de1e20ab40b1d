"""Furniture to sit or lie on: chairs (incl. office chairs), stools, sofas, beds, benches."""

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
    _path,
    _pick,
    _ring,
    _rod,
    _Solid,
    _turn,
    _u,
    _union,
    _xz,
)


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
