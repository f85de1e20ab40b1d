"""Camera sampling on the upper hemisphere around a scene."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scene import Camera

MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 32, 4096
"""Rendered image sides, pixels (larger framebuffers fail or exhaust memory)."""


@dataclass
class ViewConfig:
    views: int = 20
    """Views kept per scene (the paper: 20)."""
    width: int = 256
    height: int = 256
    fov_deg: tuple[float, float] = (40.0, 70.0)
    """Vertical field of view range, degrees."""
    elevation_deg: tuple[float, float] = (5.0, 50.0)
    """Camera elevation above the floor seen from the scene centre, degrees. Low elevations
    are drawn more often (they give the strongest occlusion)."""
    distance_factor: tuple[float, float] = (0.65, 1.3)
    """Distance as a multiple of the one that just fits the scene's bounding sphere."""
    min_visible_pixels: int | None = None
    """A view is kept only if every object shows at least this many pixels; None: 20 px at
    256x256, scaled with the image area (at least 4)."""
    occlusion_seeking: float = 0.5
    """Share of candidate views aimed along the line through two objects (one hides the
    other); the rest have a uniform azimuth."""
    max_candidates_per_view: int = 15
    """Candidates tried per kept view before the scene is re-drawn."""

    def visible_threshold(self) -> int:
        if self.min_visible_pixels is not None:
            return self.min_visible_pixels
        return max(4, round(20 * self.width * self.height / 256**2))

    def validate(self) -> None:
        if self.views < 1:
            raise ValueError(f"views must be >= 1, got {self.views}")
        sides = (MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
        if not all(sides[0] <= side <= sides[1] for side in (self.width, self.height)):
            raise ValueError(
                f"image size must be {sides[0]}..{sides[1]} pixels a side,"
                f" got {self.width}x{self.height}"
            )
        lo, hi = self.fov_deg
        if not 1.0 <= lo <= hi < 179.0:
            raise ValueError(f"fov_deg must satisfy 1 <= lo <= hi < 179, got {self.fov_deg}")


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World-to-camera 4x4 (OpenCV axes: x right, y down, z forward) looking from eye to target."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-8:  # looking straight down: any right vector will do
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    w2c = np.eye(4)
    w2c[:3, :3] = rotation
    w2c[:3, 3] = -rotation @ eye
    return w2c


def sample_camera(
    center: np.ndarray,
    radius: float,
    rng: np.random.Generator,
    config: ViewConfig,
    towards_xz: np.ndarray | None = None,
) -> Camera:
    """One random camera looking at a scene with bounding sphere (center, radius).

    ``towards_xz``: if given, a horizontal direction (x, z) from the scene towards the camera
    (jittered by ~15 degrees), e.g. from one object through another so the second hides the
    first; otherwise the azimuth is uniform.
    """
    fov = np.radians(rng.uniform(*config.fov_deg))
    lo, hi = config.elevation_deg
    elevation = np.radians(lo + (hi - lo) * rng.uniform() ** 2)
    if towards_xz is not None:
        azimuth = np.arctan2(towards_xz[0], towards_xz[1]) + rng.normal(0.0, np.radians(15))
    else:
        azimuth = rng.uniform(0.0, 2.0 * np.pi)
    half_fov = 0.5 * fov * min(1.0, config.width / config.height)
    distance = radius / np.sin(half_fov) * rng.uniform(*config.distance_factor)
    direction = np.array(
        [
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
            np.cos(elevation) * np.cos(azimuth),
        ]
    )
    target = np.asarray(center, float) + rng.normal(0.0, 0.1 * radius, 3) * np.array([1, 0.3, 1])
    eye = target + distance * direction
    eye[1] = max(eye[1], 0.05)  # never below the floor
    return Camera.from_fov(fov, config.width, config.height, look_at(eye, target))
