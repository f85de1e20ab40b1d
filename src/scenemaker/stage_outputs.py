"""Typed per-frame state and each stage's output, which owns its files.

One :class:`Frame` (rgb, depth, K, masks, labels; each object's observed points computed once
and shared by every stage that reads them) flows through the stages. Each stage returns an
output type that knows its folder, its ``schema``, and how to ``save`` and ``load`` itself:

    Perception   perception/{masks.png, masks.npy, objects.json, depth.npy, depth.png,
                 intrinsics.json}
    Deocclusion  deocclusion/object_XX_{input,visible,amodal,mask}.png, crops.json
    Object3D     object3d/object_XX.glb, objects.json
    Poses        pose/poses.json (and the pose model's hypothesis pool)
    Refinement   refine/poses.json (with scores, alternatives and confidence per object)

Outputs hold one entry per object, indexed like the frame's masks: a saved output with another
number of objects is refused on load with one line naming the file. :func:`~.object_records.object_records`
joins them into one record per object (what the report lists). Every write is
atomic (temporary name, then rename); every failed read is one :class:`InputError` naming the
file (``stage_io``). Which files a stage wrote, and from which inputs and settings, is
recorded by ``stage_records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from .errors import InputError
from .io_utils import atomic_write_bytes, atomic_write_json
from .pose.estimator import Observation
from .scene import Pose
from .stage_io import _reading, read_json, read_png, save_npy, write_png

POSES_SCHEMA = "scenemaker.poses/2"


@dataclass
class Frame(Observation):
    """The photo and what perception found in it: every stage reads this one object.

    ``points(k, n)`` (from :class:`~scenemaker.pose.estimator.Observation`) computes object
    ``k``'s cleaned observed points once per count and seed."""

    labels: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)

    def __post_init__(self):
        super().__post_init__()
        self._subsets: dict = {}
        if not self.labels:
            self.labels = ["object"] * len(self.masks)
        if not self.scores:
            self.scores = [None] * len(self.masks)
        if not len(self.labels) == len(self.scores) == len(self.masks):
            raise ValueError(
                f"{len(self.masks)} masks, {len(self.labels)} labels, {len(self.scores)} scores"
            )

    def __len__(self) -> int:
        return len(self.masks)

    def subset(self, indices: list[int]) -> Observation:
        """The observation of the objects ``indices`` (in that order), made once: the pose and
        refine stages read the same one, so each object's points are computed once."""
        key = tuple(indices)
        if key not in self._subsets:
            sub = Observation(self.depth, self.K, [self.masks[k] for k in indices], self.rgb)
            for (k, count, seed), pts in self._points.items():
                if k in indices:
                    sub._points[(indices.index(k), count, seed)] = pts
            self._subsets[key] = sub
        return self._subsets[key]


def _count_check(path: Path, found: int, expected: int | None) -> None:
    if expected is not None and found != expected:
        raise InputError(
            f"{path}: damaged saved stage output ({found} entries for {expected} objects); "
            "rerun from an earlier stage"
        )


# ---------------------------------------------------------------------------- perception
@dataclass
class Perception:
    """Visible masks, labels, detector scores, metric depth and K."""

    stage: ClassVar[str] = "perception"
    schema: ClassVar[str] = "scenemaker.objects/1"

    masks: list[np.ndarray]
    labels: list[str]
    scores: list[float | None]
    depth: np.ndarray
    K: np.ndarray

    def frame(self, rgb: np.ndarray | None) -> Frame:
        return Frame(self.depth, self.K, self.masks, rgb, list(self.labels), list(self.scores))

    def save(self, out: Path) -> list[str]:
        """Writes the folder; returns notes (what the label PNG, for viewing, could not keep)."""
        from .geometry.camera import depth_to_uint16
        from .perception.base import Masks
        from .perception.inputs import write_label_png

        folder = out / self.stage
        h, w = self.depth.shape
        stacked = np.stack(self.masks) if self.masks else np.zeros((0, h, w), bool)
        found = Masks(stacked, list(self.labels), list(self.scores)) if self.masks else stacked
        notes = write_label_png(found, folder / "masks.png")
        # the label PNG is for viewing (overlaps: the later mask wins); masks.npy is read back
        save_npy(folder / "masks.npy", np.packbits(stacked, axis=-1))
        scores = [None if s is None else float(s) for s in self.scores]
        atomic_write_json(
            folder / "objects.json",
            {"schema": self.schema, "labels": list(self.labels), "scores": scores},
        )
        save_npy(folder / "depth.npy", np.asarray(self.depth, dtype=np.float32))
        write_png(folder / "depth.png", depth_to_uint16(self.depth))
        atomic_write_json(
            folder / "intrinsics.json",
            {"schema": "scenemaker.intrinsics/1", "K": self.K, "width": w, "height": h},
        )
        return notes

    @classmethod
    def load(cls, out: Path) -> Perception:
        folder = out / cls.stage
        meta = read_json(folder / "objects.json", cls.schema)
        with _reading(folder / "objects.json"):
            labels, scores = list(meta["labels"]), list(meta["scores"])
            if len(labels) != len(scores) or not all(isinstance(x, str) for x in labels):
                raise ValueError("expected as many string labels as scores")
        with _reading(folder / "depth.npy"):
            depth = np.load(folder / "depth.npy", allow_pickle=False)
            if depth.ndim != 2 or depth.dtype.kind != "f":
                raise ValueError(
                    f"expected a 2-D float depth map, found {depth.dtype} {depth.shape}"
                )
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
        intrinsics = read_json(folder / "intrinsics.json", "scenemaker.intrinsics/1")
        with _reading(folder / "intrinsics.json"):
            K = np.asarray(intrinsics["K"], dtype=np.float64)
            if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
                raise ValueError("expected a 3x3 K with positive focal lengths")
        return cls([unpacked[k] for k in range(len(labels))], labels, scores, depth, K)


