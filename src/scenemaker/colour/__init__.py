"""Colour on every mesh: the photo's colours baked into a UV texture of each placed mesh
(:func:`colour_scene`, called by the pipeline's export), and unlit renders of the result
(:func:`render_colours`) to measure it against the photo."""

from .atlas import Atlas, AtlasError, build_atlas
from .bake import Amodal, ColourSkip, PhotoObject, bake_texture, has_texture
from .outputs import colour_scene, load_masks
from .raster import Raster, project, rasterize
from .render import psnr, render_colours, texture_image

__all__ = [
    "Amodal",
    "Atlas",
    "AtlasError",
    "ColourSkip",
    "PhotoObject",
    "Raster",
    "bake_texture",
    "build_atlas",
    "colour_scene",
    "has_texture",
    "load_masks",
    "project",
    "psnr",
    "rasterize",
    "render_colours",
    "texture_image",
]
