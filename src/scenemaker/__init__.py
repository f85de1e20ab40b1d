"""SceneMaker: open-set 3D scene generation from one image.

Importing this package is cheap: heavy backends (torch models, diffusers, transformers,
OpenGL, bpy, ray) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"
