"""Reading generated scenes back (the format written by :mod:`scenemaker.synth.generate`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..geometry.camera import backproject
from ..io_utils import read_json
from ..scene import SCENE_SCHEMA, Camera, Scene, resolve_scene_file
from .images import read_depth, read_image

_VIEW_FILES = ("rgb", "depth", "instance")  # files each view record of scene.json names


def load_amodal_masks(scene_dir: str | Path) -> np.ndarray:
    """(views, objects, H, W) bool amodal masks of one scene folder."""
    path = Path(scene_dir) / "amodal.npz"
    with np.load(path) as data:
        v, n, h, w = (int(x) for x in data["shape"])
        bits = np.unpackbits(data["packed"], axis=2, count=h * w)
    return bits.reshape(v, n, h, w).astype(bool)


@dataclass
class ViewData:
    camera: Camera
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, 0 = invalid
    instance: np.ndarray  # (H, W) uint8: 0 background, 1 floor, 2+ objects
    objects: list[dict]  # per-object statistics (visible_fraction, truncation, ...)


class DatasetScene:
    """One ``scene_XXXXXX`` folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.payload = read_json(self.folder / "scene.json", SCENE_SCHEMA)

    @property
    def num_views(self) -> int:
        return len(self.payload["views"])

    @cached_property
    def scene(self) -> Scene:
        """Objects (with canonical meshes loaded) and one camera per view."""
        return Scene.load_json(self.folder / "scene.json")

    def file(self, value, field_name: str) -> Path:
        """A file named by scene.json, refused if it leads outside the dataset."""
        return resolve_scene_file(self.folder / "scene.json", value, field_name)

    def view(self, index: int) -> ViewData:
        record = self.payload["views"][index]
        files = {key: self.file(record[key], f"views[{index}].{key}") for key in _VIEW_FILES}
        return ViewData(
            camera=Camera.from_dict(record["camera"]),
            rgb=read_image(files["rgb"]),
            depth=read_depth(files["depth"]),
            instance=read_image(files["instance"]),
            objects=record["objects"],
        )

    def amodal_masks(self) -> np.ndarray:
        return load_amodal_masks(self.folder)

    def observed_points(self, view_index: int, instance_id: int) -> np.ndarray:
        """All observed points of one object in one view, OpenCV camera frame (from depth)."""
        view = self.view(view_index)
        return backproject(view.depth, view.camera.K, view.instance == instance_id)

    def stored_points(self) -> dict[str, np.ndarray]:
        """The subsampled observed points written with the scene (keys ``v000_i002``)."""
        with np.load(self.folder / "points.npz") as data:
            return {k: data[k].astype(np.float32) for k in data.files}

    def canonical_samples(self, instance_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(points, normals) surface samples of an object's canonical mesh."""
        index, obj = next(
            (k, o) for k, o in enumerate(self.payload["objects"]) if o["instance_id"] == instance_id
        )
        field_name = f"objects[{index}].mesh_file"
        self.file(obj["mesh_file"], field_name)  # refused if it leads outside the dataset
        samples = os.path.join(os.path.dirname(obj["mesh_file"]), "samples.npz")
        path = self.file(samples, f"{field_name} (its samples.npz)")
        with np.load(path) as data:
            return data["points"].astype(np.float32), data["normals"].astype(np.float32)


def list_scenes(root: str | Path) -> list[DatasetScene]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    return [DatasetScene(p) for p in sorted(root.glob("scene_*")) if (p / "scene.json").is_file()]