# ---------------------------------------------------------------------------- de-occlusion
@dataclass
class Deocclusion:
    """Per object, the square crop around its mask and its completed (amodal) image."""

    stage: ClassVar[str] = "deocclusion"
    schema: ClassVar[str] = "scenemaker.crops/1"

    crops: list  # AmodalCrop per object

    def save(self, out: Path) -> None:
        folder = out / self.stage
        records = []
        for k, amodal in enumerate(self.crops):
            crop = amodal.crop
            write_png(folder / f"object_{k:02d}_input.png", crop.image)
            write_png(folder / f"object_{k:02d}_amodal.png", amodal.image)
            write_png(folder / f"object_{k:02d}_mask.png", amodal.mask.astype(np.uint8) * 255)
            write_png(
                folder / f"object_{k:02d}_visible.png", crop.visible_mask.astype(np.uint8) * 255
            )
            box = [float(v) for v in crop.box]
            records.append({"box": box, "label": crop.label, "method": amodal.method})
        atomic_write_json(folder / "crops.json", {"schema": self.schema, "crops": records})

    @classmethod
    def load(cls, out: Path, frame: Frame) -> Deocclusion:
        from .deocclusion import AmodalCrop, ObjectCrop

        folder = out / cls.stage
        path = folder / "crops.json"
        payload = read_json(path, cls.schema)
        with _reading(path):
            records = list(payload["crops"])
            _count_check(path, len(records), len(frame))
            boxes = [tuple(float(v) for v in rec["box"]) for rec in records]
            if any(len(b) != 4 or not np.isfinite(b).all() for b in boxes):
                raise ValueError("expected boxes of 4 finite numbers")
        crops = []
        for k, rec in enumerate(records):
            image = read_png(folder / f"object_{k:02d}_input.png")[..., :3]
            visible = read_png(folder / f"object_{k:02d}_visible.png") > 127
            amodal = read_png(folder / f"object_{k:02d}_amodal.png")[..., :3]
            mask = read_png(folder / f"object_{k:02d}_mask.png") > 127
            with _reading(folder / f"object_{k:02d}_input.png"):
                if not image.shape[:2] == visible.shape == amodal.shape[:2] == mask.shape[:2]:
                    raise ValueError("the crop's images differ in size")
            crop = ObjectCrop(image, visible, boxes[k], rec.get("label", frame.labels[k]))
            crops.append(AmodalCrop(amodal, mask, crop, rec.get("method")))
        return cls(crops)


