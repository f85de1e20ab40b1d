"""Reading a de-occlusion triplet folder (``build_triplets``' output) for training and
evaluation, and splitting it by scene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io_utils import read_json
from .triplets import SCHEMA


def read_manifest(out: Path) -> dict[str, dict]:
    """{id: record} of ``out/manifest.jsonl`` (none if absent; unreadable lines left out)."""
    path = out / "manifest.jsonl"
    records = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                records[record["id"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a hand-edited line: its triplet is redone
    return records


class TripletDataset:
    """The triplets of one ``build_triplets`` output folder, for training and evaluation.

    ``dataset[i]``: dict(input=(S, S, 3) uint8, target=(S, S, 3) uint8, visible_mask=(S, S)
    bool, amodal_mask=(S, S) bool, prompt, mask_type, occlusion, label, id, scene).
    """

    def __init__(self, out: str | Path, records: list[dict] | None = None):
        self.root = Path(out)
        if records is None:
            if not (self.root / "manifest.jsonl").is_file():
                raise FileNotFoundError(
                    f"{self.root}: no manifest.jsonl (make it with `scenemaker data deocclusion`)"
                )
            read_json(self.root / "summary.json", SCHEMA)
            records = list(read_manifest(self.root).values())
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        from PIL import Image

        record = self.records[index]

        def load(key: str, mode: str) -> np.ndarray:
            path = self.root / record[key]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: triplet file listed in the manifest is missing")
            with Image.open(path) as image:
                return np.asarray(image.convert(mode))

        return {
            "input": load("input", "RGB"),
            "target": load("target", "RGB"),
            "visible_mask": load("visible_mask", "L") > 127,
            "amodal_mask": load("amodal_mask", "L") > 127,
            "prompt": record["prompt"],
            "mask_type": record["mask_type"],
            "occlusion": float(record["occlusion"]),
            "label": record["label"],
            "id": record["id"],
            "scene": record["scene"],
        }

    @property
    def scenes(self) -> list[str]:
        return sorted({r["scene"] for r in self.records})

    def split(
        self, fraction_val: float = 0.1, seed: int = 0
    ) -> tuple[TripletDataset, TripletDataset]:
        """(train, val) by scene: no scene in both; val gets round(fraction x scenes) scenes,
        at least one when ``fraction_val`` > 0 and there are two or more scenes."""
        if not 0.0 <= fraction_val < 1.0:
            raise ValueError(f"fraction_val must be in [0, 1), got {fraction_val!r}")
        scenes = self.scenes
        n_val = round(fraction_val * len(scenes))
        if fraction_val > 0 and len(scenes) >= 2:
            n_val = min(max(n_val, 1), len(scenes) - 1)
        order = np.random.default_rng(seed).permutation(len(scenes))
        val_scenes = {scenes[i] for i in order[:n_val]}
        train = [r for r in self.records if r["scene"] not in val_scenes]
        val = [r for r in self.records if r["scene"] in val_scenes]
        return TripletDataset(self.root, train), TripletDataset(self.root, val)


__all__ = ["TripletDataset", "read_manifest"]
