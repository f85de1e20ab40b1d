"""Furniture with tops and shelves: tables, desks, bookshelves (with books) and cabinets."""

from __future__ import annotations

import numpy as np

from .primitives import (
    _EMBED,
    _SEG_SMALL,
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
    _xz,
)


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
