"""Re-running one object's mesh or pose keeps every other object as it was, records the edit,
and refuses what it cannot do with one line."""

import json

import pytest

from scenemaker.errors import InputError
from scenemaker.object_rerun import rerun_object
from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline


def _config(frame, **kw):
    base = dict(masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
                generator="lift", pose_samples=4)  # fmt: skip
    return PipelineConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def finished(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("rerun") / "run"
    pipeline = SceneMakerPipeline(_config(frame), progress=False)
    result = pipeline.run(frame["image"], out)
    assert result.report["placed"] == 3
    return pipeline, out


def _poses(out, stage):
    return json.loads((out / stage / "poses.json").read_text())


def test_rerunning_one_pose_keeps_the_others(finished):
    pipeline, out = finished
    before_pose, before_refined = _poses(out, "pose"), _poses(out, "refine")
    glbs = {k: (out / f"object3d/object_{k:02d}.glb").read_bytes() for k in range(3)}
    stages = []
    pipeline.on_stage = lambda name, i, n: stages.append(name)
    try:
        result = rerun_object(pipeline, out, 1, "pose", {"seed": 5})
    finally:
        pipeline.on_stage = None
    assert stages == ["pose", "refine", "export"]
    after_pose, after_refined = _poses(out, "pose"), _poses(out, "refine")
    for k in (0, 2):
        assert after_pose["poses"][k] == before_pose["poses"][k]
        assert after_refined["poses"][k] == before_refined["poses"][k]
        assert after_refined["objects"][k] == before_refined["objects"][k]
    assert after_pose["poses"][1] != before_pose["poses"][1]  # another draw of the model
    assert after_refined["objects"][1]["pose"] == after_refined["poses"][1]
    assert {k: (out / f"object3d/object_{k:02d}.glb").read_bytes() for k in range(3)} == glbs
    assert result.report["placed"] == 3 and len(result.scene.objects) == 3
    assert any("object 1: pose re-run" in n for n in result.report["notes"])
    saved = json.loads((out / "report.json").read_text())
    assert saved["per_object"][1]["placed"] and (out / "report.html").is_file()
    records = json.loads((out / "stages.json").read_text())["stages"]
    assert records["pose"]["edits"] == [{"object": 1, "stage": "pose", "settings": {"seed": 5}}]
    assert "edits" not in records["object3d"]
    # the saved pose stage is no longer what the settings make: --from-stage refine says why
    with pytest.raises(InputError, match=r"holds per-object re-runs \(object 1: pose"):
        pipeline.run(frame_image(out), out, from_stage="refine")
    # an earlier stage may still be the start
    assert not SceneMakerPipeline(pipeline.config, progress=False).is_finished(
        frame_image(out), out
    )


def frame_image(out):
    return out / "input" / "image.png"


def test_rerunning_one_mesh_replaces_only_its_glb(finished):
    pipeline, out = finished
    glbs = {k: (out / f"object3d/object_{k:02d}.glb").read_bytes() for k in range(3)}
    refined = _poses(out, "refine")
    saved = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a setting that cannot work (the oracle needs ground truth): refused, nothing touched
    with pytest.raises(InputError, match="oracle needs ground-truth meshes"):
        rerun_object(pipeline, out, 2, "object3d", {"generator": "oracle"})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == saved
    result = rerun_object(pipeline, out, 2, "object3d", {"generator": "retrieval"})
    assert (out / "object3d/object_02.glb").read_bytes() != glbs[2]
    assert all((out / f"object3d/object_{k:02d}.glb").read_bytes() == glbs[k] for k in (0, 1))
    assert _poses(out, "refine")["poses"][:2] == refined["poses"][:2]
    meshes = json.loads((out / "object3d/objects.json").read_text())["objects"]
    assert [m["source"].split(":")[0] for m in meshes] == ["lift", "lift", "retrieval"]
    # the report names the mesh each object was placed with: the refine stage's choice among
    # the object's candidate meshes (the retrieved one has alternatives)
    choices = [r.get("mesh_choice") if r else None for r in _poses(out, "refine")["objects"]]
    placed = [m["source"] if not c else m["alternatives"][c - 1]["source"]
              for m, c in zip(meshes, choices, strict=True)]  # fmt: skip
    assert [r["mesh"] for r in result.report["per_object"]] == placed
    assert result.report["placed"] == 3


@pytest.mark.parametrize(
    "index, stage, overrides, message",
    [
        (7, "pose", {}, r"object 7: no such object .* \(objects: 0\.\.2\)"),
        (0, "refine", {}, "re-run stage 'refine': expected object3d | pose"),
        (0, "pose", {"masks": "x.png"}, "--masks belongs to an earlier stage"),
        (0, "pose", {"colour": 1}, "unknown setting 'colour'"),
        (0, "pose", {"guidance": float("nan")}, "--guidance"),
    ],
)
def test_what_cannot_be_rerun_is_one_line(finished, index, stage, overrides, message):
    pipeline, out = finished
    with pytest.raises(InputError, match=message):
        rerun_object(pipeline, out, index, stage, overrides)


def test_a_folder_without_a_finished_run_is_refused(frame, tmp_path):
    pipeline = SceneMakerPipeline(_config(frame), progress=False)
    with pytest.raises(InputError, match="no such run folder"):
        rerun_object(pipeline, tmp_path / "none", 0, "pose")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no saved stages"):
        rerun_object(pipeline, tmp_path / "empty", 0, "pose")
