"""Building and writing one scene: objects, layout, views, files (one per worker process).

A scene is written into a hidden temporary folder and renamed into place when complete, so
a reader never sees a half-written scene.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..geometry.camera import depth_to_uint16
from ..io_utils import atomic_write_bytes, atomic_write_json
from ..scene import ObjectInstance, Scene
from ..sources import MeshError, ObjectAsset, ObjectSource, get_source
from .cameras import sample_camera
from .images import encode_png
from .layout import LayoutError, sample_layout
from .settings import SPLIT_CODES, GenerateConfig, GenerationError


def safe_name(object_id: str) -> str:
    """A folder name for an object id (ids of folder sources are relative paths)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", object_id).strip("._") or "object"
    if clean != object_id:
        clean = f"{clean[:60]}-{hashlib.sha1(object_id.encode()).hexdigest()[:8]}"
    return clean


class SceneWriter:
    """Per-process state: the object source, an asset cache and the renderer."""

    def __init__(self, config: GenerateConfig, out: Path):
        from ..render.scene import SceneRenderer

        self.config = config
        self.out = out
        self.source: ObjectSource = get_source(config.objects)
        ids = self.source.all_ids() if config.split == "all" else self.source.ids(config.split)
        if not ids:
            raise GenerationError(
                f"object source {config.objects!r} has no objects in split {config.split!r}"
            )
        self.ids = ids
        self.cache: dict[str, ObjectAsset | None] = {}
        self.skipped: dict[str, str] = {}
        if config.renderer == "cycles":  # the paper's renderer, in Blender (synth/cycles.py)
            from .cycles import CyclesRenderer

            self.renderer = CyclesRenderer(
                config.views.width, config.views.height, config.samples, config.hdri
            )
        else:
            self.renderer = SceneRenderer(config.views.width, config.views.height)

    def asset(self, object_id: str) -> ObjectAsset | None:
        if object_id not in self.cache:
            try:
                asset = self.source.load(object_id)
                self._write_object_files(asset)
            except MeshError as exc:
                warnings.warn(f"skipping mesh: {exc}", stacklevel=2)
                self.skipped[object_id] = str(exc)
                asset = None
            self.cache[object_id] = asset
        return self.cache[object_id]

    def object_dir(self, asset: ObjectAsset) -> Path:
        return self.out / "objects" / safe_name(asset.source) / safe_name(asset.object_id)

    def _write_object_files(self, asset: ObjectAsset) -> None:
        from ..geometry.sampling import sample_surface

        folder = self.object_dir(asset)
        if (folder / "samples.npz").exists() and (folder / "mesh.ply").exists():
            return
        seed = int.from_bytes(hashlib.sha1(asset.object_id.encode()).digest()[:4], "little")
        points, normals = sample_surface(asset.mesh, self.config.surface_samples, seed=seed)
        atomic_write_bytes(folder / "mesh.ply", asset.mesh.export(file_type="ply"))
        atomic_write_bytes(
            folder / "samples.npz",
            _npz_bytes(points=points.astype(np.float16), normals=normals.astype(np.float16)),
        )

    def pick_assets(self, n: int, rng: np.random.Generator) -> list[ObjectAsset]:
        """One main object, then others of compatible plausible size (no repeats)."""
        chosen: list[ObjectAsset] = []
        for _ in range(50 * n + 50):
            if len(chosen) == n:
                break
            asset = self.asset(self.ids[int(rng.integers(len(self.ids)))])
            if asset is None or any(a.object_id == asset.object_id for a in chosen):
                continue
            if chosen:
                main_lo, main_hi = chosen[0].size_range
                lo, hi = asset.size_range
                if max(lo, main_lo) / min(hi, main_hi) > self.config.max_size_ratio:
                    continue
            chosen.append(asset)
        if len(chosen) < n and len(self.skipped) >= len(self.ids):
            raise GenerationError(f"no readable meshes in object source {self.config.objects!r}")
        if len(chosen) < min(n, len(self.ids) - len(self.skipped)):
            raise GenerationError(
                f"could not pick {n} objects of compatible size from {self.config.objects!r}"
            )
        return chosen

    def build_scene(self, index: int) -> dict:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, SPLIT_CODES[cfg.split], index])
        layout_error = None
        for _attempt in range(10):
            n = int(rng.integers(cfg.layout.min_objects, cfg.layout.max_objects + 1))
            assets = self.pick_assets(n, rng)
            if len(assets) < cfg.layout.min_objects:
                raise GenerationError(
                    f"object source {cfg.objects!r} split {cfg.split!r} has only {len(assets)} "
                    f"usable objects; a scene needs at least {cfg.layout.min_objects}"
                )
            sizes = [float(rng.uniform(*a.size_range)) for a in assets]
            extents = [np.asarray(a.mesh.extents, dtype=np.float64) for a in assets]
            surfaces = None
            if cfg.layout.stack > 0:  # stacked objects rest on the surface below them
                from ..geometry.sampling import sample_surface

                surfaces = [sample_surface(a.mesh, 4096, seed=0)[0] for a in assets]
            try:
                poses = sample_layout(extents, sizes, rng, cfg.layout, surfaces)
            except LayoutError as exc:  # unlucky draw: redraw objects and sizes
                layout_error = exc
                continue
            result = self._render_views(index, assets, poses, rng)
            if result is not None:
                return result
        if layout_error is not None:
            raise LayoutError(f"scene {index}: {layout_error} (10 draws tried)")
        raise GenerationError(
            f"scene {index}: no layout gave {cfg.views.views} views with every object visible "
            f"(>= {cfg.views.visible_threshold()} px each); lower --views or the object count, "
            "or raise --resolution"
        )

    def _render_views(self, index, assets, poses, rng) -> dict | None:
        from ..render.materials import render_object

        cfg = self.config
        objects, render_objects, world_vertices = [], [], []
        for k, (asset, pose) in enumerate(zip(assets, poses, strict=True)):
            color = asset.color or tuple(float(c) for c in _random_color(rng))
            vertices = pose.apply(asset.mesh.vertices)
            samples = pose.apply(asset.mesh.sample(512, seed=k))
            world_vertices.append(vertices)
            # the mesh's own texture / vertex / face colours where it has some, else ``color``
            render_objects.append(render_object(vertices, asset.mesh, k + 2, color, samples))
            rel = os.path.relpath(self.object_dir(asset), self.out / f"scene_{index:06d}")
            objects.append(
                ObjectInstance(
                    mesh=None,
                    label=asset.label,
                    pose=pose,
                    instance_id=k + 2,
                    object_id=asset.object_id,
                    source=asset.source,
                    licence=asset.licence,
                    mesh_file=f"{rel}/mesh.ply",
                    color=color,
                )
            )
        light = (rng.uniform(-1, 1), rng.uniform(0.6, 1.5), rng.uniform(-1, 1))
        floor = tuple(rng.uniform(0.35, 0.85) * rng.uniform(0.85, 1.0, 3))
        background = tuple(rng.uniform(0.6, 0.95, 3))
        self.renderer.set_scene(
            render_objects, floor_color=floor, light_dir=light, background=background
        )
        allv = np.concatenate(world_vertices)
        center = (allv.min(0) + allv.max(0)) / 2.0
        radius = float(np.linalg.norm(allv - center, axis=1).max())

        # Cycles: views are picked with its fast renderer, then rendered in one Blender call
        picker = getattr(self.renderer, "fast", self.renderer)
        views, cameras = [], []
        budget = cfg.views.views * cfg.views.max_candidates_per_view
        for _ in range(budget):
            if len(views) == cfg.views.views:
                break
            towards = None
            if len(poses) > 1 and rng.uniform() < cfg.views.occlusion_seeking:
                # the occluder is the taller of two objects: it can hide the other
                a, b = rng.choice(len(poses), 2, replace=False)
                occluder, hidden = (a, b) if poses[a].t[1] >= poses[b].t[1] else (b, a)
                towards = (poses[occluder].t - poses[hidden].t)[[0, 2]]
            camera = sample_camera(center, radius, rng, cfg.views, towards)
            view = picker.render(camera)
            if (view.visible_pixels < cfg.views.visible_threshold()).any():
                continue
            views.append(view)
            cameras.append(camera)
        if len(views) < cfg.views.views:
            return None
        render = {
            "light_dir": [float(v) for v in light],
            "background": [float(v) for v in background],
            "floor_color": [float(v) for v in floor],
        }
        if picker is not self.renderer:
            views = self.renderer.finish(cameras, views)
            render.update(self.renderer.metadata())
        return self._write_scene(index, objects, cameras, views, rng, render)

    def _write_scene(self, index, objects, cameras, views, rng, render) -> dict:
        cfg = self.config
        final = self.out / f"scene_{index:06d}"
        tmp = self.out / f".tmp_scene_{index:06d}_{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "views").mkdir(parents=True)
        view_records, amodal_packed, points = [], [], {}
        for v, (camera, view) in enumerate(zip(cameras, views, strict=True)):
            (tmp / "views" / f"{v:03d}_rgb.png").write_bytes(encode_png(view.rgb))
            (tmp / "views" / f"{v:03d}_depth.png").write_bytes(
                encode_png(depth_to_uint16(view.depth))
            )
            (tmp / "views" / f"{v:03d}_instance.png").write_bytes(encode_png(view.instance))
            amodal_packed.append(np.packbits(view.amodal.reshape(len(objects), -1), axis=1))
            per_object = []
            for k, obj in enumerate(objects):
                mask = view.instance == obj.instance_id
                pts = _observed_points(view.depth, camera.K, mask, cfg.max_partial_points, rng)
                points[f"v{v:03d}_i{obj.instance_id:03d}"] = pts.astype(np.float16)
                per_object.append(
                    {
                        "instance_id": obj.instance_id,
                        "visible_pixels": int(view.visible_pixels[k]),
                        "amodal_pixels": int(view.amodal_pixels[k]),
                        "visible_fraction": round(float(view.visible_fraction[k]), 5),
                        "occlusion": round(float(1.0 - view.visible_fraction[k]), 5),
                        "truncation": round(float(view.truncation[k]), 5),
                        "bbox_xyxy": _mask_bbox(mask),
                    }
                )
            view_records.append(
                {
                    "index": v,
                    "camera": camera.to_dict(),
                    "rgb": f"views/{v:03d}_rgb.png",
                    "depth": f"views/{v:03d}_depth.png",
                    "instance": f"views/{v:03d}_instance.png",
                    "objects": per_object,
                }
            )
        h, w = cfg.views.height, cfg.views.width
        (tmp / "amodal.npz").write_bytes(
            _npz_bytes(
                packed=np.stack(amodal_packed),
                shape=np.array([len(views), len(objects), h, w]),
                instance_ids=np.array([o.instance_id for o in objects]),
            )
        )
        (tmp / "points.npz").write_bytes(_npz_bytes(**points))
        scene = Scene(
            objects,
            cameras,
            metadata={
                "scene_id": f"scene_{index:06d}",
                "index": index,
                "seed": cfg.seed,
                "split": cfg.split,
                "object_source": cfg.objects,
                # the renderer's settings, so objects can be re-rendered alone to match
                "render": render,
            },
        )
        payload = scene.to_dict()
        payload["views"] = view_records
        atomic_write_json(tmp / "scene.json", payload)  # last file: marks the scene complete
        try:
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (final / "scene.json").is_file():  # not a twin that finished first: a real error
                raise
        return summarize_scene(payload)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    import colorsys

    return np.array(
        colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.3, 0.9), rng.uniform(0.4, 0.95))
    )


def _observed_points(depth, K, mask, max_points, rng) -> np.ndarray:
    from ..geometry.camera import backproject

    pts = backproject(depth, K, mask)
    if len(pts) > max_points:
        pts = pts[np.sort(rng.choice(len(pts), max_points, replace=False))]
    return pts


def _mask_bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return [0, 0, 0, 0]
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def summarize_scene(payload: dict) -> dict:
    """Compact per-scene record for the manifest."""
    vis = [o["visible_fraction"] for v in payload["views"] for o in v["objects"]]
    return {
        "scene_id": payload["metadata"]["scene_id"],
        "objects": len(payload["objects"]),
        "views": len(payload["views"]),
        "labels": [o["label"] for o in payload["objects"]],
        "object_ids": [f"{o['source']}/{o['object_id']}" for o in payload["objects"]],
        "licences": sorted({o["licence"] for o in payload["objects"]}),
        "mean_visible_fraction": round(float(np.mean(vis)), 4) if vis else None,
    }