# ---------------------------------------------------------------------------- object3d
@dataclass
class Object3D:
    """Per object, its canonical mesh, or why it has none."""

    stage: ClassVar[str] = "object3d"
    schema: ClassVar[str] = "scenemaker.meshes/1"

    meshes: list  # CanonicalMesh | None per object
    errors: list[str | None]

    def __post_init__(self):
        if len(self.meshes) != len(self.errors):
            raise ValueError(f"{len(self.meshes)} meshes, {len(self.errors)} errors")

    @staticmethod
    def mesh_file(k: int, choice: int = 0) -> str:
        """Object k's mesh (``choice`` j > 0: its j-th alternative candidate mesh)."""
        return (
            f"object3d/object_{k:02d}.glb"
            if choice == 0
            else f"object3d/object_{k:02d}_alt_{choice}.glb"
        )

    def have(self) -> list[int]:
        """Indices of the objects with a mesh."""
        return [k for k, m in enumerate(self.meshes) if m is not None]

    def save_mesh(self, out: Path, k: int) -> None:
        """One object's GLB and its alternatives' (written as soon as they are made, so progress
        is visible); an earlier run's extra alternatives are removed."""
        generated = self.meshes[k]
        for j, candidate in enumerate([generated, *generated.alternatives]):
            atomic_write_bytes(out / self.mesh_file(k, j), candidate.mesh.export(file_type="glb"))
        for old in (out / self.stage).glob(f"object_{k:02d}_alt_*.glb"):
            if old.name not in {Path(self.mesh_file(k, j)).name
                                for j in range(1, 1 + len(generated.alternatives))}:  # fmt: skip
                old.unlink()

    def save(self, out: Path, meshes_written: bool = False) -> None:
        records = []
        for k, (generated, error) in enumerate(zip(self.meshes, self.errors, strict=True)):
            if generated is None:
                records.append({"error": error or "no mesh"})
                for old in (out / self.stage).glob(f"object_{k:02d}_alt_*.glb"):
                    old.unlink()  # an earlier run's candidates of this object
                continue
            if not meshes_written:
                self.save_mesh(out, k)
            pose = generated.initial_pose
            records.append(
                {
                    "source": generated.source,
                    "textured": generated.textured,
                    "initial_pose": None if pose is None else pose.to_dict(),
                    "alternatives": [
                        {"source": a.source, "textured": a.textured} for a in generated.alternatives
                    ],
                }
            )
        atomic_write_json(out / self.stage / "objects.json", {"schema": self.schema,
                                                              "objects": records})  # fmt: skip

    @classmethod
    def load(cls, out: Path, frame: Frame | None = None) -> Object3D:
        import trimesh

        from .object3d import CanonicalMesh

        path = out / cls.stage / "objects.json"
        payload = read_json(path, cls.schema)
        with _reading(path):
            records = list(payload["objects"])
            if not all(isinstance(r, dict) for r in records):
                raise ValueError("expected one object per entry")
            _count_check(path, len(records), None if frame is None else len(frame))
        meshes, errors = [], []
        for k, rec in enumerate(records):
            if "error" in rec:
                meshes.append(None)
                errors.append(str(rec["error"]))
                continue
            loaded = []
            with _reading(path):
                candidates = [rec, *rec.get("alternatives", [])]
                if not all(isinstance(c, dict) and "source" in c for c in candidates):
                    raise ValueError("each alternative needs its source")
            for j, candidate in enumerate(candidates):
                glb = out / cls.mesh_file(k, j)
                with _reading(glb):
                    mesh = trimesh.load(glb, force="mesh", process=False)
                    if len(getattr(mesh, "faces", ())) == 0:
                        raise ValueError("no triangles")
                textured = bool(candidate.get("textured"))
                loaded.append(CanonicalMesh(mesh, candidate["source"], None, textured))
            with _reading(path):
                pose = rec["initial_pose"]
                loaded[0].initial_pose = None if pose is None else Pose.from_dict(pose)
                loaded[0].alternatives = loaded[1:]
                meshes.append(loaded[0])
                errors.append(None)
        return cls(meshes, errors)


# ---------------------------------------------------------------------------- pose, refine
def _poses_payload(poses, skipped) -> dict:
    return {
        "schema": POSES_SCHEMA,
        "frame": "OpenCV camera (x right, y down, z forward), metres",
        "poses": [None if p is None else p.to_dict() for p in poses],
        "skipped": {str(k): v for k, v in skipped.items()},
    }


def _read_poses(path: Path, expected: int | None):
    payload = read_json(path, POSES_SCHEMA)
    with _reading(path):
        poses = [None if p is None else Pose.from_dict(p) for p in payload["poses"]]
        _count_check(path, len(poses), expected)
        skipped = {int(k): str(v) for k, v in dict(payload["skipped"]).items()}
        if any(not 0 <= k < len(poses) for k in skipped):
            raise ValueError("a skipped object index is out of range")
    return payload, poses, skipped


@dataclass
class Poses:
    """The pose model's camera-frame (OpenCV) pose per object, why an object has none, and
    its whole hypothesis pool (for ``--from-stage refine``)."""

    stage: ClassVar[str] = "pose"
    schema: ClassVar[str] = POSES_SCHEMA

    poses: list[Pose | None]
    skipped: dict[int, str] = field(default_factory=dict)
    hypotheses: list[list[Pose]] | None = None

    def save(self, out: Path) -> None:
        payload = _poses_payload(self.poses, self.skipped)
        if self.hypotheses is not None:
            payload["hypotheses"] = [[p.to_dict() for p in pool] for pool in self.hypotheses]
        atomic_write_json(out / self.stage / "poses.json", payload)

    @classmethod
    def load(cls, out: Path, frame: Frame | None = None) -> Poses:
        path = out / cls.stage / "poses.json"
        payload, poses, skipped = _read_poses(path, None if frame is None else len(frame))
        with _reading(path):
            pools = payload.get("hypotheses")
            if pools is not None:
                pools = [[Pose.from_dict(p) for p in pool] for pool in pools]
                _count_check(path, len(pools), len(poses))
        return cls(poses, skipped, pools)


