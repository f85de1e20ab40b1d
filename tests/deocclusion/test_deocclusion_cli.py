"""The de-occlusion commands chained as a user runs them: data -> train (tiny) -> eval."""

from __future__ import annotations

import json

import numpy as np

from scenemaker.cli import main


def test_triplets_tiny_lora_and_evaluation(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scenes, triplets = tmp_path / "scenes", tmp_path / "triplets"
    assert main(["data", "generate", "--out", str(scenes), "--scenes", "2", "--views", "2",
                 "--resolution", "96", "--quiet"]) == 0  # fmt: skip
    assert main(["data", "deocclusion", "--scenes", str(scenes), "--out", str(triplets),
                 "--size", "64", "--quiet"]) == 0  # fmt: skip
    summary = json.loads((triplets / "summary.json").read_text())
    lines = (triplets / "manifest.jsonl").read_text().splitlines()
    assert summary["schema"] == "scenemaker.deocclusion_triplets/1" and len(lines) > 0
    assert main(["train", "deocclusion", str(triplets), "--preset", "tiny", "--out",
                 str(tmp_path / "lora"), "--steps", "2"]) == 0  # fmt: skip
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    out = tmp_path / "eval"
    assert main(["eval", "deocclusion", str(triplets), "--methods", "none,classical",
                 "--split", "all", "--clip", "none", "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "metrics.json").read_text())
    none = results["methods"]["none"]["overall"]
    assert np.isfinite(none["psnr"]) and 0 <= none["mask_iou"] <= 1
    assert "| classical |" in (out / "table.md").read_text()
    capsys.readouterr()
