"""User-supplied inputs of the perception stage: the photo, depth, intrinsics and masks.

Every loader checks at the boundary and raises :class:`~scenemaker.errors.InputError` with one
line that names the file and what was expected. Pixel conventions follow ARCHITECTURE.md:
pixel centres at integer coordinates, depth in metres along the camera z axis (0 = invalid),
instance ids with 0 = background.

Images larger than ``max_side`` are downscaled by :func:`load_image`. Depth and masks given at
the original (pre-downscale) size are accepted and resized with nearest-neighbour sampling,
and intrinsics given for the original size are mapped with :func:`scale_intrinsics`.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..io_utils import atomic_write_bytes
from .base import Masks, PointMap

# What a corrupt file can raise from inside PIL's decoders besides OSError.
_DECODE_ERRORS = (OSError, EOFError, SyntaxError, ValueError, IndexError, struct.error)
_NPY_MAGIC = b"\x93NUMPY"
_NPZ_MAGIC = b"PK\x03\x04"
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_DEPTH_CHANNELS = ("z", "depth", "y", "r")  # EXR channel preference (last name component)
_MAX_LABELS = 1000  # more distinct ids than this: not an instance-label image
_LABEL_PNG_KEY = "scenemaker"  # PNG text chunk holding labels and scores
_LABEL_PNG_SCHEMA = "scenemaker.label_png/1"
_MAX_MASK_PIXELS = 2 * 89_478_485  # PIL refuses to decode larger images (decompression bomb)
_POLYGON_REACH = 4  # polygon coordinates may reach this many image sides from the origin


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


# ----------------------------------------------------------------------------- intrinsics


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


# ----------------------------------------------------------------------------- depth


@dataclass
class LoadedDepth:
    """A user depth map in metres, checked against the image."""

    depth: np.ndarray  # (H, W) float32 metres along camera z; 0 = invalid
    invalid_count: int  # pixels set to 0 (invalid_value, NaN, inf, <= 0)
    invalid_fraction: float
    file_size: tuple[int, int]  # (w, h) as stored, before any resize to the image
    notes: list[str] = field(default_factory=list)


def _read_exr(path: Path) -> np.ndarray:
    try:
        import OpenEXR
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading EXR depth needs the OpenEXR package (pip install OpenEXR)"
        ) from None
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {name: ch.pixels for name, ch in exr.channels().items()}
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read the EXR file ({exc})") from None
    by_suffix = {name.rsplit(".", 1)[-1].lower(): name for name in channels}
    for wanted in _DEPTH_CHANNELS:
        if wanted in by_suffix:
            return channels[by_suffix[wanted]]
    if len(channels) == 1:
        return next(iter(channels.values()))
    raise InputError(
        f"{path}: no depth channel among {sorted(channels)} (expected Z, depth, Y or R)"
    )


def _read_npy(path: Path, is_npz: bool) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays, malformed header
        raise InputError(f"{path}: not a plain numeric array file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the array file ({exc})") from None
    if not is_npz:
        return data
    with data:
        names = list(data.files)
        if "depth" in names:
            return data["depth"]
        if len(names) == 1:
            return data[names[0]]
    raise InputError(f"{path}: NPZ holds {names}; expected a 'depth' array or a single array")


def _read_depth_image(path: Path) -> np.ndarray:
    image = _open_decoded(path, "a depth")
    with image:
        mode = image.mode
        if mode in ("I", "F") or mode.startswith("I;16"):
            return np.asarray(image)
    if mode in ("1", "L", "P"):
        raise InputError(
            f"{path}: 8-bit depth image (mode {mode}) has only 256 depth levels; save depth as a"
            " 16-bit PNG (uint16, default millimetres), .npy or .exr"
        )
    raise InputError(
        f"{path}: depth image has mode {mode} ({len(mode)} channels?); expected a single-channel"
        " 16-bit PNG (uint16, default millimetres), .npy or .exr"
    )


def read_depth_array(path: str | Path) -> np.ndarray:
    """The raw single-channel array stored in a depth file (PNG/TIFF, EXR, NPY or NPZ)."""
    path = Path(path)
    _check_file(path, "a depth")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(_EXR_MAGIC):
        raw = _read_exr(path)
    elif magic.startswith(_NPY_MAGIC) or magic.startswith(_NPZ_MAGIC):
        raw = _read_npy(path, is_npz=magic.startswith(_NPZ_MAGIC))
    else:
        raw = _read_depth_image(path)
    raw = np.asarray(raw)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if raw.ndim != 2:
        raise InputError(f"{path}: expected a single-channel (H, W) depth map, got {raw.shape}")
    if raw.size == 0:
        raise InputError(f"{path}: depth has zero size ({raw.shape[1]}x{raw.shape[0]})")
    if raw.dtype == np.bool_ or not (np.issubdtype(raw.dtype, np.integer) or raw.dtype.kind == "f"):
        raise InputError(f"{path}: depth must hold numbers, got dtype {raw.dtype}")
    return raw


def load_user_depth(
    path: str | Path,
    image_size: tuple[int, int],
    depth_scale: float = 1000.0,
    invalid_value: float = 0.0,
) -> LoadedDepth:
    """A depth file as metres for an image of ``image_size`` (w, h).

    Formats: 16-bit PNG / TIFF, EXR (channel Z, depth, Y or R, else the only one), NPY / NPZ
    ((H, W) or (H, W, 1); never unpickled). Integer data (16-bit PNG, integer NPY) is divided
    by ``depth_scale``, stored units per metre (default 1000: millimetres); float data (EXR,
    float NPY / TIFF) is taken as metres and ``depth_scale`` does not apply to it (a note
    flags a median depth outside 1 cm .. 200 m, the sign of a unit mistake). Pixels whose stored value equals
    ``invalid_value``, NaN, inf or <= 0 become 0. A depth map at the image's original size
    (before :func:`load_image` downscaled it) is resized with nearest-neighbour sampling.
    """
    path = Path(path)
    image_size = (int(image_size[0]), int(image_size[1]))
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise InputError(f"--depth-scale must be a positive number, got {depth_scale}")
    raw = read_depth_array(path)
    file_size = (raw.shape[1], raw.shape[0])
    notes: list[str] = []
    resize = _fit_size(path, "depth", file_size, image_size)
    is_integer = np.issubdtype(raw.dtype, np.integer)
    scale = float(depth_scale) if is_integer else 1.0
    values = raw.astype(np.float64)
    invalid = ~np.isfinite(values) | (values == invalid_value) | (values <= 0)
    depth = np.where(invalid, 0.0, values / scale).astype(np.float32)
    if resize:
        depth = _resize_nearest(depth, image_size)
        notes.append(
            f"depth resized from {_size_str(file_size)} to {_size_str(image_size)} (nearest)"
        )
    invalid_count = int(np.count_nonzero(depth <= 0))
    if invalid_count == depth.size:
        raise InputError(
            f"{path}: no valid depth (every pixel is NaN, inf, <= 0 or equal to"
            f" invalid_value={invalid_value:g})"
        )
    invalid_fraction = invalid_count / depth.size
    if invalid_fraction > 0.5:
        notes.append(f"{invalid_fraction:.0%} of depth pixels are invalid")
    median = float(np.median(depth[depth > 0]))
    if not 0.01 <= median <= 200.0:
        notes.append(
            f"median depth is {median:g} m: check the units (integer depth is divided by"
            f" depth_scale={depth_scale:g}; float depth is taken as metres)"
        )
    return LoadedDepth(depth, invalid_count, invalid_fraction, file_size, notes)


# ----------------------------------------------------------------------------- masks


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _label_from_stem(stem: str) -> str:
    label = re.sub(r"^\d+[_-]", "", stem).replace("_", " ").strip()
    return "object" if not label or label.isdigit() else label


def _label_array(path: Path, image) -> np.ndarray:
    mode = image.mode
    if mode in ("1", "L", "P", "I") or mode.startswith("I;16"):
        return np.asarray(image).astype(np.int64)
    if mode in ("LA", "La"):
        return np.asarray(image.getchannel(0)).astype(np.int64)
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image)[..., :3]
        if np.all(rgb == rgb[..., :1]):  # grey values stored as RGB
            return rgb[..., 0].astype(np.int64)
    raise InputError(
        f"{path}: label image has mode {mode}; expected an 8- or 16-bit single-channel PNG of"
        " instance ids (0 = background)"
    )


def _png_metadata(path: Path, image, notes: list[str]) -> dict[int, dict]:
    text = getattr(image, "text", {}) or {}
    if _LABEL_PNG_KEY not in text:
        return {}
    try:
        payload = json.loads(text[_LABEL_PNG_KEY])
        if payload.get("schema") != _LABEL_PNG_SCHEMA:
            raise ValueError(f"schema {payload.get('schema')!r}")
        return {int(obj["id"]): obj for obj in payload["objects"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        notes.append(f"{path}: label metadata ignored ({exc})")
        return {}


def _masks_from_label_png(path: Path, image_size, notes: list[str]) -> Masks:
    image = _open_decoded(path, "a label image")
    with image:
        labels = _label_array(path, image)
        metadata = _png_metadata(path, image, notes)
    if _fit_size(path, "label image", (labels.shape[1], labels.shape[0]), image_size):
        labels = _resize_nearest(labels.astype(np.int32), image_size).astype(np.int64)
        notes.append(f"{path}: resized to {_size_str(image_size)} (nearest)")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if len(ids) > _MAX_LABELS:
        raise InputError(
            f"{path}: {len(ids)} distinct values; expected an instance-label image"
            f" (0 = background, at most {_MAX_LABELS} objects)"
        )
    masks = labels[None] == ids[:, None, None]
    names = [str(metadata.get(int(i), {}).get("label", "object")) for i in ids]
    scores = [metadata.get(int(i), {}).get("score") for i in ids]
    return Masks(masks, names, scores)


def _mask_from_image(path: Path, image) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        if rgba[..., 3].min() < 255:  # a cut-out: the alpha channel is the mask
            return rgba[..., 3] > 0
        return np.any(rgba[..., :3] > 0, axis=-1)
    values = np.asarray(image)
    return np.any(values > 0, axis=-1) if values.ndim == 3 else values > 0


def _masks_from_folder(folder: Path, image_size, notes: list[str]) -> Masks:
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise InputError(f"{folder}: no .png mask files in this folder")
    masks, labels = [], []
    for file in files:
        image = _open_decoded(file, "a mask image")
        with image:
            mask = _mask_from_image(file, image)
        if _fit_size(file, "mask", (mask.shape[1], mask.shape[0]), image_size):
            mask = _resize_nearest(mask, image_size)
        if not mask.any():
            notes.append(f"{file}: empty mask, dropped")
            continue
        masks.append(mask)
        labels.append(_label_from_stem(file.stem))
    if not masks:
        return Masks.empty(image_size[1], image_size[0])
    return Masks(np.stack(masks), labels)


def _coco_id(value):
    """An annotation / image / category id usable as a key (int or str), else None."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _coco_list(path: Path, payload: dict, key: str) -> list:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{path}: '{key}' must be a list of objects")
    return [item for item in value if isinstance(item, dict)]


