"""Perception stage: typed outputs and the two protocols every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Masks:
    """Visible instance masks of one image, one per object."""

    masks: np.ndarray  # (N, H, W) bool, visible (modal) masks
    labels: list[str]  # per object; "object" when unknown
    scores: list[float | None] = field(default_factory=list)  # detector confidence, if any

    def __post_init__(self):
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim == 2 and self.masks.size == 0:
            self.masks = self.masks.reshape(0, *self.masks.shape)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {self.masks.shape}")
        if len(self.labels) != len(self.masks):
            raise ValueError(f"{len(self.labels)} labels for {len(self.masks)} masks")
        if not self.scores:
            self.scores = [None] * len(self.masks)
        if len(self.scores) != len(self.masks):
            raise ValueError(f"{len(self.scores)} scores for {len(self.masks)} masks")

    def __len__(self) -> int:
        return len(self.masks)

    @classmethod
    def empty(cls, height: int, width: int) -> Masks:
        return cls(np.zeros((0, height, width), dtype=bool), [], [])


@dataclass
class PointMap:
    """Metric depth with the intrinsics it was estimated or given with (OpenCV camera)."""

    depth: np.ndarray  # (H, W) float32 metres along camera z; 0 = invalid
    K: np.ndarray  # (3, 3) pixels

    def __post_init__(self):
        depth = np.asarray(self.depth, dtype=np.float32)
        if depth.ndim != 2:
            raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
        self.depth = depth
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.K.shape != (3, 3) or not np.all(np.isfinite(self.K)) or self.K[0, 0] <= 0:
            raise ValueError(f"K must be a finite (3, 3) intrinsics matrix, got {self.K.tolist()}")

    @property
    def valid(self) -> np.ndarray:
        return self.depth > 0

    @property
    def points(self) -> np.ndarray:
        """(H, W, 3) camera-frame points in metres (0 where invalid)."""
        h, w = self.depth.shape
        u, v = np.meshgrid(np.arange(w), np.arange(h))  # as synth.images.backproject
        x = (u - self.K[0, 2]) / self.K[0, 0] * self.depth
        y = (v - self.K[1, 2]) / self.K[1, 1] * self.depth
        return np.stack([x, y, self.depth], -1).astype(np.float32)


class Segmenter(Protocol):
    name: str

    def segment(self, image: np.ndarray, prompt: str | None = None) -> Masks:
        """``image``: (H, W, 3) uint8 RGB. Returns the visible mask of every object found."""
        ...


class DepthEstimator(Protocol):
    name: str

    def estimate(self, image: np.ndarray, K: np.ndarray | None = None) -> PointMap:
        """``image``: (H, W, 3) uint8 RGB; ``K`` known intrinsics (pixels) or None to estimate."""
        ...
