"""Offscreen rendering shared by data generation (``synth``) and inference (``refine``).

* :mod:`.scene`: whole scenes (RGB, depth, instance ids, amodal masks) for the dataset writer,
  de-occlusion data and re-rendering of outputs;
* :mod:`.candidates`: many poses of one mesh in one draw (depth only, a crop of the observed
  camera), for render-and-compare pose scoring.

Importing this package does not import moderngl; a context is created on first use.
"""

from .gl import RenderUnavailableError, create_context

__all__ = ["RenderUnavailableError", "create_context"]
