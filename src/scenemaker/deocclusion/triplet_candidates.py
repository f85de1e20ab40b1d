"""Candidate de-occlusion triplets of one scene folder (written by ``scenemaker data
generate``): the scene with its masks and renders in a frame padded around the image (so
that objects cut by the image border are complete), and the planner that turns each object
view into a ``scene`` candidate or synthetic-mask candidates. Synthetic masks are drawn
deterministically for (seed, scene, view, object, mask type), so the writer redraws the
planner's own."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from . import masks
from .base import BOX_RATIO
from .flux import clean_label
from .masks import SYNTHETIC_TYPES
from .triplets import BIN_EDGES, BIN_LABELS, Triplet

FULLY_VISIBLE = 0.95  # visible fraction from which an object view gets synthetic masks
MIN_TARGET_PIXELS = 16
SYNTHETIC_RANGE = (0.1, 0.7)
SYNTHETIC_ATTEMPTS = 12


class Renderers:
    """The one live SceneRenderer, re-created when the image size changes: each renderer owns
    an OpenGL context, and moderngl draws into whichever context was made current last."""

    def __init__(self):
        self._size, self._renderer = None, None

    def get(self, width: int, height: int):
        from ..render.scene import SceneRenderer

        if self._size != (width, height):
            self.release()
            self._size, self._renderer = (width, height), SceneRenderer(width, height)
        return self._renderer

    def release(self) -> None:
        if self._renderer is not None:
            self._renderer.release()
        self._size, self._renderer = None, None


class SourceScene:
    """One scene folder, with the masks and renders its triplets need (cached)."""

    def __init__(self, folder: Path, key: str, renderers: Renderers):
        from ..synth.dataset import DatasetScene

        self.key, self.folder, self.renderers = key, folder, renderers
        self.data = DatasetScene(folder)
        self.payload = self.data.payload
        self.objects = self.payload["objects"]
        camera = self.payload["views"][0]["camera"]
        self.width, self.height = int(camera["width"]), int(camera["height"])
        # the crop box overhangs the image by at most half its side (a thin object at the edge)
        self.pad = math.ceil(max(self.width, self.height) / (2 * BOX_RATIO)) + 2
        self.stored_amodal = self.data.amodal_masks()  # (views, objects, H, W)
        self.light = stored_light(self.payload, folder)
        self._views, self._padded = {}, {}

    def view(self, index: int):
        if index not in self._views:
            self._views[index] = self.data.view(index)
        return self._views[index]

    def padded_camera(self, index: int):
        from ..scene import Camera

        camera = self.view(index).camera
        K = camera.K.copy()
        K[0, 2] += self.pad
        K[1, 2] += self.pad
        size = (self.width + 2 * self.pad, self.height + 2 * self.pad)
        return Camera(K, camera.world_to_camera, *size)

    def render_objects(self, only: int | None = None, grey: bool = False):
        from ..render.materials import render_object
        from ..render.scene import RenderObject

        found = []
        for k, obj in enumerate(self.data.scene.objects):
            if only is not None and k != only:
                continue
            if obj.color is None and not grey:
                raise ValueError(f"{self.folder}: object {obj.instance_id} has no colour")
            vertices = obj.pose.apply(np.asarray(obj.mesh.vertices))
            if grey:
                found.append(RenderObject(vertices, np.asarray(obj.mesh.faces), obj.instance_id,
                                          (0.5, 0.5, 0.5)))  # fmt: skip
            else:  # as in the views: the mesh's own colours (procedural materials, textures)
                found.append(render_object(vertices, obj.mesh, obj.instance_id, tuple(obj.color)))
        return found

    def amodal(self, view: int, k: int) -> np.ndarray:
        """Object k's complete mask in the padded frame: the stored mask, or a padded render
        when the object reaches the image border (the stored mask stops there)."""
        stored = self.stored_amodal[view, k]
        if not (stored[0].any() or stored[-1].any() or stored[:, 0].any() or stored[:, -1].any()):
            return np.pad(stored, self.pad)
        if view not in self._padded:
            camera = self.padded_camera(view)
            renderer = self.renderers.get(camera.width, camera.height)
            renderer.set_scene(self.render_objects(grey=True), floor=False)
            self._padded[view] = renderer.render(camera).amodal
        return self._padded[view][k]

    def silhouettes(self) -> list[np.ndarray]:
        """Cut-out shapes: every object's complete mask in every view of this scene (so a
        scene's triplets depend on that scene alone, whatever else is in the run)."""
        shapes = [
            masks.silhouette(m) for m in self.stored_amodal.reshape(-1, self.height, self.width)
        ]
        return [s for s in shapes if s is not None and s.sum() >= MIN_TARGET_PIXELS]


