"""De-occlusion training triplets from rendered scenes: (occluded crop, prompt, complete target).

``build_triplets(scenes, out)`` reads scene folders written by ``scenemaker data generate`` and
writes::

    OUT/triplets/<id>_input.png    the occluded crop as the pipeline makes it (``make_crop``:
                                   square around the VISIBLE mask's box, box at 70%, white
                                   where not visible)
    OUT/triplets/<id>_target.png   the complete object in the same crop box, on white
    OUT/triplets/<id>_visible.png  crop-space visible mask (0 / 255)
    OUT/triplets/<id>_amodal.png   crop-space complete (amodal) mask (0 / 255)
    OUT/manifest.jsonl             one JSON record per triplet (``Triplet.record``)
    OUT/summary.json               counts per mask type and occlusion bin, skips, settings
    OUT/contact_sheet.png          input | target pairs for a sample

Mask types, the balancing rule and the mix: ``triplets.py``; candidates per scene:
``triplet_candidates.py``; targets (the object re-rendered alone with the view's camera, the
light the generator stored in ``scene.json`` and the object's colour): ``triplet_targets.py``;
reading the folder: ``triplet_dataset.TripletDataset``. Everything is deterministic for a
seed, whatever the order of the scene folders.

Resuming: a triplet listed in the manifest with its four files present is not redone; the
manifest is rewritten atomically after each scene; files of triplets no longer selected
(e.g. after adding scenes) are removed at the end. A rerun must use the same settings.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_bytes, atomic_write_json, read_json
from .base import BOX_RATIO, CROP_SIZE
from .triplet_candidates import (
    FULLY_VISIBLE,
    MIN_TARGET_PIXELS,
    SYNTHETIC_RANGE,
    Renderers,
    SourceScene,
    plan_scene,
    seeded_rng,
)
from .triplet_dataset import read_manifest
from .triplet_targets import write_scene_triplets
from .triplets import BIN_LABELS, FILES, MASK_TYPES, SCHEMA, normalise_mix, select_triplets


def _find_scenes(paths) -> list[tuple[str, Path]]:
    """(key, folder) of every scene under the given dataset folders or scene folders."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found = {}
    for root in map(Path, paths):
        if (root / "scene.json").is_file():
            folders = [root]
        elif root.is_dir():
            folders = [p for p in sorted(root.glob("scene_*")) if (p / "scene.json").is_file()]
            if not folders:
                raise ValueError(f"{root}: no scenes (scene_*/scene.json) in this folder")
        else:
            raise FileNotFoundError(f"{root}: scenes folder not found")
        for folder in folders:
            parent = re.sub(r"[^A-Za-z0-9_.]+", "_", folder.resolve().parent.name) or "scenes"
            key = f"{parent}-{folder.name}"
            if key in found and found[key].resolve() != folder.resolve():
                raise ValueError(
                    f"scenes {found[key]} and {folder} would share the triplet id prefix {key!r}: "
                    "rename one of their dataset folders"
                )
            found[key] = folder
    return sorted(found.items())


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data)


def _manifest_bytes(lines: dict[str, str], done: set[str]) -> bytes:
    """The manifest: one JSON line per finished triplet, in selection (id) order."""
    return "".join(line for key, line in lines.items() if key in done).encode()


