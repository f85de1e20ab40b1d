"""Settings of a dataset-generation run (shared by the driver and the scene writer)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ..sources import SPLITS
from .cameras import ViewConfig
from .layout import LayoutConfig

GENERATE_SCHEMA = "scenemaker.generate/1"
MANIFEST_SCHEMA = "scenemaker.dataset/1"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "all": 3}
SCENE_DIR = re.compile(r"^scene_(\d{6})$")
RENDERERS = ("fast", "cycles")
CYCLES_KEYS = ("renderer", "samples", "hdri")


class GenerationError(RuntimeError):
    """Settings or inputs with which no dataset can be generated."""


@dataclass
class GenerateConfig:
    objects: str = "procedural"
    """Object source: procedural | pybullet | objaverse | objaverse:DIR | a folder of meshes."""
    split: str = "train"
    """Which objects to use: train | val | test (disjoint by object) | all."""
    seed: int = 0
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    views: ViewConfig = field(default_factory=ViewConfig)
    surface_samples: int = 20480
    """Canonical surface samples (with normals) stored per object (the paper: 20,480)."""
    max_partial_points: int = 2048
    """Observed points stored per object and view (a random subset of its visible pixels)."""
    max_size_ratio: float = 3.0
    """Objects of one scene differ in plausible size by at most this factor."""
    renderer: str = "fast"
    """fast (moderngl rasteriser) | cycles (Blender's path tracer, synth/cycles.py)."""
    samples: int = 16
    """Cycles samples per pixel (renderer cycles only)."""
    hdri: str | None = None
    """Folder of HDRIs (.exr, .hdr) lighting Cycles scenes; None: Blender's bundled ones."""

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.renderer == "fast":  # the generate.json of fast runs stays as before
            for key in CYCLES_KEYS:
                d.pop(key)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GenerateConfig:
        d = dict(d)
        d["layout"] = LayoutConfig(**d.get("layout", {}))
        views = dict(d.get("views", {}))
        for key in ("fov_deg", "elevation_deg", "distance_factor"):
            if key in views:
                views[key] = tuple(views[key])
        d["views"] = ViewConfig(**views)
        return cls(**d)

    def validate(self) -> None:
        if self.split not in (*SPLITS, "all"):
            raise GenerationError(f"split must be one of {(*SPLITS, 'all')}, got {self.split!r}")
        if self.seed < 0:
            raise GenerationError(f"seed must be >= 0, got {self.seed}")
        self.layout.validate()
        self.views.validate()
        if self.renderer not in RENDERERS:
            raise GenerationError(f"renderer must be one of {RENDERERS}, got {self.renderer!r}")
        if self.samples < 1:
            raise GenerationError(f"samples must be >= 1, got {self.samples}")
