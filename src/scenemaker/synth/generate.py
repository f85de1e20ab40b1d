"""Dataset generation driver: many scenes, resumable, on worker processes.

Layout of the output folder (docs/DATA.md has the full format)::

    OUT/generate.json               settings of the run (a resumed run must match them)
    OUT/manifest.json               dataset summary, rebuilt at the end of every run
    OUT/objects/<source>/<id>/      canonical mesh.ply + samples.npz (shared by scenes)
    OUT/scene_000000/scene.json     poses, cameras, labels, licences, per-view statistics
    OUT/scene_000000/views/         000_rgb.png 000_depth.png 000_instance.png ...
    OUT/scene_000000/amodal.npz     every view's per-object amodal masks (bit-packed)
    OUT/scene_000000/points.npz     every view's per-object observed points (camera frame)

Each scene is built in a hidden temporary folder and renamed into place when complete, so a
killed run never leaves a half-written scene that looks finished; a restarted run skips the
scenes that exist and removes stale temporary folders. Scene ``i`` depends only on
(seed, split, i), never on the number of workers or the order they run in.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from ..io_utils import atomic_write_json, read_json
from ..sources import get_source
from .settings import (
    GENERATE_SCHEMA,
    MANIFEST_SCHEMA,
    SCENE_DIR,
    GenerateConfig,
    GenerationError,
)
from .writer import SceneWriter, summarize_scene

__all__ = ["GenerateConfig", "GenerationError", "generate_dataset", "write_manifest"]


# -- process-pool plumbing -------------------------------------------------------------------

_WRITER: SceneWriter | None = None


def _init_worker(config_dict: dict, out: str, quiet: bool = False) -> None:
    global _WRITER
    if quiet:  # worker processes: the parent reports skipped meshes once, in its summary
        warnings.simplefilter("ignore")
        import signal

        # Ctrl-C goes to the whole process group: the parent decides, workers finish their
        # scene; and a worker dies with its parent instead of lingering (Linux)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
    _WRITER = SceneWriter(GenerateConfig.from_dict(config_dict), Path(out))


def _die_with_parent() -> None:
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _run_scene(index: int) -> tuple[int, dict, dict]:
    assert _WRITER is not None
    summary = _WRITER.build_scene(index)
    return index, summary, dict(_WRITER.skipped)


def _existing_scenes(out: Path) -> dict[int, Path]:
    found = {}
    for path in out.iterdir():
        match = SCENE_DIR.match(path.name)
        if match and (path / "scene.json").is_file():
            found[int(match.group(1))] = path
    return found


def prepare_output(out: Path, config: GenerateConfig) -> None:
    """Create ``out`` (or check that a resumed run uses the same settings) and clean leftovers."""
    if out.exists() and not out.is_dir():
        raise GenerationError(f"{out}: output path is a file, expected a folder")
    out.mkdir(parents=True, exist_ok=True)
    settings = out / "generate.json"
    wanted = {"schema": GENERATE_SCHEMA, "config": config.to_dict()}
    if settings.exists():
        previous = read_json(settings, GENERATE_SCHEMA)
        if _normalise(previous.get("config")) != _normalise(wanted["config"]):
            raise GenerationError(
                f"{out}: holds a dataset made with other settings ({settings}); "
                "use the same settings to resume, or a new --out"
            )
    else:
        if any(SCENE_DIR.match(p.name) for p in out.iterdir()):
            raise GenerationError(f"{out}: holds scenes but no generate.json; use a new --out")
        atomic_write_json(settings, wanted)
    remove_leftovers(out)


def remove_leftovers(out: Path) -> None:
    """Delete what killed workers leave: partial scene folders and shared objects' temp files.

    Call only while no worker writes to ``out`` (before a run starts or after it ends)."""
    for stale in Path(out).glob(".tmp_scene_*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in Path(out).glob("objects/*/*/.*.tmp"):  # ``.samples.npz.XXXX.tmp``
        stale.unlink(missing_ok=True)


def _normalise(value):
    import json

    return json.loads(json.dumps(value, default=list))


def generate_dataset(
    out: str | Path,
    scenes: int,
    config: GenerateConfig | None = None,
    workers: int = 1,
    progress: bool = True,
    ray_address: str | None = None,
) -> dict:
    """Generate (or resume) ``scenes`` scenes into ``out``; returns the run's summary.

    ``ray_address``: run the scenes as Ray tasks (synth/distributed.py): "local" starts a
    local Ray instance with ``workers`` CPUs, "auto" or HOST:PORT joins a running cluster.

    Scenes already complete in ``out`` are kept as they are. Raises GenerationError (or
    FileNotFoundError for a missing objects folder) with a one-line message on bad settings;
    a run that fails before writing any scene leaves no output folder behind.
    """
    import time

    from tqdm.auto import tqdm

    config = config or GenerateConfig()
    config.validate()
    if scenes < 1:
        raise GenerationError(f"scenes must be >= 1, got {scenes}")
    if workers < 1:
        raise GenerationError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    source = get_source(config.objects)  # fail fast on a missing / empty objects folder
    pool = source.all_ids() if config.split == "all" else source.ids(config.split)
    if len(pool) < config.layout.min_objects:
        raise GenerationError(
            f"object source {config.objects!r} has {len(pool)} objects in split "
            f"{config.split!r}; a scene needs at least {config.layout.min_objects} (try --split all)"
        )
    created = not out.exists()
    prepare_output(out, config)
    done = _existing_scenes(out)
    todo = [i for i in range(scenes) if i not in done]
    skipped: dict[str, str] = {}
    start = time.perf_counter()
    bar = tqdm(
        total=scenes, initial=scenes - len(todo), desc="scenes", unit="scene", disable=not progress
    )
    written = 0

    def finished(result) -> None:
        nonlocal written
        skipped.update(result[2])
        written += 1
        bar.update(1)

    try:
        if ray_address is not None and todo:
            from .distributed import run_ray

            run_ray(todo, config, out, workers, ray_address, finished)
        elif workers == 1 or len(todo) <= 1:
            _init_worker(config.to_dict(), str(out))
            for index in todo:
                finished(_run_scene(index))
        else:
            _run_pool(todo, config, out, workers, finished)
    except BaseException:
        if created and not _existing_scenes(out):
            shutil.rmtree(out, ignore_errors=True)  # nothing useful was made: leave nothing
        elif out.exists():
            write_manifest(out, config, skipped)
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    manifest = write_manifest(out, config, skipped)
    manifest["run"] = {
        "scenes_written": written,
        "scenes_kept": scenes - len(todo),
        "seconds": round(elapsed, 2),
        "views_per_second": round(written * config.views.views / elapsed, 2) if written else None,
    }
    return manifest


def _run_pool(todo: list[int], config: GenerateConfig, out: Path, workers: int, finished) -> None:
    """Run scenes on worker processes, at most 2 per worker in flight, so that an
    interruption or an error stops the run within about one scene's time."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    # not fork: a parent that rendered holds an EGL context (and llvmpipe threads) that a
    # forked child cannot use
    executor = ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(config.to_dict(), str(out), True),
    )
    pending = iter(todo)
    running = set()
    try:
        while True:
            while len(running) < 2 * workers:
                index = next(pending, None)
                if index is None:
                    break
                running.add(executor.submit(_run_scene, index))
            if not running:
                break
            complete, running = wait(running, return_when=FIRST_COMPLETED)
            for future in complete:
                finished(future.result())
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def write_manifest(out: Path, config: GenerateConfig, skipped: dict[str, str]) -> dict:
    """Rebuild ``manifest.json`` from the complete scenes in ``out``."""
    manifest_path = out / "manifest.json"
    previous_skipped = {}
    if manifest_path.exists():
        try:
            previous_skipped = read_json(manifest_path, MANIFEST_SCHEMA).get("skipped_meshes", {})
        except ValueError:
            previous_skipped = {}
    scenes, objects = [], {}
    for _index, path in sorted(_existing_scenes(out).items()):
        payload = read_json(path / "scene.json")
        scenes.append(summarize_scene(payload))
        for o in payload["objects"]:
            objects[f"{o['source']}/{o['object_id']}"] = {
                "source": o["source"],
                "label": o["label"],
                "licence": o["licence"],
                "mesh_file": os.path.normpath(os.path.join(path.name, o["mesh_file"])),
            }
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "config": config.to_dict(),
        "scenes": scenes,
        "objects": dict(sorted(objects.items())),
        "skipped_meshes": {**previous_skipped, **skipped},
    }
    atomic_write_json(manifest_path, manifest)
    return manifest
