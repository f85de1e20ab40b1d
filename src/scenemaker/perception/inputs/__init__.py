"""User-supplied inputs of the perception stage: the photo, depth, intrinsics and masks.

Every loader checks at the boundary and raises :class:`~scenemaker.errors.InputError` with one
line that names the file and what was expected. Pixel conventions follow ARCHITECTURE.md:
pixel centres at integer coordinates, depth in metres along the camera z axis (0 = invalid),
instance ids with 0 = background.

Images larger than ``max_side`` are downscaled by :func:`load_image`. Depth and masks given at
the original (pre-downscale) size are accepted and resized with nearest-neighbour sampling,
and intrinsics given for the original size are mapped with :func:`scale_intrinsics`.

The package re-exports the public loaders and the ``user`` backends.
"""

from .backends import UserDepth, UserMasks
from .depth import load_user_depth
from .images import load_image
from .intrinsics import parse_intrinsics, scale_intrinsics
from .label_png import write_label_png
from .masks import load_user_masks, read_user_masks

__all__ = [
    "UserDepth",
    "UserMasks",
    "load_image",
    "load_user_depth",
    "load_user_masks",
    "parse_intrinsics",
    "read_user_masks",
    "scale_intrinsics",
    "write_label_png",
]
