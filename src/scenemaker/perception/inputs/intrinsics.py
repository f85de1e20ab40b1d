"""Camera intrinsics from the command line (``--K`` / ``--fov``) and their rescaling."""

from __future__ import annotations

import re

import numpy as np

from ...errors import InputError


def _parse_k_numbers(K: str) -> tuple[float, float, float, float]:
    parts = [p for p in re.split(r"[,\s]+", str(K).strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise InputError(f"--K: expected 4 numbers fx,fy,cx,cy in pixels, got {K!r}")
    fx, fy, cx, cy = values
    if fx <= 0 or fy <= 0:
        raise InputError(f"--K: focal lengths fx, fy must be positive, got {K!r}")
    return fx, fy, cx, cy


def _check_fov(fov: float) -> float:
    try:
        fov = float(fov)
    except (TypeError, ValueError):
        raise InputError(f"--fov: expected a number of degrees, got {fov!r}") from None
    if not np.isfinite(fov) or not 0 < fov < 180:
        raise InputError(f"--fov: horizontal field of view must be in (0, 180) degrees, got {fov}")
    return fov


def parse_intrinsics(
    K: str | None, fov: float | None, width: int, height: int
) -> np.ndarray | None:
    """(3, 3) intrinsics in pixels for a ``width`` x ``height`` image, or None if neither given.

    ``K``: "fx,fy,cx,cy" in pixels (commas or spaces), the principal point inside the image.
    ``fov``: horizontal field of view in degrees; square pixels, principal point at the
    image centre ((w - 1) / 2, (h - 1) / 2: pixel centres at integer coordinates).
    """
    if K is not None and fov is not None:
        raise InputError("--K and --fov both given: pass one of them")
    if K is None and fov is None:
        return None
    if fov is not None:
        f = width / (2.0 * np.tan(np.radians(_check_fov(fov)) / 2.0))
        fx, fy, cx, cy = f, f, (width - 1) / 2.0, (height - 1) / 2.0
    else:
        fx, fy, cx, cy = _parse_k_numbers(K)
        if not (0 <= cx <= width and 0 <= cy <= height):
            raise InputError(
                f"--K: principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} image"
                " (are these intrinsics for another image size?)"
            )
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(
    K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
) -> np.ndarray:
    """Intrinsics for ``from_size`` (w, h) -> the same camera seen at ``to_size`` (resized).

    Pixel centres sit at integer coordinates, so the principal point maps as
    ``c' = (c + 0.5) * s - 0.5``.
    """
    (w0, h0), (w1, h1) = from_size, to_size
    if min(w0, h0, w1, h1) <= 0:
        raise InputError(f"image sizes must be positive, got {from_size} -> {to_size}")
    sx, sy = w1 / w0, h1 / h0
    K = np.asarray(K, dtype=np.float64)
    scaled = K.copy()
    scaled[0, 0], scaled[0, 1], scaled[1, 1] = K[0, 0] * sx, K[0, 1] * sx, K[1, 1] * sy
    scaled[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    scaled[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return scaled
