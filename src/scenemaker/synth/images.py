"""Image files of the dataset format: RGB PNG, depth as uint16 millimetres, instance ids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry.camera import depth_from_uint16
from ..io_utils import atomic_write_bytes


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    from PIL import Image

    if array.dtype == np.uint16:
        image = Image.fromarray(array)  # mode "I;16"
    else:
        image = Image.fromarray(np.ascontiguousarray(array))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png(path: str | Path, array: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(array))


def read_depth(path: str | Path) -> np.ndarray:
    """uint16 millimetre PNG -> float32 metres (0 = invalid)."""
    mm = read_image(path)
    if mm.dtype not in (np.uint16, np.int32, np.uint8):
        raise InputError(f"{path}: expected a 16-bit depth PNG, got dtype {mm.dtype}")
    return depth_from_uint16(mm)


def read_image(path: str | Path) -> np.ndarray:
    """A dataset image; a missing, truncated or undecodable file is one InputError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: unreadable image ({why})") from None
