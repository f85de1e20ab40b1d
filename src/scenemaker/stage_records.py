"""What made each stage's outputs: a fingerprint of its inputs and settings, and its files.

``out/stages.json`` holds one record per finished stage::

    {"schema": "scenemaker.stages/1",
     "stages": {"perception": {"fingerprint": "...", "settings": {...}, "files": [...]}, ...}}

A stage's fingerprint covers the input image, every file a setting names (masks, depth, LoRA,
weights) and the settings of that stage and of every stage before it, so two runs whose
fingerprints agree up to a stage saved the same thing there. The pipeline uses it to

* replace exactly the files the previous run recorded (a rerun with fewer objects leaves no
  ``object_04.glb`` behind, and files a user put in the folder are never touched);
* refuse ``--from-stage S`` when what the stages before S were made from has changed, naming
  the change;
* skip, in a batch, only the images whose finished result has the fingerprint of this run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

from .errors import InputError
from .io_utils import atomic_write_json

RECORDS_FILE = "stages.json"
RECORDS_SCHEMA = "scenemaker.stages/1"

# which PipelineConfig fields each stage's output depends on
STAGE_SETTINGS = {
    "perception": ("segmenter", "masks", "prompt", "clicks", "segmenter_model", "depth",
                   "depth_file", "depth_scale", "invalid_depth", "K", "fov", "depth_model",
                   "max_side", "dtype"),
    "deocclusion": ("deocclusion", "deocclusion_model", "lora", "seed"),
    "object3d": ("generator", "generator_model", "mesh_candidates", "external_command", "seed"),
    "pose": ("pose", "pose_weights", "pose_steps", "guidance", "pose_samples", "seed"),
    "refine": ("refine", "stretch", "seed"),
    "export": ("usd",),
}  # fmt: skip
# settings that change where or how fast a stage runs, not what it writes
RUNTIME_SETTINGS = ("device", "cpu_offload", "external_timeout", "refine_workers")
# settings that may name a local file or folder: its content is part of the fingerprint
FILE_SETTINGS = ("masks", "depth_file", "lora", "pose_weights", "segmenter_model", "depth_model",
                 "deocclusion_model", "generator_model")  # fmt: skip
_HASH_LIMIT = 256 * 2**20  # files up to this size are hashed; larger ones by size and mtime


def check_settings_cover(config_cls) -> None:
    """Raise if a field of ``config_cls`` belongs to no stage (it would never invalidate a
    saved stage): every new setting must be placed in STAGE_SETTINGS or RUNTIME_SETTINGS."""
    known = {n for names in STAGE_SETTINGS.values() for n in names} | set(RUNTIME_SETTINGS)
    missing = [f.name for f in fields(config_cls) if f.name not in known]
    if missing:
        raise AssertionError(f"settings of no stage: {', '.join(missing)}")


def file_identity(path: str | Path) -> str:
    """A digest of a file's bytes (or of a folder's files); size and mtime for huge files."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        _digest_file(h, path)
    elif path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode() + b"\0")
            _digest_file(h, p)
    else:
        return "missing"
    return h.hexdigest()