def _coco_annotations(path: Path, payload) -> tuple[list, dict, dict]:
    if isinstance(payload, list):
        return payload, {}, {}
    if isinstance(payload, dict) and "annotations" in payload:
        categories = {
            _coco_id(c["id"]): str(c["name"])
            for c in _coco_list(path, payload, "categories")
            if _coco_id(c.get("id")) is not None and "name" in c
        }
        images = {
            _coco_id(im["id"]): im
            for im in _coco_list(path, payload, "images")
            if _coco_id(im.get("id")) is not None
        }
        return payload["annotations"], categories, images
    if isinstance(payload, dict) and "segmentation" in payload:
        return [payload], {}, {}
    raise InputError(f"{path}: expected COCO annotations (a list, or an object with 'annotations')")


def _unusable(where: str, detail: str) -> InputError:
    return InputError(f"{where}: unusable segmentation ({detail})")


def _whole(value) -> int | None:
    """``value`` as an int if it is a whole JSON number (4 or 4.0; not true/false), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def _finite_float(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return value if math.isfinite(value) else None


def _coco_size(path: Path, index: int, height, width, image_size) -> tuple[int, int]:
    """(h, w) of an annotation's mask, checked against the image before anything is decoded."""
    where = f"{path}: annotation {index}"
    h, w = _whole(height), _whole(width)
    if h is None or w is None or h < 1 or w < 1:
        raise _unusable(where, f"size {height!r}x{width!r} (height x width) is not 2 integers > 0")
    if h * w > _MAX_MASK_PIXELS:
        raise _unusable(where, f"size {h}x{w} (height x width) exceeds {_MAX_MASK_PIXELS} pixels")
    _fit_size(path, f"annotation {index}", (w, h), image_size)  # raises if the sizes disagree
    return h, w


