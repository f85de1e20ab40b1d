"""``run --from-stage`` on saved stage outputs that were damaged: each case is one line naming
the file and what is wrong (exit 2), no traceback, and no scene written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline

FAST = ["--generator", "lift", "--pose", "box_fit", "--refine", "none"]


@pytest.fixture(scope="module")
def saved(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "run"
    config = PipelineConfig(
        masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
        generator="lift", pose="box_fit", refine="none",
    )  # fmt: skip
    SceneMakerPipeline(config, progress=False).run(frame["image"], out)
    return out


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _json(path, change):
    payload = json.loads(path.read_text())
    path.write_text(json.dumps(change(payload)))


def _npy(path, array, allow_pickle=False):
    np.save(path, array, allow_pickle=allow_pickle)


def _drop_t(d):
    del d["poses"][0]["t"]
    return d


CASES = {  # name: (file, damage, --from-stage, expected text)
    "masks.npy truncated": ("perception/masks.npy", _truncate, "deocclusion", "masks.npy: damaged"),
    "masks.npy other shape": (
        "perception/masks.npy", lambda p: _npy(p, np.zeros((2, 3, 4), np.uint8)), "deocclusion",
        "expected packed masks of 3 objects",
    ),
    "depth.npy pickled": (
        "perception/depth.npy", lambda p: _npy(p, np.array([{"a": 1}], object), True),
        "deocclusion", "depth.npy: damaged",
    ),
    "objects.json is a list": (
        "perception/objects.json", lambda p: p.write_text("[]"), "deocclusion",
        "objects.json: damaged saved stage output (expected a JSON object",
    ),
    "intrinsics.json without K": (
        "perception/intrinsics.json", lambda p: _json(p, lambda d: {**d, "K": [[1, 2]]}),
        "deocclusion", "expected a 3x3 K",
    ),
    "image.png truncated": ("input/image.png", _truncate, "deocclusion", "image.png: damaged"),
    "crops.json cut": ("deocclusion/crops.json", _truncate, "object3d", "crops.json: damaged"),
    "crop png truncated": (
        "deocclusion/object_00_input.png", _truncate, "object3d", "object_00_input.png: damaged",
    ),
    "glb truncated": ("object3d/object_01.glb", _truncate, "pose", "object_01.glb: damaged"),
    "meshes json entries": (
        "object3d/objects.json", lambda p: _json(p, lambda d: {**d, "objects": [1, 2, 3]}),
        "pose", "objects.json: damaged saved stage output (expected one object per entry)",
    ),
    "poses.json without t": (
        "pose/poses.json", lambda p: _json(p, _drop_t), "refine", "poses.json: damaged saved stage output"
    ),
    "poses.json too few": (
        "pose/poses.json", lambda p: _json(p, lambda d: {**d, "poses": d["poses"][:2]}), "refine",
        "(2 entries for 3 objects)",
    ),
    "refined confidences": (
        "refine/poses.json", lambda p: _json(p, lambda d: {**d, "confidence": [0.5]}), "export",
        "confidences do not match poses",
    ),
    "config.json is a list": ("config.json", lambda p: p.write_text("[]"), "pose", None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_intermediate_is_one_line(frame, saved, tmp_path, capsys, case):
    from scenemaker.cli import main

    name, damage, from_stage, expected = CASES[case]
    out = tmp_path / "run"
    shutil.copytree(saved, out)
    damage(out / name)
    code = main(["run", str(frame["image"]), "--out", str(out), "--masks", str(frame["masks"]),
                 "--depth-file", str(frame["depth"]), "--K", frame["K"], *FAST,
                 "--from-stage", from_stage, "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    if expected is None:  # not needed to rerun: the run goes on and replaces it
        assert code == 0 and json.loads((out / name).read_text())["schema"]
        return
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1, captured.err
    assert expected in err[0] and "Traceback" not in captured.err
    assert not (out / "scene.json").exists() and not list(out.rglob("*.tmp"))
