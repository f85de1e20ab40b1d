"""Kitchen and table objects: mugs, cups (tumbler, wine glass, teacup), bowls, vases, kettles."""

from __future__ import annotations

import numpy as np

from .primitives import (
    _EMBED,
    _SEG,
    _ball,
    _block,
    _chance,
    _cylinder,
    _lathe,
    _path,
    _pick,
    _ring,
    _rod,
    _smooth_profile,
    _Solid,
    _turn,
    _u,
    _union,
    _vessel,
    _xz,
)


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