def _rle_counts_from_string(where: str, text: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string, decoded here so no library sees bad input.

    Each count is stored in 5-bit groups (least significant first) as characters '0' + value,
    bit 0x20 meaning "another group follows" and bit 0x10 of the last group the sign; from the
    fourth count on, the stored value is the difference to the count two places before.
    """
    counts: list[int] = []
    position, length = 0, len(text)
    while position < length:
        value, shift, more = 0, 0, True
        while more:
            if position >= length:
                raise _unusable(where, "compressed RLE 'counts' ends inside a number")
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                raise _unusable(
                    where,
                    f"compressed RLE 'counts' holds {text[position]!r}; expected '0' to 'o'",
                )
            if shift > 60:
                raise _unusable(where, "compressed RLE 'counts' holds a number too large")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift  # negative: sign-extend the last group
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle_counts(where: str, counts, h: int, w: int) -> list[int]:
    """The run lengths of an RLE (a list, or a compressed string), summing to h * w."""
    if isinstance(counts, str):
        values = _rle_counts_from_string(where, counts)
    elif isinstance(counts, list):
        values = [_whole(v) for v in counts]
        if any(v is None for v in values):
            raise _unusable(where, "RLE 'counts' must hold whole numbers")
    else:
        raise _unusable(
            where,
            "RLE 'counts' must be a list of run lengths or a compressed string, got"
            f" {type(counts).__name__}",
        )
    if any(v < 0 for v in values):
        raise _unusable(where, "RLE 'counts' holds a negative run length")
    if sum(values) != h * w:
        raise _unusable(
            where,
            f"RLE run lengths sum to {sum(values)}; expected {h * w} = height {h} x width {w}",
        )
    return values


def _decode_rle(values: list[int], h: int, w: int) -> np.ndarray:
    """(h, w) bool mask of checked run lengths (column-major, starting with background)."""
    flat = np.repeat(np.arange(len(values)) % 2 == 1, np.asarray(values, dtype=np.int64))
    return np.ascontiguousarray(flat.reshape(w, h).T)


def _polygons(where: str, seg: list, h: int, w: int) -> list[list[float]]:
    """Polygons [x0, y0, x1, y1, ...] of finite numbers near the image (|x| <= 4 w, |y| <= 4 h)."""
    polygons = []
    limit_x, limit_y = _POLYGON_REACH * w, _POLYGON_REACH * h
    for number, poly in enumerate(seg):
        if not isinstance(poly, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
        ):
            raise _unusable(where, f"polygon {number} must be a list of numbers x0, y0, x1, ...")
        if len(poly) < 6 or len(poly) % 2:
            raise _unusable(
                where, f"polygon {number} has {len(poly)} numbers; expected 3 or more x, y pairs"
            )
        try:
            coords = np.asarray(poly, dtype=np.float64)
        except OverflowError:  # an integer beyond the float range
            coords = np.array([np.inf])
        if not np.isfinite(coords).all():
            raise _unusable(where, f"polygon {number} holds NaN or infinite coordinates")
        if np.abs(coords[0::2]).max() > limit_x or np.abs(coords[1::2]).max() > limit_y:
            raise _unusable(
                where,
                f"polygon {number} has coordinates beyond |x| <= {limit_x}, |y| <= {limit_y}:"
                f" {_POLYGON_REACH} times the {w}x{h} image",
            )
        polygons.append(coords.tolist())
    return polygons


def _coco_mask(path: Path, index: int, ann: dict, images: dict, image_size) -> np.ndarray:
    """The (h, w) mask of one annotation; every value is checked before pycocotools sees it."""
    where = f"{path}: annotation {index}"
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        size = seg.get("size")
        if not isinstance(size, list) or len(size) != 2:
            raise _unusable(where, "RLE 'size' must be [height, width]")
        h, w = _coco_size(path, index, size[0], size[1], image_size)
        if "counts" not in seg:
            raise _unusable(where, "RLE without 'counts'")
        return _decode_rle(_rle_counts(where, seg["counts"], h, w), h, w)
    if not (isinstance(seg, list) and seg):
        raise _unusable(where, "'segmentation' must be an RLE object or a list of polygons")
    image_info = images.get(_coco_id(ann.get("image_id")), {})
    h, w = _coco_size(
        path,
        index,
        image_info.get("height", image_size[1]),
        image_info.get("width", image_size[0]),
        image_size,
    )
    polygons = _polygons(where, seg, h, w)
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading COCO polygons needs pycocotools (pip install pycocotools)"
        ) from None
    with warnings.catch_warnings():  # pycocotools' numpy 2 copy= notice
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
        return mask_utils.decode(rle).astype(bool)


def _masks_from_coco(path: Path, image_size, notes: list[str]) -> Masks:
    try:
        payload = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge integers, deep nesting
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    annotations, categories, images = _coco_annotations(path, payload)
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise InputError(f"{path}: 'annotations' must be a list of objects")
    for index, ann in enumerate(annotations):
        if "image_id" in ann and _coco_id(ann["image_id"]) is None:
            raise InputError(f"{path}: annotation {index}: 'image_id' must be an integer or text")
    image_ids = {a["image_id"] for a in annotations if "image_id" in a}
    if len(image_ids) > 1:
        raise InputError(
            f"{path}: annotations of {len(image_ids)} images; expected those of one image only"
        )
    w, h = image_size
    masks, labels, scores = [], [], []
    for index, ann in enumerate(annotations):
        mask = _coco_mask(path, index, ann, images, image_size)
        if (mask.shape[1], mask.shape[0]) != (w, h):  # the image's original size (checked)
            mask = _resize_nearest(mask, image_size)
        label = ann.get("label")
        if not isinstance(label, str):
            label = categories.get(_coco_id(ann.get("category_id")), "object")
        if not mask.any():
            notes.append(f"{path}: annotation {index} ({label}): empty mask, dropped")
            continue
        masks.append(mask)
        labels.append(label)
        scores.append(_finite_float(ann.get("score")))
    if not masks:
        return Masks.empty(h, w)
    return Masks(np.stack(masks), labels, scores)


def read_user_masks(path: str | Path, image_size: tuple[int, int]) -> tuple[Masks, list[str]]:
    """As :func:`load_user_masks`, returning the notes instead of warning them."""
    path = Path(path)
    image_size = (int(image_size[0]), int(image_size[1]))
    notes: list[str] = []
    if not path.exists():
        raise InputError(f"{path}: masks not found (expected a label PNG, a folder or COCO JSON)")
    if path.is_dir():
        masks = _masks_from_folder(path, image_size, notes)
    elif path.suffix.lower() == ".json":
        _check_file(path, "a COCO JSON")
        masks = _masks_from_coco(path, image_size, notes)
    else:
        masks = _masks_from_label_png(path, image_size, notes)
    if not len(masks):
        notes.append(f"{path}: no object masks found")
    return masks, notes


def load_user_masks(path: str | Path, image_size: tuple[int, int]) -> Masks:
    """Instance masks for an image of ``image_size`` (w, h) from a user file or folder.

    - a label PNG (8- or 16-bit): 0 = background, each other value one object, in
      increasing value order; labels from :func:`write_label_png` metadata, else "object";
    - a folder of per-object PNGs, natural name order, non-zero (or alpha > 0 for cut-outs)
      = mask; label from the stem without an "NN_" prefix ("00_dining_table" -> "dining
      table"), "object" when nothing is left;
    - COCO JSON (a list of annotations or {"annotations", "categories"}): RLE (compressed or
      not) or polygons; label from a "label" key or the category name; "score" kept.

    Masks may overlap. Empty masks are dropped with a warning; other notes (resizing from the
    image's original size) are warned too (use :func:`read_user_masks` to collect them).
    """
    masks, notes = read_user_masks(path, image_size)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return masks


def write_label_png(masks: Masks | np.ndarray, path: str | Path) -> list[str]:
    """Save masks as a label PNG that :func:`load_user_masks` reads back (labels, scores too).

    ``masks``: :class:`Masks`, or an (N, H, W) bool array (labels "object"). Object i gets id
    i + 1 (8-bit up to 255 objects, else 16-bit). A label image holds one id
    per pixel, so where masks overlap the later one wins; returns notes on what was lost.
    """
    from PIL import Image, PngImagePlugin

    if not isinstance(masks, Masks):
        masks = Masks(masks, ["object"] * len(masks))
    count, height, width = masks.masks.shape
    if count > 65535:
        raise InputError(f"{path}: {count} masks do not fit a 16-bit label PNG")
    dtype = np.uint8 if count <= 255 else np.uint16
    label = np.zeros((height, width), dtype=dtype)
    for index, mask in enumerate(masks.masks):
        label[mask] = index + 1
    notes = []
    overlap = int(np.count_nonzero(masks.masks.sum(axis=0) > 1)) if count else 0
    if overlap:
        notes.append(f"{path}: {overlap} pixels covered by several masks keep the last one")
    present = set(np.unique(label).tolist())
    for index in range(count):
        if masks.masks[index].any() and index + 1 not in present:
            notes.append(f"{path}: object {index} ({masks.labels[index]}) is hidden by later masks")
    objects = [
        {"id": index + 1, "label": masks.labels[index], "score": masks.scores[index]}
        for index in range(count)
    ]
    info = PngImagePlugin.PngInfo()
    info.add_text(_LABEL_PNG_KEY, json.dumps({"schema": _LABEL_PNG_SCHEMA, "objects": objects}))
    buffer = io.BytesIO()
    Image.fromarray(label).save(buffer, format="PNG", pnginfo=info, compress_level=6)
    atomic_write_bytes(path, buffer.getvalue())
    return notes


# ----------------------------------------------------------------------------- backends


def _image_size(image: np.ndarray) -> tuple[int, int]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image.shape[1], image.shape[0]


class UserMasks:
    """Segmenter that returns the masks the user supplied (see :func:`load_user_masks`).

    The prompt is ignored: every supplied mask is returned.
    """

    name = "user"
    licence = "user-supplied data"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: masks not found")

    def segment(self, image: np.ndarray, prompt: str | None = None) -> Masks:
        return load_user_masks(self.path, _image_size(image))


class UserDepth:
    """Depth estimator that returns the depth map and intrinsics the user supplied (RGB-D).

    ``K`` ("fx,fy,cx,cy") is in pixels of ``intrinsics_size`` (w, h): by default the depth
    file's own size, which is the photo's original size for an aligned RGB-D frame; the
    pipeline passes ``LoadedImage.original_size`` when it downscaled the photo. ``fov`` is
    the horizontal field of view in degrees. Intrinsics passed to :meth:`estimate` (already
    in the image's pixels) take precedence. ``depth_scale`` and ``invalid_value`` as in
    :func:`load_user_depth`; its notes are issued as warnings.
    """

    name = "user"
    licence = "user-supplied data"

    def __init__(
        self,
        path: str | Path,
        K: str | None = None,
        fov: float | None = None,
        depth_scale: float = 1000.0,
        invalid_value: float = 0.0,
        intrinsics_size: tuple[int, int] | None = None,
    ):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: depth file not found")
        if K is not None and fov is not None:
            raise InputError("--K and --fov both given: pass one of them")
        if K is not None:
            _parse_k_numbers(K)
        if fov is not None:
            _check_fov(fov)
        self.K, self.fov = K, fov
        self.depth_scale, self.invalid_value = depth_scale, invalid_value
        self.intrinsics_size = intrinsics_size

    def estimate(self, image: np.ndarray, K: np.ndarray | None = None) -> PointMap:
        size = _image_size(image)
        loaded = load_user_depth(self.path, size, self.depth_scale, self.invalid_value)
        for note in loaded.notes:
            warnings.warn(f"{self.path}: {note}", stacklevel=2)
        if K is None:
            K = self._intrinsics(size, loaded.file_size)
        return PointMap(loaded.depth, K)

    def _intrinsics(self, size: tuple[int, int], file_size: tuple[int, int]) -> np.ndarray:
        if self.fov is not None:
            return parse_intrinsics(None, self.fov, *size)
        if self.K is None:
            raise InputError(
                f"{self.path}: user depth needs intrinsics: pass --K fx,fy,cx,cy or --fov DEGREES"
            )
        given_size = tuple(self.intrinsics_size or file_size)
        K = parse_intrinsics(self.K, None, *given_size)
        return K if given_size == size else scale_intrinsics(K, given_size, size)
