"""Procedural materials: per-face colours from a pattern over the canonical shape, so rendered
procedural objects show more than one flat colour (two tones, stripes, checks, speckles),
like painted, striped or patterned everyday objects.

Colours are stored as 8-bit sRGB face colours on the mesh (PLY keeps them; the renderer
linearises them), drawn from the object's own colour stream: an id's look is stable.
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("plain", "two_tone", "stripes", "checker", "speckle")


def procedural_face_colours(mesh, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(F, 4) uint8 sRGB colours of ``mesh``'s faces around the linear base colour ``base``."""
    from ...render.materials import linear_to_srgb8

    centres = np.asarray(mesh.triangles_center)  # canonical: within [-1, 1]
    base = np.asarray(base, dtype=np.float64)
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    if rng.random() < 0.5:  # a darker or a lighter second tone
        second = base * rng.uniform(0.3, 0.6)
    else:
        second = 1.0 - (1.0 - base) * rng.uniform(0.3, 0.6)
    n = len(centres)
    if pattern == "two_tone":  # e.g. legs / base vs top
        chosen = centres[:, 1] < rng.uniform(-0.6, 0.2)
    elif pattern == "stripes":
        axis, freq, phase = int(rng.integers(3)), rng.uniform(2.0, 6.0), rng.uniform(0, np.pi)
        chosen = np.sin(freq * np.pi * centres[:, axis] + phase) > 0
    elif pattern == "checker":
        cell = rng.uniform(0.25, 0.6)
        chosen = np.floor(centres / cell).sum(axis=1) % 2 == 1
    elif pattern == "speckle":
        chosen = rng.random(n) < 0.3
    else:
        chosen = np.zeros(n, bool)
    colours = np.where(chosen[:, None], second, base)
    colours = colours * rng.normal(1.0, 0.04, (n, 1))  # faces differ a little, as real paint
    rgba = np.full((n, 4), 255, np.uint8)
    rgba[:, :3] = linear_to_srgb8(colours)
    return rgba
