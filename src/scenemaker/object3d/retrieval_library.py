"""The retrieval library: which meshes it holds, their descriptors built once and cached.

The library holds the objects of the chosen sources' split (default: ``procedural`` +
``pybullet``, ``train``; never ``test``, so benchmarks on test-split objects can never retrieve
their own mesh). Each mesh is described once (:mod:`.retrieval_descriptors`) and the
descriptors cached as one NPZ under :func:`library_cache_dir`, named by a hash of what went
into it (sources, ids, split, view grid, ``CACHE_VERSION``). Large libraries are described in
worker processes (``python -m`` this module).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendError
from .retrieval_descriptors import (
    DESCRIPTOR_FIELDS,
    SAMPLES,
    SIL,
    VIEW_ELEVATIONS,
    VIEW_YAWS,
    describe_mesh,
)

CACHE_VERSION = 1
"""Bump whenever descriptors change: old cache files are then simply not found."""
DEFAULT_SOURCES = ("procedural", "pybullet")


def library_cache_dir() -> Path:
    """``$SCENEMAKER_CACHE/retrieval`` or ``~/.cache/scenemaker/retrieval``."""
    root = os.environ.get("SCENEMAKER_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "scenemaker") / "retrieval"


def normalise_label(label: str) -> str:
    """``"Table_Lamp"`` -> ``"table lamp"`` (procedural labels use spaces)."""
    return " ".join(str(label).lower().replace("_", " ").replace("-", " ").split())


@dataclass
class Library:
    """Descriptors of the library meshes, arrays indexed by mesh (M meshes, V views)."""

    keys: np.ndarray  # (M,) "source/object_id"
    source_index: np.ndarray  # (M,) index into the generator's source specs
    labels: np.ndarray  # (M,) normalised labels
    size_range: np.ndarray  # (M, 2) plausible longest side, metres
    silhouettes: np.ndarray  # (M, V, SIL*SIL/8) uint8, packed bits
    aspects: np.ndarray  # (M, V) silhouette box width / height
    extents: np.ndarray  # (M, V, 2) projected width, height in canonical units
    reliefs: np.ndarray  # (M, V)
    samples: np.ndarray  # (M, SAMPLES, 3) float16, canonical frame
    normals: np.ndarray  # (M, SAMPLES, 3) float16

    def __len__(self) -> int:
        return len(self.keys)

    def to_npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **vars(self))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path: Path) -> Library:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def spread(ids: list[str], count: int | None) -> list[str]:
    """``count`` ids evenly spread over ``ids`` (all of them when None)."""
    if count is None or count >= len(ids):
        return list(ids)
    if count < 1:
        raise ValueError(f"max_per_source must be >= 1 or None, got {count}")
    picks = np.unique(np.linspace(0, len(ids) - 1, count).round().astype(int))
    return [ids[i] for i in picks]


def plan_library(
    specs: list[str], split: str, max_per_source: int | None
) -> list[tuple[str, object, list[str]]]:
    """(spec, source, library ids) per source spec; checks no test-split id is among them."""
    from ..sources import get_source, split_of

    plan = []
    for spec in specs:
        source = get_source(spec)
        ids = spread(source.ids(split), max_per_source)
        leaked = [i for i in ids if split_of(i, source.name) == "test"]
        if leaked:  # a guard, not an assert: it must hold under python -O too
            raise RuntimeError(f"test-split objects in the retrieval library: {leaked[:3]}")
        plan.append((spec, source, ids))
    return plan


def describe_objects(items: list[tuple[str, str]], on_item=None) -> dict[str, np.ndarray]:
    """Load and describe ``(source spec, object id)`` pairs; unreadable meshes are skipped.

    Returns the stacked descriptors plus ``item`` (index into ``items`` of each row),
    ``labels`` and ``size_range``."""
    from ..sources import MeshError, get_source

    sources: dict = {}
    rows = []
    for i, (spec, object_id) in enumerate(items):
        if spec not in sources:
            sources[spec] = get_source(spec)
        try:
            asset = sources[spec].load(object_id)
        except (MeshError, KeyError):
            asset = None
        if asset is not None:
            rows.append((i, asset.label, asset.size_range, describe_mesh(asset.mesh)))
        if on_item is not None:
            on_item()
    if not rows:
        return {"item": np.zeros(0, dtype=np.int64)}
    out = {
        "item": np.array([r[0] for r in rows], dtype=np.int64),
        "labels": np.array([normalise_label(r[1]) for r in rows]),
        "size_range": np.array([r[2] for r in rows], dtype=np.float64),
    }
    out.update({name: np.stack([r[3][name] for r in rows]) for name in DESCRIPTOR_FIELDS})
    return out


def _describe_in_workers(items: list[tuple[str, str]], workers: int, bar=None) -> list[dict]:
    """:func:`describe_objects` in ``workers`` subprocesses (``python -m`` this module), not a
    multiprocessing pool: the caller's script needs no ``__main__`` guard, and no forked copy
    of a parent holding GL / torch threads runs."""
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # so `-m scenemaker...` resolves
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    parts = []
    with tempfile.TemporaryDirectory(prefix="scenemaker-retrieval-") as tmp:
        running = []
        ticks = [Path(tmp) / f"{w}.progress" for w in range(workers)]  # a byte per object
        for w in range(workers):
            job, out, log = (Path(tmp) / name for name in (f"{w}.json", f"{w}.npz", f"{w}.log"))
            job.write_text(json.dumps(items[w::workers]))
            with open(log, "wb") as stderr:
                command = [sys.executable, "-m", __name__, str(job), str(out), str(ticks[w])]
                process = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=stderr, env=env
                )
            running.append((w, process, out, log))
        while any(process.poll() is None for _, process, _, _ in running):
            if bar is not None:
                done = sum(t.stat().st_size for t in ticks if t.exists())
                bar.update(done - bar.n)
            time.sleep(0.25)
        for w, process, out, log in running:
            if process.wait() != 0:
                lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
                raise BackendError(f"retrieval library worker failed: {lines[-1]}")
            with np.load(out, allow_pickle=False) as data:
                part = {key: data[key] for key in data.files}
            part["item"] = np.arange(len(items))[w::workers][part["item"]]
            parts.append(part)
    return parts


def library_cache_path(plan: list, split: str, cache_dir: Path) -> Path:
    """The NPZ file of this library: named by its sources and split and a hash of all that
    went into it."""
    manifest = {
        "version": CACHE_VERSION,
        "split": split,
        "views": [np.degrees(VIEW_YAWS).round(3).tolist(),
                  np.degrees(VIEW_ELEVATIONS).round(3).tolist(), SIL, SAMPLES],
        "sources": [[spec, source.name, ids] for spec, source, ids in plan],
    }  # fmt: skip
    key = hashlib.sha1(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    names = "+".join(source.name for _, source, _ in plan)
    return Path(cache_dir) / f"library-{names}-{split}-{key}.npz"


def build_library(
    plan: list, split: str, workers: int | None = None, progress: bool = False
) -> Library:
    """Describe every planned mesh (``workers`` processes; default up to 8, one per core,
    beyond 64 meshes, else 1), rows in plan order; ``progress``: a bar of objects described."""
    from tqdm.auto import tqdm

    items = [(spec, object_id) for spec, _, ids in plan for object_id in ids]
    owner = np.concatenate([np.full(len(ids), s) for s, (*_, ids) in enumerate(plan)])
    workers = workers or (min(8, os.cpu_count() or 1) if len(items) > 64 else 1)
    with tqdm(total=len(items), desc="  retrieval library (built once, then cached)",
              unit="mesh", disable=not progress, leave=False) as bar:  # fmt: skip
        if workers > 1:
            parts = _describe_in_workers(items, workers, bar)
        else:
            parts = [describe_objects(items, on_item=lambda: bar.update(1))]
    parts = [p for p in parts if len(p["item"])]
    if not parts:
        specs = [spec for spec, _, _ in plan]
        raise BackendError(f"retrieval library is empty (sources {specs}, {split})")
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = np.argsort(merged["item"], kind="stable")  # worker interleaving undone
    merged = {key: value[order] for key, value in merged.items()}
    rows = merged.pop("item")
    return Library(
        keys=np.array([f"{plan[owner[i]][1].name}/{items[i][1]}" for i in rows]),
        source_index=owner[rows].astype(np.int32),
        **merged,
    )


def load_or_build_library(
    plan: list, split: str, cache_dir: Path, workers: int | None = None, progress: bool = False
) -> tuple[Library, Path, bool]:
    """(library, its cache file, whether it was read from there): read from the cache, or
    built and written there (atomically) when missing or unreadable."""
    from ..io_utils import atomic_write_bytes

    path = library_cache_path(plan, split, cache_dir)
    if path.is_file():
        try:
            return Library.from_npz(path), path, True
        except (OSError, ValueError, KeyError):
            pass  # unreadable (e.g. truncated by a full disk): rebuild and overwrite
    library = build_library(plan, split, workers, progress)
    atomic_write_bytes(path, library.to_npz_bytes())
    return library, path, False


if __name__ == "__main__":  # a library worker, see _describe_in_workers
    import sys

    _job, _out = sys.argv[1:3]
    _items = [tuple(pair) for pair in json.loads(Path(_job).read_text())]
    with open(sys.argv[3] if len(sys.argv) > 3 else os.devnull, "ab", buffering=0) as _ticks:
        np.savez(_out, **describe_objects(_items, on_item=lambda: _ticks.write(b".")))
