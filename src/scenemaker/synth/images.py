"""Image files of the dataset format: RGB PNG, depth as uint16 millimetres, instance ids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..geometry.projection import backproject  # noqa: F401  (used by synth modules)
from ..io_utils import atomic_write_bytes

DEPTH_SCALE = 1000.0  # stored value = metres * 1000 (uint16 mm, 0 = invalid)


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    from PIL import Image

    if array.dtype == np.uint16:
        image = Image.fromarray(array)  # mode "I;16"
    else:
        image = Image.fromarray(np.ascontiguousarray(array))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def depth_to_uint16(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres; invalid (<= 0 or non-finite) and beyond 65.535 m -> 0."""
    depth = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.rint(depth * DEPTH_SCALE)
    mm[(mm <= 0) | (mm > 65535)] = 0
    return mm.astype(np.uint16)


def write_png(path: str | Path, array: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(array))


def read_depth(path: str | Path) -> np.ndarray:
    """uint16 millimetre PNG -> float32 metres (0 = invalid)."""
    from PIL import Image

    with Image.open(path) as image:
        mm = np.asarray(image)
    if mm.dtype not in (np.uint16, np.int32, np.uint8):
        raise ValueError(f"{path}: expected a 16-bit depth PNG, got dtype {mm.dtype}")
    return mm.astype(np.float32) / DEPTH_SCALE


def read_image(path: str | Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)