def _crop_occlusion(visible: np.ndarray, amodal_padded: np.ndarray, pad: int, size: int):
    """(1 - visible / amodal pixels in the crop, crop box) for a visible mask (image frame)."""
    box = masks.crop_box(visible)
    visible_crop = masks.warp_mask(visible, box, size)
    amodal_crop = masks.warp_mask(amodal_padded, masks.shift_box(box, pad), size) | visible_crop
    return float(1.0 - visible_crop.sum() / amodal_crop.sum()), box


def seeded_rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng(
        [seed, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys)]
    )


def draw_synthetic(scene: SourceScene, kind, view, k, visible, size, seed, silhouettes):
    """(occluder, crop occlusion) for one synthetic mask, or None after SYNTHETIC_ATTEMPTS.
    Deterministic for (seed, scene, view, object, kind): the writer redraws the planner's."""
    rng = seeded_rng(seed, scene.key, view, k, kind)
    amodal = scene.amodal(view, k)
    lo, hi = SYNTHETIC_RANGE
    for _ in range(SYNTHETIC_ATTEMPTS):
        target_bin = int(rng.integers(len(BIN_LABELS)))  # aim at every bin alike
        share = rng.uniform(max(lo, BIN_EDGES[target_bin]), min(hi, BIN_EDGES[target_bin + 1]))
        occluder = masks.synthetic_occluder(kind, visible, share, rng, silhouettes)
        remaining = visible & ~occluder
        if not remaining.any():
            continue
        occlusion, box = _crop_occlusion(remaining, amodal, scene.pad, size)
        if lo <= occlusion <= hi:
            return occluder, occlusion, box
    return None


def plan_scene(
    scene: SourceScene, mix: dict, size: int, seed: int
) -> tuple[list[Triplet], Counter]:
    found, skipped = [], Counter()
    synthetic = [t for t in SYNTHETIC_TYPES if mix[t] > 0]
    silhouettes = scene.silhouettes() if "cutout" in synthetic else []
    split = str(scene.payload.get("metadata", {}).get("split", ""))
    for v in range(scene.data.num_views):
        instance = scene.view(v).instance
        for k, obj in enumerate(scene.objects):
            iid = int(obj["instance_id"])
            visible = instance == iid
            if not visible.any():
                skipped["empty_visible"] += 1
                continue
            amodal = scene.amodal(v, k)
            if amodal.sum() < MIN_TARGET_PIXELS:
                skipped["target_too_small"] += 1
                continue
            if (
                visible[0].any()
                and visible[-1].any()
                and visible[:, 0].any()
                and visible[:, -1].any()
            ):
                skipped["touches_all_borders"] += 1
                continue
            label = clean_label(obj.get("label"))
            common = dict(scene=scene.key, scene_dir=str(scene.folder), source_split=split, view=v)
            common.update(instance_id=iid, label=label, label_cleaned=label != obj.get("label"))
            full = amodal.copy()
            full[scene.pad : scene.pad + scene.height, scene.pad : scene.pad + scene.width] |= (
                visible
            )
            if visible.sum() / full.sum() < FULLY_VISIBLE:
                if mix["scene"] <= 0:
                    continue
                occlusion, box = _crop_occlusion(visible, amodal, scene.pad, size)
                if occlusion >= BIN_EDGES[-1]:
                    skipped["occlusion_over_0.8"] += 1
                    continue
                found.append(Triplet(mask_type="scene", occlusion=occlusion, box=box, **common))
                continue
            for kind in synthetic:
                drawn = draw_synthetic(scene, kind, v, k, visible, size, seed, silhouettes)
                if drawn is None:
                    skipped["synthetic_failed"] += 1
                    continue
                found.append(Triplet(mask_type=kind, occlusion=drawn[1], box=drawn[2], **common))
    return found, skipped


def stored_light(payload: dict, folder: Path) -> tuple[float, float, float]:
    """The light direction the scene was rendered with: ``metadata.render.light_dir`` of
    scene.json, which the generator's writer stores (synth/writer.py)."""
    stored = (payload.get("metadata", {}).get("render") or {}).get("light_dir")
    if stored is None:
        raise ValueError(
            f"{folder}: scene.json has no metadata.render.light_dir (written before the "
            "generator recorded its light); regenerate the scenes with `scenemaker data generate`"
        )
    return tuple(float(v) for v in stored)