@dataclass
class Refinement:
    """Refined poses; per object its score, top alternatives and confidence."""

    stage: ClassVar[str] = "refine"
    schema: ClassVar[str] = POSES_SCHEMA

    poses: list[Pose | None]
    skipped: dict[int, str] = field(default_factory=dict)
    confidences: list[float | None] = field(default_factory=list)
    records: list[dict | None] = field(default_factory=list)  # ObjectRefinement.to_dict()

    def __post_init__(self):
        self.confidences = list(self.confidences) or [None] * len(self.poses)
        self.records = list(self.records) or [None] * len(self.poses)

    def save(self, out: Path) -> None:
        payload = _poses_payload(self.poses, self.skipped)
        payload.update({"confidence": self.confidences, "objects": self.records})
        atomic_write_json(out / self.stage / "poses.json", payload)

    @staticmethod
    def mesh_file(k: int) -> str:
        """Where the export writes object k's stretched mesh (when the refiner stretched it;
        ``scene.json`` then names it instead of the generated one)."""
        return f"meshes/object_{k:02d}.glb"

    def stretch(self, k: int) -> list | None:
        record = self.records[k] if k < len(self.records) else None
        return record.get("stretch") if isinstance(record, dict) else None

    def choice(self, k: int) -> int:
        """Which of object k's candidate meshes the refiner chose (0: the generator's first)."""
        record = self.records[k] if k < len(self.records) else None
        return int(record.get("mesh_choice") or 0) if isinstance(record, dict) else 0

    def placed_meshes(self, meshes: list) -> list:
        """The generated meshes (``CanonicalMesh`` or None) as the poses place them: the
        candidate the refiner chose, stretched where it stretched it (refine/stretch.py)."""
        from dataclasses import replace

        from .refine.stretch import apply_stretch

        out = list(meshes)
        for k, generated in enumerate(meshes):
            if generated is None:
                continue
            candidates = [generated, *generated.alternatives]
            if self.choice(k) >= len(candidates):
                raise InputError(f"refine/poses.json: object {k} chose mesh {self.choice(k)} "
                                 f"of {len(candidates)}; rerun from the refine stage")  # fmt: skip
            out[k] = candidates[self.choice(k)]
            a = self.stretch(k)
            if a is not None:
                out[k] = replace(out[k], mesh=apply_stretch(out[k].mesh, a)[0])
        return out

    def save_meshes(self, out: Path, placed: list) -> None:
        """Write each stretched mesh of ``placed`` (:meth:`placed_meshes`) to ``mesh_file``;
        any earlier run's are removed first."""
        for old in (out / "meshes").glob("object_*.glb"):
            old.unlink()
        for k, generated in enumerate(placed):
            if generated is not None and self.stretch(k) is not None:
                atomic_write_bytes(out / self.mesh_file(k), generated.mesh.export(file_type="glb"))

    @classmethod
    def load(cls, out: Path, frame: Frame | None = None) -> Refinement:
        path = out / cls.stage / "poses.json"
        payload, poses, skipped = _read_poses(path, None if frame is None else len(frame))
        with _reading(path):
            confidences = payload.get("confidence") or [None] * len(poses)
            records = payload.get("objects") or [None] * len(poses)
            if not isinstance(confidences, list) or len(confidences) != len(poses):
                raise ValueError("confidences do not match poses")
            if not all(c is None or isinstance(c, (int, float)) for c in confidences):
                raise ValueError("confidences must be numbers or null")
            for record in records:
                choice = record.get("mesh_choice") if isinstance(record, dict) else None
                if choice is not None and not (
                    isinstance(choice, int) and not isinstance(choice, bool) and choice >= 0
                ):
                    raise ValueError(f"mesh_choice must be an integer >= 0, got {choice!r}")
                a = record.get("stretch") if isinstance(record, dict) else None
                if a is not None and not (
                    isinstance(a, list) and len(a) == 3
                    and all(isinstance(x, (int, float)) and np.isfinite(x) and x > 0 for x in a)
                ):  # fmt: skip
                    raise ValueError(f"stretch must be three positive numbers, got {a!r}")
            if not isinstance(records, list) or len(records) != len(poses):
                raise ValueError("per-object records do not match poses")
        return cls(poses, skipped, confidences, records)
