"""Reading image files: the photo, and the decode / size-fitting helpers every loader shares.

Images larger than ``max_side`` are downscaled by :func:`load_image`; a file given at the
image's original (pre-downscale) size is accepted by :func:`_fit_size` and resized with
:func:`_resize_nearest`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError

_DECODE_ERRORS = (OSError, EOFError, SyntaxError, ValueError, IndexError, struct.error)


# ----------------------------------------------------------------------------- helpers


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found (expected {what} file)")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (expected {what} file)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (expected {what} file)")


def _size_str(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def downscaled_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(w, h) scaled so that the longer side is ``max_side`` (unchanged if already smaller)."""
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _fit_size(path: Path, what: str, size: tuple[int, int], image_size: tuple[int, int]) -> bool:
    """True if ``size`` must be resized to ``image_size``; InputError if the sizes disagree.

    A file at the image's original size (the one :func:`load_image` downscaled) is accepted.
    """
    size, image_size = tuple(size), tuple(image_size)
    if size == image_size:
        return False
    if max(size) > max(image_size) and downscaled_size(size, max(image_size)) == image_size:
        return True
    raise InputError(
        f"{path}: {what} is {_size_str(size)} but the image is {_size_str(image_size)}"
        " (expected the same size)"
    )


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) array of bool / uint8 / uint16 / int32 / float32 -> (h, w), nearest neighbour."""
    from PIL import Image

    dtype = array.dtype
    if dtype in (np.bool_, np.uint8):
        mode_array = array.astype(np.uint8)
    elif dtype == np.float32:
        mode_array = array
    else:
        mode_array = array.astype(np.int32)
    resized = np.asarray(Image.fromarray(mode_array).resize(size, Image.Resampling.NEAREST))
    return resized.astype(dtype)


def _open_decoded(path: Path, what: str):
    """Open with PIL and force a full decode; InputError naming the file on any failure."""
    from PIL import Image, UnidentifiedImageError

    _check_file(path, what)
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(
            f"{path}: not an image file PIL can read (expected PNG/JPEG/TIFF/BMP/WebP)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image too large to decode safely ({exc})") from None
    except _DECODE_ERRORS as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None
    if image.size[0] == 0 or image.size[1] == 0:
        image.close()
        raise InputError(f"{path}: image has zero size ({_size_str(image.size)})")
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        image.close()
        raise InputError(f"{path}: the image is truncated or corrupt ({exc})") from None
    return image


# ----------------------------------------------------------------------------- image


@dataclass
class LoadedImage:
    """An RGB photo ready for the pipeline."""

    rgb: np.ndarray  # (H, W, 3) uint8, upright (EXIF orientation applied), maybe downscaled
    path: Path
    original_size: tuple[int, int]  # (w, h) upright, before downscaling
    notes: list[str] = field(default_factory=list)  # what was done to the file, for the report

    @property
    def size(self) -> tuple[int, int]:
        """(w, h) of ``rgb``."""
        return self.rgb.shape[1], self.rgb.shape[0]


def _to_rgb(image, notes: list[str]):
    """Any PIL mode -> RGB: transparency on white, 16-bit / float grey scaled to 8 bits."""
    from PIL import Image

    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float64)
        finite = values[np.isfinite(values)]
        if mode == "F":
            lo, hi = 0.0, 1.0  # float images are usually [0, 1]; otherwise stretch min..max
            if finite.size and (finite.min() < 0 or finite.max() > 1):
                lo, hi = float(finite.min()), float(finite.max())
            notes.append(f"float image (mode F) mapped from [{lo:g}, {hi:g}] to 8 bits")
        else:
            lo, hi = 0.0, 65535.0
            notes.append(f"16-bit image (mode {mode}) scaled to 8 bits")
        scaled = (np.nan_to_num(values, nan=lo) - lo) / max(hi - lo, 1e-12) * 255.0
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
    if not has_alpha:
        if mode == "CMYK":
            notes.append("CMYK image converted to RGB")
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if rgba.getextrema()[3][0] == 255:  # alpha channel present but fully opaque
        return rgba.convert("RGB")
    notes.append("transparent pixels composited on white")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def load_image(path: str | Path, max_side: int | None = 2048) -> LoadedImage:
    """Read a photo as upright 8-bit RGB, the longer side at most ``max_side`` pixels.

    Applies the EXIF orientation; composites transparency on white; scales 16-bit and float
    grey images to 8 bits; converts palette / CMYK / other modes; uses the first frame of a
    multi-frame file. ``max_side=None`` keeps the full size.
    """
    from PIL import ImageOps

    path = Path(path)
    if max_side is not None and (int(max_side) != max_side or max_side < 1):
        raise InputError(f"max_side must be a positive integer or None, got {max_side!r}")
    notes: list[str] = []
    image = _open_decoded(path, "an image")
    with image:
        if getattr(image, "n_frames", 1) > 1:
            notes.append(f"first of {image.n_frames} frames used")
        try:
            orientation = image.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(image)
        except _DECODE_ERRORS:
            orientation, upright = 1, image
            notes.append("EXIF orientation unreadable, ignored")
        if orientation in range(2, 9):  # 1 = upright; other values are ignored by PIL
            notes.append(f"rotated according to EXIF orientation {orientation}")
        rgb = _to_rgb(upright, notes)
    original_size = rgb.size
    if max_side is not None and max(original_size) > max_side:
        from PIL import Image

        size = downscaled_size(original_size, int(max_side))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        notes.append(
            f"downscaled from {_size_str(original_size)} to {_size_str(size)}"
            f" (longer side limited to {max_side} px)"
        )
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), path, original_size, notes)
