"""Reading and writing each stage's saved outputs under the output folder.

Every file is written to a temporary name and renamed into place; every read of a saved output
that fails (missing, truncated, another shape or schema) is one InputError naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .io_utils import atomic_write_bytes, atomic_write_json
from .scene import Pose


def write_png(path: Path, array: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise InputError(f"{path}: saved stage output not found (run the earlier stages first)")
    with _reading(path), Image.open(path) as im:
        return np.asarray(im)


class _reading:
    """Turns any failure to read a saved stage output into one line naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        if not self.path.is_file():
            raise InputError(
                f"{self.path}: saved stage output not found (run the earlier stages first)"
            )
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, InputError):
            return False
        if isinstance(exc, (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError,
                            EOFError)):  # fmt: skip
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"{self.path}: damaged saved stage output ({why}); rerun from an earlier stage"
            ) from None
        return False


def read_json(path: Path, schema: str | None = None):
    with _reading(path):
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, found {type(payload).__name__}")
        if schema is not None and payload.get("schema") != schema:
            raise ValueError(f"expected schema {schema!r}, found {payload.get('schema')!r}")
        return payload


def load_perception(out: Path):
    folder = out / "perception"
    meta = read_json(folder / "objects.json", "scenemaker.objects/1")
    with _reading(folder / "objects.json"):
        labels, scores = list(meta["labels"]), list(meta["scores"])
        if len(labels) != len(scores) or not all(isinstance(x, str) for x in labels):
            raise ValueError("expected as many string labels as scores")
    with _reading(folder / "depth.npy"):
        depth = np.load(folder / "depth.npy", allow_pickle=False)
        if depth.ndim != 2 or depth.dtype.kind != "f":
            raise ValueError(f"expected a 2-D float depth map, found {depth.dtype} {depth.shape}")
    with _reading(folder / "masks.npy"):
        packed = np.load(folder / "masks.npy", allow_pickle=False)
        if (
            packed.ndim != 3
            or packed.dtype != np.uint8
            or packed.shape[:2] != (len(labels), depth.shape[0])
            or packed.shape[2] * 8 < depth.shape[1]
        ):
            raise ValueError(
                f"expected packed masks of {len(labels)} objects of {depth.shape[1]}x"
                f"{depth.shape[0]} px, found {packed.dtype} {packed.shape}"
            )
        unpacked = np.unpackbits(packed, axis=-1, count=depth.shape[1]).astype(bool)
    masks = [unpacked[k] for k in range(len(labels))]
    intrinsics = read_json(folder / "intrinsics.json", "scenemaker.intrinsics/1")
    with _reading(folder / "intrinsics.json"):
        K = np.asarray(intrinsics["K"], dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError("expected a 3x3 K with positive focal lengths")
    return masks, labels, scores, depth, K


def load_deocclusion(out: Path, masks, labels):
    from .deocclusion import AmodalCrop, ObjectCrop

    folder = out / "deocclusion"
    path = folder / "crops.json"
    records = read_json(path, "scenemaker.crops/1")
    with _reading(path):
        records = list(records["crops"])
        if len(records) != len(masks):
            raise ValueError(f"{len(records)} crops for {len(masks)} objects")
        boxes = [tuple(int(v) for v in rec["box"]) for rec in records]
        if any(len(b) != 4 for b in boxes):
            raise ValueError("expected boxes of 4 integers")
    results = []
    for k, rec in enumerate(records):
        image = read_png(folder / f"object_{k:02d}_input.png")[..., :3]
        visible = read_png(folder / f"object_{k:02d}_visible.png") > 127
        amodal = read_png(folder / f"object_{k:02d}_amodal.png")[..., :3]
        mask = read_png(folder / f"object_{k:02d}_mask.png") > 127
        with _reading(folder / f"object_{k:02d}_input.png"):
            if not image.shape[:2] == visible.shape == amodal.shape[:2] == mask.shape[:2]:
                raise ValueError("the crop's images differ in size")
        crop = ObjectCrop(image, visible, boxes[k], rec.get("label", labels[k]))
        results.append(AmodalCrop(amodal, mask, crop, rec.get("method")))
    return results


def load_object3d(out: Path):
    import trimesh

    from .object3d import CanonicalMesh

    folder = out / "object3d"
    path = folder / "objects.json"
    records = read_json(path, "scenemaker.meshes/1")
    with _reading(path):
        records = list(records["objects"])
        if not all(isinstance(r, dict) for r in records):
            raise ValueError("expected one object per entry")
    meshes = []
    for k, rec in enumerate(records):
        if "error" in rec:
            meshes.append(None)
            continue
        glb = folder / f"object_{k:02d}.glb"
        with _reading(glb):
            mesh = trimesh.load(glb, force="mesh", process=False)
            if len(getattr(mesh, "faces", ())) == 0:
                raise ValueError("no triangles")
        with _reading(path):
            pose = rec["initial_pose"]
            pose = None if pose is None else Pose.from_dict(pose)
            meshes.append(CanonicalMesh(mesh, rec["source"], pose, rec["textured"]))
    return meshes


def save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def save_poses(path: Path, poses, skipped, hypotheses=None, extra=None) -> None:
    d = {
        "schema": "scenemaker.poses/2",
        "frame": "OpenCV camera (x right, y down, z forward), metres",
        "poses": [None if p is None else p.to_dict() for p in poses],
        "skipped": {str(k): v for k, v in skipped.items()},
    }
    if hypotheses is not None:  # the pose model's whole pool, for --from-stage refine
        d["hypotheses"] = [[p.to_dict() for p in pool] for pool in hypotheses]
    d.update(extra or {})
    atomic_write_json(path, d)


def load_poses(path: Path):
    if not path.is_file():
        raise InputError(f"{path}: saved stage output not found (run the earlier stages first)")
    try:
        d = json.loads(path.read_text())
        poses = [None if p is None else Pose.from_dict(p) for p in d["poses"]]
        hypotheses = d.get("hypotheses")
        if hypotheses is not None:
            hypotheses = [[Pose.from_dict(p) for p in pool] for pool in hypotheses]
        skipped = {int(k): v for k, v in d["skipped"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{path}: not a saved poses file ({type(exc).__name__}: {exc}); "
            "rerun the earlier stages"
        ) from None
    return poses, skipped, hypotheses


def load_refined(path: Path):
    poses, _, _ = load_poses(path)
    d = read_json(path)
    confidence = d.get("confidence") or [None] * len(poses)
    if not isinstance(confidence, list) or len(confidence) != len(poses):
        raise InputError(f"{path}: damaged saved stage output (confidences do not match poses)")
    return poses, confidence


def snapshot(out: Path) -> dict:
    """{path: (inode, mtime_ns, size)} of the files under ``out`` (but the run's own records):
    files written by a stage (always a fresh file renamed into place) differ afterwards."""
    from .stage_records import RECORDS_FILE

    skip = {out / RECORDS_FILE, out / "config.json"}
    found = {}
    for path in out.rglob("*"):
        if path in skip or path.name.endswith(".tmp") or not path.is_file():
            continue
        st = path.stat()
        found[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found
