"""The ``user`` segmenter and depth backends: masks and depth the user supplied."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import InputError
from ..base import Masks, PointMap
from .depth import load_user_depth
from .intrinsics import _check_fov, _parse_k_numbers, parse_intrinsics, scale_intrinsics
from .masks import load_user_masks


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