def build_triplets(
    scenes: list[Path] | Path,
    out: Path,
    mix: dict | None = None,
    size: int = CROP_SIZE,
    seed: int = 0,
    max_per_scene: int | None = None,
    progress: bool = True,
    balance_factor: float | None = 2.0,
) -> dict:
    """Build (or resume) de-occlusion triplets from scene folders; returns the summary.

    ``scenes``: dataset folders (holding ``scene_*/``) or scene folders. ``mix``: share per
    mask type (default ``DEFAULT_MIX``). ``max_per_scene``: at most this many candidates per
    scene (random subset) before balancing. ``balance_factor``: bin cap as a multiple of the
    smallest non-empty bin (None: no balancing). See the module docstring for the rest.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    mix = normalise_mix(mix)
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if max_per_scene is not None and (not isinstance(max_per_scene, int) or max_per_scene < 1):
        raise ValueError(f"max_per_scene must be None or an integer >= 1, got {max_per_scene!r}")
    if balance_factor is not None and not balance_factor >= 1:
        raise ValueError(f"balance_factor must be None or >= 1, got {balance_factor!r}")
    folders = _find_scenes(scenes)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path is a file, expected a folder")
    settings = {
        "mix": mix,
        "size": size,
        "seed": seed,
        "max_per_scene": max_per_scene,
        "balance_factor": balance_factor,
        "box_ratio": BOX_RATIO,
        "fully_visible": FULLY_VISIBLE,
        "min_target_pixels": MIN_TARGET_PIXELS,
        "synthetic_range": list(SYNTHETIC_RANGE),
    }
    summary_path = out / "summary.json"
    failed = {}
    if summary_path.is_file():
        previous = read_json(summary_path, SCHEMA)
        if previous.get("settings") != settings:
            raise ValueError(
                f"{out}: holds triplets made with other settings ({summary_path}); use the "
                "same settings to resume, or a new --out"
            )
        failed = dict(previous.get("failed", {}))
    else:
        atomic_write_json(summary_path, {"schema": SCHEMA, "settings": settings, "seed": seed})
    (out / "triplets").mkdir(parents=True, exist_ok=True)

    renderers = Renderers()
    candidates, skipped, dropped = [], Counter(), Counter()
    try:
        for key, folder in tqdm(folders, desc="planning", unit="scene", disable=not progress):
            try:
                found, reasons = plan_scene(SourceScene(folder, key, renderers), mix, size, seed)
            except (OSError, ValueError, KeyError, IndexError) as exc:
                warnings.warn(f"skipping scene {folder}: {exc}", stacklevel=2)
                skipped["scene_unreadable"] += 1
                continue
            skipped.update(reasons)
            if max_per_scene is not None and len(found) > max_per_scene:
                keep = seeded_rng(seed, key, "max_per_scene").permutation(len(found))[
                    :max_per_scene
                ]
                dropped["max_per_scene"] += len(found) - max_per_scene
                found = [found[i] for i in sorted(keep)]
            candidates += found
        selected, selection_dropped, unavailable = select_triplets(
            candidates, mix, balance_factor, seed
        )
        dropped.update(selection_dropped)
        selected_ids = {t.id for t in selected}
        failed = {i: r for i, r in failed.items() if i in selected_ids}
        previous = read_manifest(out)
        done = {
            t.id
            for t in selected
            if t.id in previous
            and all((out / "triplets" / f"{t.id}_{k}.png").is_file() for k in FILES)
        }
        lines = {t.id: json.dumps(t.record()) + "\n" for t in selected}
        written = 0
        bar = tqdm(
            total=len(selected), initial=len(done) + len(failed), desc="triplets", unit="triplet",
            disable=not progress,
        )  # fmt: skip
        by_scene = defaultdict(list)
        for t in selected:
            by_scene[t.scene].append(t)
        folder_of = dict(folders)
        for key, triplets in sorted(by_scene.items()):
            todo = [t for t in triplets if t.id not in done and t.id not in failed]
            if todo:
                try:
                    new_failures = write_scene_triplets(
                        SourceScene(folder_of[key], key, renderers), todo, out, size, seed, bar
                    )
                except (OSError, ValueError) as exc:
                    warnings.warn(f"skipping scene {folder_of[key]}: {exc}", stacklevel=2)
                    new_failures = {t.id: "scene_unreadable" for t in todo}
                failed.update(new_failures)
                finished = [t.id for t in todo if t.id not in new_failures]
                done.update(finished)
                written += len(finished)
            _write_if_changed(out / "manifest.jsonl", _manifest_bytes(lines, done))
        bar.close()
    finally:
        renderers.release()

    records = [t.record() for t in selected if t.id in done]
    _write_if_changed(out / "manifest.jsonl", _manifest_bytes(lines, done))
    removed = _remove_orphans(out, {r["id"] for r in records})
    skipped.update(Counter(failed.values()))
    kept = [t for t in selected if t.id in done]
    summary = {
        "schema": SCHEMA,
        "triplets": len(kept),
        "scenes": len(folders),
        "mask_types": {k: sum(t.mask_type == k for t in kept) for k in MASK_TYPES},
        "occlusion_bins": {b: sum(t.bin == i for t in kept) for i, b in enumerate(BIN_LABELS)},
        "occlusion_bins_by_type": {
            k: {
                b: sum(t.bin == i and t.mask_type == k for t in kept)
                for i, b in enumerate(BIN_LABELS)
            }
            for k in MASK_TYPES
        },
        "candidates": {k: sum(c.mask_type == k for c in candidates) for k in MASK_TYPES},
        "skipped": dict(sorted(skipped.items())),
        "dropped": dict(sorted(dropped.items())),
        "handled": {"label_cleaned": sum(t.label_cleaned for t in kept)},
        "mix_unavailable": unavailable,
        "failed": dict(sorted(failed.items())),
        "settings": settings,
        "seed": seed,
    }
    _write_if_changed(summary_path, json.dumps(summary, indent=1).encode())
    sheet = out / "contact_sheet.png"
    if records and (written or removed or not sheet.is_file()):
        contact_sheet(out, records, sheet, seed=seed)
    elif not records:
        sheet.unlink(missing_ok=True)
    run = {
        "written": written,
        "kept": len(kept) - written,
        "removed": removed,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return {**summary, "run": run}


def _remove_orphans(out: Path, keep: set[str]) -> int:
    """Delete triplet files not in ``keep`` (no longer selected) and stale temporary files."""
    removed = 0
    for path in (out / "triplets").iterdir():
        name = path.name
        stem, _, kind = (
            name[: -len(".png")].rpartition("_") if name.endswith(".png") else ("", "", "")
        )
        stale_tmp = name.startswith(".") and name.endswith(".tmp")
        if stale_tmp or (kind in FILES and stem not in keep):
            path.unlink(missing_ok=True)
            removed += not stale_tmp
    return removed


def contact_sheet(
    out: Path, records: list[dict], path: Path, seed: int = 0, pairs: int = 16
) -> Path:
    """Input | target pairs for a random sample of triplets (tiles at most 128 px)."""
    from PIL import Image

    from ..synth.images import encode_png

    rng = np.random.default_rng(seed)
    sample = [records[i] for i in sorted(rng.permutation(len(records))[:pairs])]
    tiles = []
    for record in sample:
        pair = []
        for key in ("input", "target"):
            with Image.open(out / record[key]) as image:
                side = min(128, image.width)
                pair.append(np.asarray(image.convert("RGB").resize((side, side))))
        tiles.append(np.concatenate([pair[0], np.full((side, 2, 3), 128, np.uint8), pair[1]], 1))
    columns = min(4, len(tiles))
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (h + 6), columns * (w + 6), 3), 60, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * (h + 6) + 3 : r * (h + 6) + 3 + h, c * (w + 6) + 3 : c * (w + 6) + 3 + w] = tile
    atomic_write_bytes(path, encode_png(sheet, compress_level=6))
    return path


__all__ = ["build_triplets", "contact_sheet"]
