"""User depth maps (16-bit PNG / TIFF, EXR, NPY / NPZ) read as metres for the image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError, MissingDependencyError
from .images import _check_file, _fit_size, _open_decoded, _resize_nearest, _size_str

_NPY_MAGIC = b"\x93NUMPY"
_NPZ_MAGIC = b"PK\x03\x04"
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_DEPTH_CHANNELS = ("z", "depth", "y", "r")  # EXR channel preference (last name component)


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
