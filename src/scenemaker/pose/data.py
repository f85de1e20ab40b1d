"""Training data for the pose model: scene folders -> one prepared NPZ -> batches.

``prepare_pose_data`` reads generated scenes once (observed points cleaned exactly as at
inference, canonical surface samples, camera-frame targets) into a flat NPZ. ``PoseDataset``
turns one view into model inputs, with the paper's yaw augmentation (canonical mesh turned
about +y by a multiple of 90 degrees, the target rotation compensated), and ``collate`` pads
scenes to the largest object count of a batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..geometry.points import MIN_OBSERVED_POINTS, observed_points
from ..geometry.rotations import yaw_matrix
from ..io_utils import atomic_write_bytes
from ..scene import Scene
from .encoding import STORED_CANONICAL, STORED_POINTS, encode_pose, make_inputs

PREPARED_SCHEMA = "scenemaker.pose-data/1"


def prepare_pose_data(
    roots: list[str | Path],
    out: str | Path,
    views_per_scene: int | None = None,
    seed: int = 0,
    progress: bool = True,
    depth_noise: int = 0,
) -> dict:
    """Read scene folders under ``roots`` into one NPZ at ``out``; returns its summary.

    ``depth_noise`` 1 / 2: the observed points come from depth degraded as estimators give it
    (``eval.depth_noise``: global scale error, z^2 noise, holes on edges), a fixed draw per
    view; translation and size targets scale with the drawn global scale (the degraded depth
    is an exact picture of the scaled scene), so the model learns to trust the depth it sees.
    """
    from ..eval.depth_noise import LEVELS, degrade_depth

    if depth_noise not in LEVELS:
        raise ValueError(f"depth_noise must be one of {sorted(LEVELS)}, got {depth_noise!r}")
    from tqdm.auto import tqdm

    from ..synth.dataset import list_scenes

    scenes = [s for root in roots for s in list_scenes(root)]
    if not scenes:
        raise FileNotFoundError(f"no scenes found in {', '.join(map(str, roots))}")
    canon_index: dict[str, int] = {}
    canon_points, canon_normals = [], []
    rows: dict[str, list] = {k: [] for k in ("points", "count", "canon", "R", "t", "s", "vis")}
    view_offsets, view_names, skipped = [0], [], 0
    for index, scene in enumerate(
        tqdm(scenes, desc="preparing", unit="scene", disable=not progress)
    ):
        objects = Scene.load_json(scene.folder / "scene.json", load_meshes=False).objects
        n_views = (
            scene.num_views if views_per_scene is None else min(views_per_scene, scene.num_views)
        )
        for v in range(n_views):
            view = scene.view(v)
            w2c = view.camera.world_to_camera
            stats = {o["instance_id"]: o for o in view.objects}
            depth, scale = degrade_depth(
                view.depth, depth_noise, np.random.default_rng([seed, index, v]), True
            )
            kept = 0
            for obj in objects:
                pts = observed_points(
                    depth,
                    view.camera.K,
                    view.instance == obj.instance_id,
                    STORED_POINTS,
                    seed=seed + v,
                )
                if len(pts) < MIN_OBSERVED_POINTS:
                    skipped += 1
                    continue
                key = f"{obj.source}/{obj.object_id}"
                if key not in canon_index:
                    p, n = scene.canonical_samples(obj.instance_id)
                    pick = np.random.default_rng(len(canon_index)).choice(
                        len(p), STORED_CANONICAL, replace=len(p) < STORED_CANONICAL
                    )
                    canon_index[key] = len(canon_points)
                    canon_points.append(p[pick].astype(np.float16))
                    canon_normals.append(n[pick].astype(np.float16))
                padded = np.zeros((STORED_POINTS, 3), np.float32)
                padded[: len(pts)] = pts
                rows["points"].append(padded)
                rows["count"].append(len(pts))
                rows["canon"].append(canon_index[key])
                rows["R"].append(w2c[:3, :3] @ obj.pose.R)
                rows["t"].append((w2c[:3, :3] @ obj.pose.t + w2c[:3, 3]) * scale)
                rows["s"].append(obj.pose.s * scale)
                rows["vis"].append(stats[obj.instance_id]["visible_fraction"])
                kept += 1
            if kept:
                view_offsets.append(view_offsets[-1] + kept)
                view_names.append(f"{scene.folder.name}/{v:03d}")
    meta = {
        "schema": PREPARED_SCHEMA,
        "roots": [str(r) for r in roots],
        "views_per_scene": views_per_scene,
        "depth_noise": depth_noise,
        "views": len(view_names),
        "object_views": view_offsets[-1],
        "objects": len(canon_index),
        "skipped_object_views": skipped,
        "view_names": view_names,
        "canonical_keys": list(canon_index),
    }
    arrays = {
        "points": np.stack(rows["points"]),
        "count": np.asarray(rows["count"], np.int32),
        "canon": np.asarray(rows["canon"], np.int64),
        "rotation": np.asarray(rows["R"], np.float32),
        "translation": np.asarray(rows["t"], np.float32),
        "size": np.asarray(rows["s"], np.float32),
        "visible_fraction": np.asarray(rows["vis"], np.float32),
        "view_offsets": np.asarray(view_offsets, np.int64),
        "canon_points": np.stack(canon_points),
        "canon_normals": np.stack(canon_normals),
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    return {k: v for k, v in meta.items() if k not in ("view_names", "canonical_keys")}


class PoseDataset:
    """Views of a prepared NPZ as model inputs and 10-D targets (a map-style torch dataset)."""

    def __init__(
        self,
        path: str | Path,
        num_points: int = 64,
        num_canonical: int = 256,
        augment: bool = True,
        max_objects: int | None = None,
    ):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: prepared pose data not found (run prepare first)")
        with np.load(path) as data:
            self.arrays = {k: data[k] for k in data.files}
        self.meta = json.loads(self.arrays.pop("meta").tobytes())
        for key in ("points", "canon_points", "canon_normals"):  # trimmed packs keep fp16
            self.arrays[key] = self.arrays[key].astype(np.float32)
        if self.meta.get("schema") != PREPARED_SCHEMA:
            raise ValueError(f"{path}: expected schema {PREPARED_SCHEMA}")
        self.num_points, self.num_canonical = num_points, num_canonical
        self.augment, self.max_objects = augment, max_objects
        self.offsets = self.arrays["view_offsets"]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def view_rows(self, index: int) -> np.ndarray:
        rows = np.arange(self.offsets[index], self.offsets[index + 1])
        return rows if self.max_objects is None else rows[: self.max_objects]

    def __getitem__(self, index: int) -> dict:
        return self.item(index, np.random.default_rng(index))

    def item(self, index: int, rng: np.random.Generator) -> dict:
        """One view's inputs and targets; ``rng`` drives sampling and augmentation."""
        a = self.arrays
        rows = self.view_rows(index)
        points = [a["points"][r, : a["count"][r]] for r in rows]
        canonical, rotations = [], []
        for r in rows:
            cp = a["canon_points"][a["canon"][r]].astype(np.float32)
            cn = a["canon_normals"][a["canon"][r]].astype(np.float32)
            pick = rng.choice(len(cp), self.num_canonical, replace=False)
            cp, cn = cp[pick], cn[pick]
            R = a["rotation"][r].astype(np.float64)
            if self.augment:
                # turn the canonical mesh by k * 90 degrees about +y; the target rotation
                # undoes it: R (s/2 p) = (R Y^T) (s/2 Y p)
                Y = yaw_matrix(np.pi / 2 * int(rng.integers(4)))
                cp, cn = cp @ Y.T, cn @ Y.T
                R = R @ Y.T
            canonical.append(np.concatenate([cp, cn], 1))
            rotations.append(R)
        inputs = make_inputs(points, canonical, self.num_points)
        target = encode_pose(
            np.asarray(rotations),
            a["translation"][rows],
            a["size"][rows],
            inputs.center,
            inputs.scale,
        )
        return {
            "local_points": inputs.local_points,
            "scene_points": inputs.scene_points,
            "box": inputs.box,
            "canonical": inputs.canonical.astype(np.float32),
            "target": target,
            "visible_fraction": a["visible_fraction"][rows],
            "center": inputs.center,
            "scale": np.float32(inputs.scale),
        }


def collate(items: list[dict]):
    """Pad a list of views to the largest object count; adds ``object_mask`` (B, N) bool."""
    import torch

    n = max(len(item["target"]) for item in items)
    batch = {}
    for key in ("local_points", "scene_points", "box", "canonical", "target", "visible_fraction"):
        first = items[0][key]
        out = np.zeros((len(items), n, *first.shape[1:]), dtype=np.float32)
        for b, item in enumerate(items):
            out[b, : len(item[key])] = item[key]
        batch[key] = torch.from_numpy(out)
    mask = np.zeros((len(items), n), dtype=bool)
    for b, item in enumerate(items):
        mask[b, : len(item["target"])] = True
    batch["object_mask"] = torch.from_numpy(mask)
    batch["center"] = torch.from_numpy(np.stack([i["center"] for i in items]))
    batch["scale"] = torch.tensor([float(i["scale"]) for i in items])
    return batch
