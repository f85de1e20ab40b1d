"""SceneMakerPipeline: one photo (or RGB-D frame) in, one 3D scene out.

Stages (ARCHITECTURE.md): perception -> deocclusion -> object3d -> pose -> refine -> export.
Each stage writes its result under the output folder and can be read back, so
``run(..., from_stage="pose")`` re-runs the pose stage and what follows on saved results:

    out/
      config.json                 resolved settings of every stage
      input/image.png             the image as used (EXIF-rotated, RGB, maybe downscaled)
      perception/masks.png        label PNG: 0 background, k = object k (1-based), for viewing
      perception/masks.npy        the masks without loss (overlaps kept; packed bits): read back
      perception/objects.json     labels and detector scores
      perception/depth.npy        float32 metres (0 = invalid), + depth.png (uint16 mm) to view
      perception/intrinsics.json  K (pixels), image size, where K came from
      deocclusion/object_XX_{input,visible,amodal,mask}.png, deocclusion/crops.json
      object3d/object_XX.glb      canonical mesh per object, object3d/objects.json
      pose/poses.json             camera-frame (OpenCV) pose per object, or why it is missing, and
                                  the pose model's whole hypothesis pool (``hypotheses``)
      refine/poses.json           refined poses; per object its score, top alternatives and
                                  confidence (render-and-compare refiner)
      scene.json, scene.glb       the scene (world = the camera's OpenGL axes: x right, y up,
                                  camera at the origin looking down -z)
      masks/object_XX.png         visible mask of each placed object (scene.json mask_file)
      report.json                 per-stage seconds, notes, skipped objects
      report.html                 all of it on one self-contained page (report_page.py)

A failed run leaves no half-written file: every file is written to a temporary name and
renamed, and ``scene.glb`` / ``scene.json`` are written last.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BackendError, InputError
from .io_utils import atomic_write_json
from .object_records import object_records
from .pipeline_config import DTYPES, PIPELINE_SCHEMA, STAGES, PipelineConfig  # noqa: F401
from .scene import Scene
from .scene_assembly import build_scene
from .stage_io import read_png, snapshot, write_png
from .stage_outputs import (
    Deocclusion,
    Frame,
    Object3D,
    Perception,
    Poses,
    Refinement,
)
from .stage_timing import StageTimer, peak_rss_mb, reset_peak_rss


@dataclass
class RunResult:
    """What :meth:`SceneMakerPipeline.run` made: the scene (as saved in ``scene.json`` /
    ``scene.glb``), the report (``report.json``) and the output folder."""

    scene: Scene
    report: dict
    out: Path


class SceneMakerPipeline:
    """Chains the stages; backends are built by name from :class:`PipelineConfig` or injected
    (``segmenter=``, ``depth_estimator=``, ...) as objects implementing the stage protocol."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        progress: bool = True,
        on_stage=None,
        **backends,
    ):
        """``on_stage(name, index, count)`` is called as each stage that runs starts (e.g. a
        progress bar in the app)."""
        self.config = config or PipelineConfig()
        self.progress = progress
        self.on_stage = on_stage
        self._backends = backends
        self._image_scale = None  # (original size, used size) when the image was downscaled

    # ------------------------------------------------------------------ backends
    def backend(self, kind: str):
        if kind not in self._backends:
            from .backends import build_backend

            self._backends[kind] = build_backend(kind, self.config)
            if hasattr(self._backends[kind], "show_progress"):  # e.g. the library build
                self._backends[kind].show_progress = self.progress
        return self._backends[kind]

    def _objects(self, stage: str, items):
        """enumerate(items) with a per-object progress bar (none with progress=False)."""
        from tqdm.auto import tqdm

        items = list(items)
        bar = tqdm(enumerate(items), total=len(items), desc=f"  {stage}", unit="object",
                   disable=not self.progress or len(items) < 2, leave=False)  # fmt: skip
        yield from bar

    def _log(self, message: str) -> None:
        if self.progress:
            from rich.console import Console

            Console(stderr=True, highlight=False).print(message)

    # ------------------------------------------------------------------ run
    def run(
        self,
        image: str | Path | np.ndarray,
        out: str | Path,
        from_stage: str = "perception",
        extra: list[dict] | None = None,
    ) -> RunResult:
        """Run the stages from ``from_stage`` on; returns a :class:`RunResult` (the scene and
        the report, also saved as ``scene.json`` and ``report.json``).

        ``extra``: per-object side information for backends that need it (the oracle's
        ground-truth meshes), in the order of the masks."""
        if from_stage not in STAGES:
            raise ValueError(f"from_stage must be one of {', '.join(STAGES)}, got {from_stage!r}")
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: output path is a file, expected a folder")
        start = STAGES.index(from_stage)
        self.config.validate()
        from .stage_records import StageRecords, fingerprints, image_identity

        records = StageRecords.load(out, strict=start > 0)
        if start > 0 and image is None:  # the saved image stands
            digest = records.stages.get("perception", {}).get("image")
        else:
            digest = image_identity(image)
        expected = fingerprints(self.config, digest)
        if start > 0:  # the saved stages must be what this run would have made
            records.check_reusable(from_stage, expected, STAGES)
        refiner = self.backend("refiner")
        if hasattr(refiner, "check"):  # e.g. no OpenGL: say so before any work is done
            refiner.check()
        if hasattr(refiner, "warm") and start <= STAGES.index("refine"):
            refiner.warm()  # its worker processes start while the other stages run
        if not out.exists():  # a run that stops before any stage finished leaves nothing
            out.mkdir(parents=True)
            try:
                return self._run(image, out, start, records, expected, extra)
            except BaseException:
                if not records.stages:
                    import shutil

                    shutil.rmtree(out, ignore_errors=True)
                raise
        return self._run(image, out, start, records, expected, extra)

    def _run(self, image, out: Path, start: int, records, expected, extra) -> RunResult:
        from_stage = STAGES[start]
        timer = StageTimer()
        earlier = None
        if start > 0 and (out / "config.json").is_file():
            earlier = json.loads((out / "config.json").read_text())
            if isinstance(earlier, dict):
                earlier.pop("earlier_stages", None)
        for stale in ("scene.glb", "scene.json", "scene.usda", "report.json", "report.html"):
            (out / stale).unlink(missing_ok=True)  # never leave a result of older settings
        # what the previous run recorded for the stages about to run goes (nothing else)
        records.forget(STAGES[start:])
        records.save()
        config = self.config.to_dict()
        if earlier is not None:  # the saved stages before from_stage came from these settings
            config["from_stage"] = from_stage
            config["earlier_stages"] = earlier
        atomic_write_json(out / "config.json", config)

        t0 = time.perf_counter()
        before = snapshot(out)
        if start == 0:
            rgb, notes = self._load_image(image)
            timer.notes += notes
            write_png(out / "input" / "image.png", rgb)
        else:
            rgb = read_png(out / "input" / "image.png")[..., :3]

        def stage(name, fn, loader):
            nonlocal before
            if STAGES.index(name) < start:
                return loader()
            t = time.perf_counter()
            self._log(f"[bold]{name}[/bold] ...")
            if self.on_stage is not None:
                self.on_stage(name, STAGES.index(name), len(STAGES))
            reset_peak_rss()
            result = fn()
            timer.seconds[name] = round(time.perf_counter() - t, 3)
            timer.peak_rss_mb[name] = peak_rss_mb()
            self._log(f"  {name}: {timer.seconds[name]:.2f} s")
            after = snapshot(out)
            written = [p for p, key in after.items() if before.get(p) != key]
            records.finished(name, expected, written)
            before = after  # stages.json, written meanwhile, is not in a snapshot
            return result

        perceived = stage(
            "perception", lambda: self._perception(rgb, out, timer), lambda: Perception.load(out)
        )
        frame = perceived.frame(rgb)  # every later stage reads this one frame
        if len(frame) == 0:
            timer.notes.append("no object detected: the scene is empty")
        amodal = stage(
            "deocclusion",
            lambda: self._deocclusion(frame, out),
            lambda: Deocclusion.load(out, frame),
        )
        meshes = stage(
            "object3d",
            lambda: self._object3d(frame, amodal, out, extra, timer),
            lambda: Object3D.load(out, frame),
        )
        posed = stage(
            "pose", lambda: self._pose(frame, meshes, out), lambda: Poses.load(out, frame)
        )
        refined = stage(
            "refine",
            lambda: self._refine(frame, meshes, posed, out, timer),
            lambda: Refinement.load(out, frame),
        )
        scene = stage("export", lambda: self._export(out, frame, meshes, refined), lambda: None)
        timer.seconds["total"] = round(time.perf_counter() - t0, 3)
        return self._finish(out, frame, meshes, refined, scene, timer)

    def _finish(self, out: Path, frame, meshes, refined, scene, timer) -> RunResult:
        """report.json and report.html of a finished run."""
        report = {
            "schema": "scenemaker.report/1",
            "objects": len(frame),
            "placed": sum(p is not None for p in refined.poses),
            "skipped": {str(k): v for k, v in refined.skipped.items()},
            "seconds": dict(timer.seconds),
            "peak_rss_mb": timer.peak_rss_mb,
            "notes": timer.notes,
            "per_object": [r.to_dict() for r in object_records(frame, meshes, refined)],
            "backends": {
                k: getattr(self._backends.get(k), "name", None) for k in sorted(self._backends)
            },
        }
        report["notes"] += (scene.metadata.get("colour") or {}).get("notes", [])
        from .report_page import report_page_notes  # report.html: a failure is only a note

        report["notes"] += report_page_notes(out, scene, report)
        atomic_write_json(out / "report.json", report)
        return RunResult(scene, report, out)

    def is_finished(self, image, out: str | Path) -> bool:
        """Whether ``out`` holds a finished run of ``image`` with exactly these settings and
        input files (a batch skips it)."""
        from .stage_records import StageRecords, fingerprints, image_identity

        out = Path(out)
        if not ((out / "scene.json").is_file() and (out / "report.json").is_file()):
            return False
        records = StageRecords.load(out, strict=False)
        return records.is_current(fingerprints(self.config, image_identity(image)))

    # ------------------------------------------------------------------ stages
    def _load_image(self, image) -> tuple[np.ndarray, list[str]]:
        self._image_scale = None
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InputError(f"image array must be (H, W, 3) uint8, got {image.shape}")
            return image, []
        from .perception.inputs import load_image

        loaded = load_image(image, max_side=self.config.max_side)
        self._image_scale = (loaded.original_size, loaded.rgb.shape[1::-1])
        return loaded.rgb, list(loaded.notes)

    def _perception(self, rgb, out: Path, timer: StageTimer) -> Perception:
        h, w = rgb.shape[:2]
        depth_map = self.backend("depth").estimate(rgb, self._known_K(w, h))
        if depth_map.depth.shape != (h, w):
            raise InputError(
                f"depth is {depth_map.depth.shape[1]}x{depth_map.depth.shape[0]} but the image "
                f"is {w}x{h} (expected the same size)"
            )
        found = self.backend("segmenter").segment(rgb, self.config.prompt)
        if found.masks.shape[1:] != (h, w) and len(found):
            raise InputError(
                f"masks are {found.masks.shape[2]}x{found.masks.shape[1]} but the image is "
                f"{w}x{h} (expected the same size)"
            )
        result = Perception(
            list(found.masks), list(found.labels), list(found.scores), depth_map.depth,
            np.asarray(depth_map.K, dtype=np.float64),
        )  # fmt: skip
        timer.notes += result.save(out)
        return result

    def _known_K(self, width: int, height: int):
        from .perception.inputs import parse_intrinsics, scale_intrinsics

        K = parse_intrinsics(self.config.K, self.config.fov, *self._original_size(width, height))
        if K is not None and self._image_scale is not None:
            K = scale_intrinsics(K, *self._image_scale)
        return K

    def _original_size(self, width, height):
        return self._image_scale[0] if self._image_scale is not None else (width, height)

    def _deocclusion(self, frame: Frame, out: Path) -> Deocclusion:
        from .deocclusion.base import make_crop, occluders_in_front

        deoccluder = self.backend("deoccluder")
        crops = []
        for k, (mask, label) in self._objects(
            "deocclusion", zip(frame.masks, frame.labels, strict=True)
        ):
            crop = make_crop(
                frame.rgb, mask, label, occluders=occluders_in_front(frame.masks, k, frame.depth)
            )
            crops.append(deoccluder.complete(crop))
        result = Deocclusion(crops)
        result.save(out)
        return result

    def _object3d(self, frame: Frame, amodal: Deocclusion, out: Path, extra, timer) -> Object3D:
        generator = self.backend("generator")
        result = Object3D([None] * len(frame), [None] * len(frame))
        for k, crop in self._objects("object3d", amodal.crops):
            result.meshes[k], result.errors[k] = self._generate(generator, frame, crop, k, extra)
            if result.meshes[k] is None:
                timer.notes.append(f"object {k}: no mesh ({result.errors[k]})")
                continue
            result.save_mesh(out, k)
        if len(frame) and not result.have():  # nothing to place: say why, stop
            raise BackendError(f"no object got a mesh: {result.errors[0]}")
        result.save(out, meshes_written=True)
        return result

    def _generate(self, generator, frame: Frame, crop, k: int, extra):
        """(mesh, None), or (None, why) when the generator failed for this object only."""
        from .object3d import ObjectObservation

        points = frame.points(k, 1024, self.config.seed) if frame.masks[k].any() else None
        obs = ObjectObservation(
            k, frame.labels[k], frame.masks[k],
            points if points is not None else np.zeros((0, 3)), frame.K,
            extra=(extra[k] if extra else {}),
        )  # fmt: skip
        try:
            return generator.generate(crop, obs), None
        except InputError:  # a setting that cannot work for any object: stop here
            raise
        except (ValueError, BackendError) as exc:  # this object only
            return None, (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _pose(self, frame: Frame, meshes: Object3D, out: Path) -> Poses:
        result = self._estimate_poses(frame, meshes)
        result.save(out)
        return result

    def _estimate_poses(self, frame: Frame, meshes: Object3D) -> Poses:
        # objects without a mesh (their generator failed) are left out of pose estimation
        have = meshes.have()
        result = Poses([None] * len(frame), {k: "no mesh (see report notes)"
                                             for k in range(len(frame)) if k not in have})  # fmt: skip
        if have:
            estimator = self.backend("pose")
            if getattr(estimator, "name", "") == "initial":
                found = estimator.estimate(frame.subset(have), [meshes.meshes[k] for k in have])
            else:
                found = estimator.estimate(
                    frame.subset(have), [meshes.meshes[k].mesh for k in have]
                )
            for j, k in enumerate(have):
                result.poses[k] = found.poses[j]
            result.skipped.update({have[j]: why for j, why in found.skipped.items()})
            if found.hypotheses is not None:
                result.hypotheses = [[] for _ in range(len(frame))]
                for j, k in enumerate(have):
                    result.hypotheses[k] = list(found.hypotheses[j])
        return result

    def _refine(self, frame: Frame, meshes: Object3D, posed: Poses, out: Path, timer) -> Refinement:
        result = self._refine_objects(frame, meshes, posed, timer)
        result.save(out)
        return result

    def _refine_objects(
        self, frame: Frame, meshes: Object3D, posed: Poses, timer, only: int | None = None
    ) -> Refinement:
        """Refined poses of every object with a mesh (``only``: of that object alone; the
        others, still seen in the frame, keep no refined pose in the result)."""
        have = meshes.have()
        result = Refinement([None] * len(frame), dict(posed.skipped))
        if not have:
            return result
        refiner = self.backend("refiner")
        observation = frame.subset(have)
        sub_poses = [posed.poses[k] for k in have]
        sub_meshes = [meshes.meshes[k].mesh for k in have]
        if hasattr(refiner, "refine_detailed"):
            pool = None if posed.hypotheses is None else [posed.hypotheses[k] for k in have]
            import inspect

            from tqdm.auto import tqdm

            accepts = inspect.signature(refiner.refine_detailed).parameters
            count = len(have) if only is None else 1
            with tqdm(total=count, desc="  refine", unit="object", leave=False,
                      disable=not self.progress or count < 2) as bar:  # fmt: skip
                kwargs = {}
                if "on_object" in accepts:
                    kwargs["on_object"] = bar.update
                if only is not None and "only" in accepts:
                    kwargs["only"] = [have.index(only)]
                if "alternatives" in accepts:  # other candidate meshes (--mesh-candidates)
                    kwargs["alternatives"] = [
                        [a.mesh for a in meshes.meshes[k].alternatives] for k in have
                    ]
                details = refiner.refine_detailed(
                    sub_poses, sub_meshes, observation, pool, **kwargs
                )
            for j, k in enumerate(have):
                if only is not None and k != only:
                    continue
                result.poses[k] = details[j].pose
                result.confidences[k] = details[j].confidence
                result.records[k] = details[j].to_dict()
                if details[j].note:
                    timer.notes.append(f"object {k}: refinement: {details[j].note}")
        else:
            points = [
                frame.points(k, 1024, self.config.seed) if frame.masks[k].any() else None
                for k in have
            ]
            refined = refiner.refine(sub_poses, sub_meshes, points, observation)
            for j, pose in enumerate(refined):
                if only is None or have[j] == only:
                    result.poses[have[j]] = pose
        return result

    def _export(self, out: Path, frame: Frame, meshes: Object3D, refined: Refinement):
        h, w = frame.depth.shape
        placed = refined.placed_meshes(meshes.meshes)  # stretched where the refiner stretched
        scene = build_scene(
            w, h, frame.K, frame.labels, placed, refined.poses, refined.skipped,
            refined.confidences,
        )  # fmt: skip
        refined.save_meshes(out, placed)
        label_png = read_png(out / "perception" / "masks.png")
        for obj in scene.objects:
            index = obj.instance_id - 2
            if refined.stretch(index) is not None:  # the refiner fitted its proportions
                obj.mesh_file = Refinement.mesh_file(index)
            else:  # the candidate mesh the refiner chose
                obj.mesh_file = Object3D.mesh_file(index, refined.choice(index))
            obj.mask_file = f"masks/object_{index:02d}.png"
            write_png(out / obj.mask_file, ((label_png == index + 1) * 255).astype(np.uint8))
        from .colour import colour_scene  # photo colours baked into textures; never raises

        colour_scene(scene, frame.rgb, out)  # what it skipped and why: scene.metadata["colour"]
        if self.config.usd:
            from .export_usd import export_usd

            export_usd(scene, out / "scene.usda")
        scene.export_glb(out / "scene.glb")
        scene.save_json(out / "scene.json")  # last: with report.json, marks a finished run
        return scene
