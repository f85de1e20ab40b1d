"""Re-run one object's mesh or pose in a finished run, keeping every other object as it was.

``rerun_object(pipeline, out, k, "object3d" | "pose", {"seed": 3})`` redoes object ``k`` from
that stage on with the pipeline's settings changed by ``overrides`` (settings of that stage
or later ones): a new mesh is posed again; a new pose is drawn by the pose model from the
whole frame (it places all objects jointly) and verified by the refiner for object ``k``
alone. The other objects' saved meshes, poses and refinements are kept byte for byte; the
scene, ``report.json`` and ``report.html`` are written again.

The stage records (``stages.json``) of the stages it touched keep the edit
(``"edits": [{"object": k, "stage": ..., "settings": {...}}]``), the fingerprint of the run
they started from (``base_fingerprint``: further re-runs check the settings against it) and a
fingerprint that includes them, so a later ``--from-stage`` after that stage refuses with one line naming the
edit, and a batch treats the folder as not current.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import fields, replace
from pathlib import Path

from .errors import InputError
from .pipeline_config import STAGES, PipelineConfig
from .stage_io import read_png, snapshot
from .stage_outputs import Deocclusion, Object3D, Perception, Poses, Refinement
from .stage_records import STAGE_SETTINGS, StageRecords, fingerprints
from .stage_timing import StageTimer

RERUN_STAGES = ("object3d", "pose")


def _check(pipeline, out: Path, stage: str, overrides: dict) -> StageRecords:
    if stage not in RERUN_STAGES:
        raise InputError(f"re-run stage {stage!r}: expected {' | '.join(RERUN_STAGES)}")
    known = {f.name for f in fields(PipelineConfig)}
    allowed = {n for s in STAGES[STAGES.index(stage) :] for n in STAGE_SETTINGS[s]}
    for name in overrides:
        if name not in known:
            raise InputError(f"re-run: unknown setting {name!r}")
        if name not in allowed:
            raise InputError(
                f"re-run from {stage}: --{name.replace('_', '-')} belongs to an earlier stage; "
                "run the whole image again instead"
            )
    if not out.is_dir():
        raise InputError(f"{out}: no such run folder")
    records = StageRecords.load(out, strict=True)
    image = records.stages.get("perception", {}).get("image")
    # earlier per-object re-runs are fine: what they started from must be these settings
    base = {n: {**r, "fingerprint": r.get("base_fingerprint", r["fingerprint"])}
            for n, r in records.stages.items()}  # fmt: skip
    StageRecords(out, base, records.present).check_reusable(
        stage, fingerprints(pipeline.config, image), STAGES
    )
    for name in STAGES[STAGES.index(stage) :]:
        if name not in records.stages:
            raise InputError(f"{out}: the run has no finished {name} stage; run it again first")
    return records


def rerun_object(pipeline, out, index: int, stage: str, overrides: dict | None = None):
    """Redo object ``index`` of the finished run in ``out`` from ``stage`` (object3d | pose) on;
    returns the new :class:`~scenemaker.pipeline.RunResult`."""
    from .pipeline import SceneMakerPipeline

    out, overrides = Path(out), dict(overrides or {})
    records = _check(pipeline, out, stage, overrides)
    config = replace(pipeline.config, **overrides)
    config.validate()
    rebuilt = ("generator", "pose", "refiner")  # made again from the changed settings
    kept = {k: b for k, b in pipeline._backends.items() if k not in rebuilt}
    worker = SceneMakerPipeline(config, pipeline.progress, pipeline.on_stage, **kept)

    rgb = read_png(out / "input" / "image.png")[..., :3]
    frame = Perception.load(out).frame(rgb)
    if not 0 <= index < len(frame):
        last = f"0..{len(frame) - 1}" if len(frame) else "none (no object was detected)"
        raise InputError(f"object {index}: no such object in {out} (objects: {last})")
    meshes = Object3D.load(out, frame)
    posed, refined = Poses.load(out, frame), Refinement.load(out, frame)
    timer, t0 = StageTimer(), time.perf_counter()
    before = snapshot(out)
    edit = {"object": index, "stage": stage, "settings": overrides}
    timer.notes.append(f"object {index}: {stage} re-run with {json.dumps(overrides)}")

    def started(name):
        if worker.on_stage is not None:
            worker.on_stage(name, STAGES.index(name), len(STAGES))
        return time.perf_counter()

    if stage == "object3d":
        t = started("object3d")
        crop = Deocclusion.load(out, frame).crops[index]
        generator = worker.backend("generator")
        meshes.meshes[index], meshes.errors[index] = worker._generate(
            generator, frame, crop, index, None
        )
        (out / Object3D.mesh_file(index)).unlink(missing_ok=True)
        if meshes.meshes[index] is None:
            timer.notes.append(f"object {index}: no mesh ({meshes.errors[index]})")
        else:
            meshes.save_mesh(out, index)
        meshes.save(out, meshes_written=True)
        timer.seconds["object3d"] = round(time.perf_counter() - t, 3)

    t = started("pose")
    for result in (posed, refined):
        result.poses[index] = None
        result.skipped.pop(index, None)
    refined.confidences[index], refined.records[index] = None, None
    if posed.hypotheses is not None:
        posed.hypotheses[index] = []
    if meshes.meshes[index] is None:
        posed.skipped[index] = refined.skipped[index] = "no mesh (see report notes)"
    else:
        fresh = worker._estimate_poses(frame, meshes)  # the model sees every object
        posed.poses[index] = fresh.poses[index]
        if index in fresh.skipped:
            posed.skipped[index] = fresh.skipped[index]
        if fresh.hypotheses is not None:
            if posed.hypotheses is None:
                posed.hypotheses = [[p] if p is not None else [] for p in posed.poses]
            posed.hypotheses[index] = fresh.hypotheses[index]
        timer.seconds["pose"] = round(time.perf_counter() - t, 3)
        t = started("refine")
        one = worker._refine_objects(frame, meshes, posed, timer, only=index)
        refined.poses[index] = one.poses[index]
        refined.confidences[index], refined.records[index] = (
            one.confidences[index], one.records[index],
        )  # fmt: skip
        if index in one.skipped:
            refined.skipped[index] = one.skipped[index]
        timer.seconds["refine"] = round(time.perf_counter() - t, 3)
    posed.save(out)
    refined.save(out)
    t = started("export")
    scene = worker._export(out, frame, meshes, refined)
    timer.seconds["export"] = round(time.perf_counter() - t, 3)
    timer.seconds["total"] = round(time.perf_counter() - t0, 3)

    after = snapshot(out)
    written = {str(p.resolve().relative_to(out.resolve())) for p, k in after.items()
               if before.get(p) != k}  # fmt: skip
    for name in STAGES[STAGES.index(stage) :]:
        record = records.stages[name]
        record.setdefault("base_fingerprint", record["fingerprint"])
        record["edits"] = [*record.get("edits", []), edit]
        digest = json.dumps([record["fingerprint"], edit], sort_keys=True, default=str)
        record["fingerprint"] = hashlib.sha256(digest.encode()).hexdigest()
    owner = {"object3d": "object3d", "pose": "pose", "refine": "refine"}
    for name in written:
        top = name.split("/")[0]
        stage_name = owner.get(top, "export")
        if stage_name in records.stages:
            files = set(records.stages[stage_name].get("files", []))
            records.stages[stage_name]["files"] = sorted(files | {name})
    records.save()
    return worker._finish(out, frame, meshes, refined, scene, timer)