def _digest_file(h, path: Path) -> None:
    stat = path.stat()
    if stat.st_size > _HASH_LIMIT:
        h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def image_identity(image) -> str | None:
    """Digest of the input image (a path or an array); None when not given."""
    import numpy as np

    if image is None:
        return None
    if isinstance(image, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    return file_identity(image)


def stage_settings(config, stage: str) -> dict:
    """The settings ``stage`` depends on, files replaced by their content digest."""
    out = {}
    for name in STAGE_SETTINGS[stage]:
        value = getattr(config, name)
        if name in FILE_SETTINGS and value is not None and Path(str(value)).exists():
            value = {"path": str(value), "digest": file_identity(value)}
        out[name] = value
    return out


def fingerprints(config, image_digest: str | None) -> dict[str, dict]:
    """{stage: {"fingerprint", "settings", "image"}} for every stage, chained in order."""
    previous = ""
    result = {}
    for stage in STAGE_SETTINGS:
        settings = stage_settings(config, stage)
        payload = {"previous": previous, "stage": stage, "settings": settings}
        if stage == "perception":
            payload["image"] = image_digest
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
        previous = digest.hexdigest()
        result[stage] = {"fingerprint": previous, "settings": settings}
        if stage == "perception":
            result[stage]["image"] = image_digest
    return result


class StageRecords:
    """The records of one output folder (``stages.json``)."""

    def __init__(self, out: Path, stages: dict | None = None, present: bool = False):
        self.out, self.stages, self.present = Path(out), dict(stages or {}), present

    @classmethod
    def load(cls, out: str | Path, strict: bool) -> StageRecords:
        """Read ``out/stages.json``; a damaged file is an InputError when ``strict`` (the saved
        stages are to be reused) and is otherwise treated as absent."""
        path = Path(out) / RECORDS_FILE
        if not path.is_file():
            return cls(out)
        try:
            payload = json.loads(path.read_text())
            if payload.get("schema") != RECORDS_SCHEMA or not isinstance(payload["stages"], dict):
                raise ValueError(f"expected schema {RECORDS_SCHEMA!r}")
            for record in payload["stages"].values():
                if not isinstance(record.get("fingerprint"), str):
                    raise ValueError("a stage without a fingerprint")
                if not all(isinstance(f, str) for f in record.get("files", [])):
                    raise ValueError("file names must be strings")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            if strict:
                raise InputError(
                    f"{path}: damaged stage records ({exc}); rerun from the first stage"
                ) from None
            return cls(out)
        return cls(out, payload["stages"], present=True)

    def save(self) -> None:
        atomic_write_json(
            self.out / RECORDS_FILE, {"schema": RECORDS_SCHEMA, "stages": self.stages}
        )

    def check_reusable(self, from_stage: str, expected: dict, stages: tuple) -> None:
        """Raise InputError unless every stage before ``from_stage`` is recorded with the
        fingerprint this run would give it (naming what changed)."""
        for stage in stages[: stages.index(from_stage)]:
            record = self.stages.get(stage)
            if record is None:
                if self.present:
                    why = f"has no finished {stage} stage"
                elif self.out.is_dir() and any(self.out.iterdir()):
                    why = f"has no {RECORDS_FILE} (written before stage records existed)"
                else:
                    why = "holds no saved stages"
                raise InputError(
                    f"--from-stage {from_stage}: {self.out} {why}; rerun from an earlier stage"
                )
            if record["fingerprint"] == expected[stage]["fingerprint"]:
                continue
            if record.get("edits"):  # scenemaker.object_rerun changed some objects there
                edits = "; ".join(
                    f"object {e.get('object')}: {e.get('stage')} with {json.dumps(e.get('settings'))}"
                    for e in record["edits"]
                )
                raise InputError(
                    f"--from-stage {from_stage}: the {stage} stage saved in {self.out} holds "
                    f"per-object re-runs ({edits}); rerun from {stage} or earlier"
                )
            changed = _changes(record, expected[stage])
            what = ", ".join(changed) if changed else f"settings of a stage before {stage}"
            raise InputError(
                f"--from-stage {from_stage}: the {stage} stage saved in {self.out} was made "
                f"with another {what}; rerun from {_first_changed(self, expected, stages)}"
            )

    def forget(self, stages) -> None:
        """Delete the files the given stages recorded (inside ``out`` only) and their records."""
        root = self.out.resolve()
        for stage in stages:
            record = self.stages.pop(stage, None)
            for name in (record or {}).get("files", []):
                path = (self.out / name).resolve()
                if path.is_relative_to(root) and path != root and path.is_file():
                    path.unlink()

    def finished(self, stage: str, expected: dict, files: list[Path]) -> None:
        root = self.out.resolve()
        names = sorted({str(Path(f).resolve().relative_to(root)) for f in files})
        self.stages[stage] = {**expected[stage], "files": names}
        self.save()

    def is_current(self, expected: dict) -> bool:
        """Whether the folder holds a finished run with exactly these fingerprints."""
        return all(
            self.stages.get(s, {}).get("fingerprint") == expected[s]["fingerprint"]
            for s in expected
        )


def _changes(record: dict, expected: dict) -> list[str]:
    changed = []
    if "image" in expected and expected["image"] is not None:
        if record.get("image") != expected["image"]:
            changed.append("input image")
    saved = record.get("settings", {})
    for name, value in expected["settings"].items():
        if saved.get(name) != json.loads(json.dumps(value, default=str)):
            changed.append("--" + name.replace("_", "-"))
    return changed


def _first_changed(records: StageRecords, expected: dict, stages: tuple) -> str:
    for stage in stages:
        record = records.stages.get(stage)
        if record is None or record["fingerprint"] != expected[stage]["fingerprint"]:
            return stage
    return stages[0]
