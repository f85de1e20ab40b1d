"""SceneMakerPipeline end to end on a synthetic RGB-D frame given as a user's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scenemaker.errors import InputError
from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline, build_scene
from scenemaker.stage_outputs import Perception


def _config(frame, **kw) -> PipelineConfig:
    base = dict(masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"])
    return PipelineConfig(**{**base, **kw})


def _extra(frame):
    return [{"gt_mesh": obj.mesh} for obj in frame["objects"]]


@pytest.fixture(scope="module")
def oracle_run(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    report = (
        SceneMakerPipeline(_config(frame, generator="oracle"), progress=False)
        .run(frame["image"], out, extra=_extra(frame))
        .report
    )
    return out, report


def test_outputs_and_scene_json(frame, oracle_run):
    out, report = oracle_run
    n = len(frame["objects"])
    assert report["objects"] == n and report["placed"] == n
    assert set(report["seconds"]) >= {"perception", "deocclusion", "object3d", "pose", "refine"}
    for name in ("config.json", "report.json", "scene.json", "scene.glb", "input/image.png",
                 "perception/masks.png", "perception/depth.npy", "pose/poses.json"):  # fmt: skip
        assert (out / name).is_file(), name
    scene = json.loads((out / "scene.json").read_text())
    assert scene["schema"] == "scenemaker.scene/1"
    K = np.asarray(scene["cameras"][0]["K"])
    fx, fy, cx, cy = (float(v) for v in frame["K"].split(","))
    np.testing.assert_allclose(K[[0, 1, 0, 1], [0, 1, 2, 2]], [fx, fy, cx, cy], rtol=1e-6)
    for obj in scene["objects"]:
        assert 0.0 <= obj["confidence"] <= 1.0  # render-and-compare refiner
        assert (out / obj["mask_file"]).is_file() and (out / obj["mesh_file"]).is_file()
        pose = obj["pose"]
        m = np.asarray(pose["matrix"])
        np.testing.assert_allclose(m[:3, :3], pose["s"] / 2 * np.asarray(pose["R"]), atol=1e-9)
    assert not list(out.rglob("*.tmp*"))  # no temporary leftovers


def test_glb_is_valid_and_has_every_object(oracle_run):
    import trimesh

    from scenemaker.eval.gltf_check import validate_gltf, validator_available

    out, report = oracle_run
    if not validator_available():
        pytest.fail("glTF validator missing: scripts/setup.sh installs it under .venv/node")
    issues = validate_gltf(out / "scene.glb")["issues"]
    assert issues["numErrors"] == 0, issues["messages"][:5]
    loaded = trimesh.load(out / "scene.glb")
    names = [n for n in loaded.graph.nodes_geometry]
    assert len(names) == report["placed"]
    assert "camera" in loaded.graph.nodes


def test_exported_camera_lines_up_with_the_photo(frame):
    """True poses through build_scene + the exported camera reproduce the input masks."""
    from scenemaker.eval.rerender import rerender_mask_iou, true_scene

    view = frame["view"]
    scene = true_scene(view, frame["objects"])
    masks = {k + 2: view.instance == o.instance_id for k, o in enumerate(frame["objects"])}
    ious = rerender_mask_iou(scene, masks)
    assert min(ious.values()) > 0.95, ious


def test_from_stage_reuses_saved_results(frame, oracle_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(oracle_run[0], out)
    before = (out / "perception" / "masks.png").stat().st_mtime_ns
    meshes_before = (out / "object3d" / "object_00.glb").read_bytes()
    report = (
        SceneMakerPipeline(
            _config(frame, generator="oracle", pose="box_fit", refine="none"), progress=False
        )
        .run(frame["image"], out, from_stage="pose")
        .report
    )
    assert set(report["seconds"]) == {"pose", "refine", "export", "total"}
    assert (out / "perception" / "masks.png").stat().st_mtime_ns == before
    assert (out / "object3d" / "object_00.glb").read_bytes() == meshes_before
    assert json.loads((out / "config.json").read_text())["pose"] == "box_fit"
    assert (out / "scene.glb").is_file()


def test_overlapping_masks_survive_a_resumed_run(frame, tmp_path):
    from scenemaker.perception import Masks

    view = frame["view"]
    first = view.instance == frame["objects"][0].instance_id
    second = first.copy()
    second[: second.shape[0] // 2] = False  # entirely inside the first: hidden in a label PNG

    class Overlapping:
        name = "overlapping"

        def segment(self, image, prompt=None):
            return Masks(np.stack([first, second]), ["a", "b"], [0.9, 0.8])

    cfg = _config(frame, pose="box_fit", refine="none", generator="lift")
    report = (
        SceneMakerPipeline(cfg, progress=False, segmenter=Overlapping())
        .run(frame["image"], tmp_path)
        .report
    )
    assert any("hidden" in n or "covered" in n for n in report["notes"]), report["notes"]
    saved = Perception.load(tmp_path)
    masks, labels = saved.masks, saved.labels
    assert labels == ["a", "b"]
    np.testing.assert_array_equal(masks[0], first)
    np.testing.assert_array_equal(masks[1], second)
    again = (
        SceneMakerPipeline(cfg, progress=False)
        .run(frame["image"], tmp_path, from_stage="deocclusion")
        .report
    )
    assert again["placed"] == report["placed"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["from_stage"] == "deocclusion" and config["earlier_stages"]["generator"] == "lift"


def test_from_stage_without_saved_results_is_a_clear_error(frame, tmp_path):
    with pytest.raises(InputError, match="--from-stage pose: .* holds no saved stages"):
        SceneMakerPipeline(_config(frame), progress=False).run(
            frame["image"], tmp_path, from_stage="pose"
        )


def test_no_object_gives_an_empty_valid_scene(frame, tmp_path):
    from PIL import Image

    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros(frame["view"].depth.shape, np.uint8)).save(empty)
    report = (
        SceneMakerPipeline(_config(frame, masks=str(empty)), progress=False)
        .run(frame["image"], tmp_path / "out")
        .report
    )
    assert report["objects"] == 0 and any("no object" in n for n in report["notes"])
    scene = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert scene["objects"] == [] and (tmp_path / "out" / "scene.glb").is_file()
    from scenemaker.eval.gltf_check import validate_gltf

    assert validate_gltf(tmp_path / "out" / "scene.glb")["issues"]["numErrors"] == 0


def test_failed_run_leaves_no_scene_glb(frame, oracle_run, tmp_path):
    import shutil

    class Broken:
        name = "broken"

        def generate(self, amodal, observation):
            raise RuntimeError("generator exploded")

    out = tmp_path / "run"
    shutil.copytree(oracle_run[0], out)  # a finished earlier run: its scene must not survive
    pipe = SceneMakerPipeline(_config(frame), progress=False, generator=Broken())
    with pytest.raises(RuntimeError, match="exploded"):
        pipe.run(frame["image"], out, from_stage="object3d")
    assert not (out / "scene.glb").exists() and not (out / "scene.json").exists()


def test_an_object_whose_mesh_fails_is_skipped_and_reported(frame, tmp_path):
    from scenemaker.errors import BackendError
    from scenemaker.object3d.oracle import OracleGenerator

    class FailsOnOne:
        name = "fails-on-one"

        def generate(self, amodal, observation):
            if observation.index == 1:
                raise BackendError("external command timed out after 1 s: gen.py")
            return OracleGenerator().generate(amodal, observation)

    pipe = SceneMakerPipeline(
        _config(frame, pose="box_fit"), progress=False, generator=FailsOnOne()
    )
    report = pipe.run(frame["image"], tmp_path, extra=_extra(frame)).report
    n = len(frame["objects"])
    assert report["placed"] == n - 1 and "1" in report["skipped"]
    assert any("timed out" in note for note in report["notes"])
    scene = json.loads((tmp_path / "scene.json").read_text())
    assert [o["instance_id"] for o in scene["objects"]] == [k + 2 for k in range(n) if k != 1]
    assert scene["metadata"]["skipped"]["1"].startswith("no mesh")
    # and it can be re-run from the pose stage on what was saved
    again = (
        SceneMakerPipeline(_config(frame, pose="box_fit"), progress=False)
        .run(frame["image"], tmp_path, from_stage="pose")
        .report
    )
    assert again["placed"] == n - 1


def test_when_no_object_gets_a_mesh_the_run_stops_with_the_reason(frame, tmp_path):
    from scenemaker.errors import BackendError

    class AlwaysFails:
        name = "always-fails"

        def generate(self, amodal, observation):
            raise BackendError("external command failed (exit status 1): out of memory")

    pipe = SceneMakerPipeline(_config(frame), progress=False, generator=AlwaysFails())
    with pytest.raises(BackendError, match="no object got a mesh: .*out of memory"):
        pipe.run(frame["image"], tmp_path)
    assert not (tmp_path / "scene.glb").exists()


def test_large_images_are_downscaled_with_their_intrinsics(frame, tmp_path):
    cfg = _config(frame, generator="oracle", pose="box_fit", refine="none", max_side=96)
    report = (
        SceneMakerPipeline(cfg, progress=False)
        .run(frame["image"], tmp_path, extra=_extra(frame))
        .report
    )
    assert any("downscaled" in note for note in report["notes"])
    camera = json.loads((tmp_path / "scene.json").read_text())["cameras"][0]
    fx, fy, cx, cy = (float(v) for v in frame["K"].split(","))
    h, w = frame["view"].depth.shape
    scale = 96 / max(w, h)
    assert camera["width"] == round(w * scale)
    np.testing.assert_allclose(camera["K"][0][0], fx * scale, rtol=1e-3)
    np.testing.assert_allclose(camera["K"][0][2], (cx + 0.5) * scale - 0.5, rtol=1e-3)


def test_depth_of_the_wrong_size_is_rejected(frame, tmp_path):
    small = tmp_path / "depth.npy"
    np.save(small, np.ones((10, 12), np.float32))
    with pytest.raises(InputError, match="depth"):
        SceneMakerPipeline(_config(frame, depth_file=str(small)), progress=False).run(
            frame["image"], tmp_path / "out"
        )
    assert not (tmp_path / "out" / "scene.glb").exists()


def test_world_frame_is_the_cameras_opengl_axes():
    import trimesh

    from scenemaker.object3d import CanonicalMesh
    from scenemaker.scene import Pose

    pose = Pose(np.eye(3), [0.1, 0.2, 2.0], 0.5)  # OpenCV camera: 2 m ahead, below centre
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    scene = build_scene(64, 48, K, ["cup"], [CanonicalMesh(trimesh.creation.box(), "t")], [pose])
    obj = scene.objects[0]
    np.testing.assert_allclose(obj.pose.t, [0.1, -0.2, -2.0])
    uv, z = scene.cameras[0].project(obj.pose.t[None])
    np.testing.assert_allclose(uv[0], [32 + 100 * 0.05, 24 + 100 * 0.1])
    assert z[0] == pytest.approx(2.0)


def test_usd_export(frame, oracle_run, tmp_path):
    from pxr import Usd, UsdGeom

    from scenemaker.export_usd import export_usd
    from scenemaker.scene import Scene

    scene = Scene.load_json(oracle_run[0] / "scene.json")
    export_usd(scene, tmp_path / "scene.usda")
    stage = Usd.Stage.Open(str(tmp_path / "scene.usda"))
    meshes = [p for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == len(scene.objects)
    assert UsdGeom.GetStageUpAxis(stage) == "Y"
    cams = [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
    assert len(cams) == 1


def _cli(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "scenemaker.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_cli_batch_skips_finished_and_summarises_failures(frame, tmp_path):
    import shutil

    images, masks, depths = tmp_path / "images", tmp_path / "masks", tmp_path / "depths"
    for d in (images, masks, depths):
        d.mkdir()
    for stem in ("a", "b"):
        shutil.copy(frame["image"], images / f"{stem}.png")
        shutil.copy(frame["masks"], masks / f"{stem}.png")
    shutil.copy(frame["depth"], depths / "a.png")
    np.save(depths / "b.npy", np.ones((7, 7), np.float32))  # wrong size: b fails
    args = ["run", str(images), "--out", str(tmp_path / "out"), "--masks", str(masks),
            "--depth-file", str(depths), "--K", frame["K"], "--generator", "lift",
            "--pose", "initial", "--quiet"]  # fmt: skip
    done = _cli(*args)
    assert done.returncode == 1, done.stderr
    assert "1 done, 0 already finished, 1 failed" in done.stdout
    assert "b.png" in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / "out" / "a" / "scene.glb").is_file()
    again = _cli(*args)
    assert "0 done, 1 already finished, 1 failed" in again.stdout
    # --from-stage re-runs finished images from that stage (b has nothing saved: it fails)
    rerun = _cli(*args, "--from-stage", "pose", "--pose", "box_fit")
    assert "1 done, 0 already finished, 1 failed" in rerun.stdout, rerun.stdout
    assert json.loads((tmp_path / "out" / "a" / "config.json").read_text())["pose"] == "box_fit"


def test_cli_single_image_errors_are_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    done = _cli("run", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o"),
                "--masks", "x.png", "--depth-file", "d.png", "--fov", "60")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "notes.txt" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_doctor_lists_every_backend():
    done = _cli("doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = {(r["stage"], r["name"]) for r in report["backends"]}
    for expected in [("segmenter", "grounded-sam"), ("depth", "moge"), ("deoccluder", "flux-kontext"),
                     ("generator", "retrieval"), ("generator", "hunyuan3d"), ("pose", "dit")]:  # fmt: skip
        assert expected in names
    hunyuan = next(r for r in report["backends"] if r["name"] == "hunyuan3d")
    assert not hunyuan["imports"] and "hy3dgen" in hunyuan["missing"]
    assert all(r["licence"] for r in report["backends"])
    assert report["device"]


def test_run_and_eval_default_give_the_same_poses(frame, oracle_run):
    """`scenemaker eval pose --methods default` runs exactly the pose + refine chain of
    `scenemaker run`: on the same frame and meshes both give the same poses."""
    import trimesh

    from scenemaker.eval.pose_benchmark import default_chain
    from scenemaker.pipeline import SceneMakerPipeline as Pipeline
    from scenemaker.pose.estimator import Observation

    out, _ = oracle_run
    pipeline = Pipeline(_config(frame, generator="oracle"), progress=False)
    saved = Perception.load(out)
    masks, depth, K = saved.masks, saved.depth, saved.K
    meshes = [
        trimesh.load(out / "object3d" / f"object_{k:02d}.glb", force="mesh", process=False)
        for k in range(len(masks))
    ]
    pipeline.run(frame["image"], out, from_stage="pose")  # meshes re-read from those files
    run_poses = json.loads((out / "refine" / "poses.json").read_text())["poses"]
    rgb = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / "input" / "image.png"))
    chain = default_chain(generator="oracle")  # as the run: the objects' own meshes
    result = chain.estimate(Observation(depth, K, masks, rgb[..., :3]), meshes)
    saved = json.loads((out / "refine" / "poses.json").read_text())
    assert result.stretches == [d["stretch"] for d in saved["objects"]]
    for mine, theirs in zip(result.poses, run_poses, strict=True):
        np.testing.assert_allclose(mine.R, theirs["R"], atol=1e-9)
        np.testing.assert_allclose(mine.t, theirs["t"], atol=1e-9)
        assert abs(mine.s - theirs["s"]) < 1e-9
    saved = json.loads((out / "refine" / "poses.json").read_text())
    assert [d["confidence"] for d in saved["objects"]] == saved["confidence"]
    assert all(len(d["alternatives"]) >= 1 for d in saved["objects"])


def test_from_stage_refine_scores_the_saved_pool_again(frame, oracle_run):
    out, _ = oracle_run
    pool = json.loads((out / "pose" / "poses.json").read_text())["hypotheses"]
    assert all(len(p) == PipelineConfig().pose_samples for p in pool)  # the DiT's samples
    before = json.loads((out / "refine" / "poses.json").read_text())["poses"]
    SceneMakerPipeline(_config(frame, generator="oracle"), progress=False).run(
        frame["image"], out, from_stage="refine"
    )
    after = json.loads((out / "refine" / "poses.json").read_text())["poses"]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a["matrix"], b["matrix"], atol=1e-9)


def test_a_stretched_mesh_is_what_the_scene_places(frame, oracle_run, tmp_path):
    """Where the refiner stretched a mesh (refine/stretch.py), the export writes the stretched
    mesh, scene.json names it and places it as the refiner did; a later export without the
    stretch removes it."""
    import shutil

    import trimesh

    from scenemaker.scene import Scene

    out = tmp_path / "run"
    shutil.copytree(oracle_run[0], out)
    path = out / "refine" / "poses.json"
    saved = json.loads(path.read_text())
    a = [1.3, 1.0, 0.8]
    saved["objects"][0]["stretch"] = a
    path.write_text(json.dumps(saved))
    pipeline = SceneMakerPipeline(_config(frame, generator="oracle"), progress=False)
    pipeline.run(None, out, from_stage="export")
    scene = json.loads((out / "scene.json").read_text())
    first = next(o for o in scene["objects"] if o["instance_id"] == 2)
    assert first["mesh_file"] == "meshes/object_00.glb"
    given = trimesh.load(out / "object3d" / "object_00.glb", force="mesh", process=False)
    placed = trimesh.load(out / first["mesh_file"], force="mesh", process=False)
    ratio = (placed.extents / given.extents) / (placed.extents[1] / given.extents[1])
    np.testing.assert_allclose(ratio, a / np.float64(a[1]), rtol=1e-6)
    loaded = Scene.load_json(out / "scene.json")
    assert np.allclose(loaded.objects[0].mesh.extents, placed.extents)
    others = [o["mesh_file"] for o in scene["objects"] if o["instance_id"] != 2]
    assert all(f.startswith("object3d/") for f in others)
    report = json.loads((out / "report.json").read_text())
    assert report["per_object"][0]["stretch"] == a and report["per_object"][1]["stretch"] is None
    assert "stretched 1.30 x 1.00 x 0.80" in (out / "report.html").read_text()
    # a damaged stretch is one line naming the file
    saved["objects"][0]["stretch"] = [1.0, -2.0, 1.0]
    path.write_text(json.dumps(saved))
    with pytest.raises(InputError, match="poses.json.*stretch"):
        pipeline.run(None, out, from_stage="export")
    saved["objects"][0]["stretch"] = None
    path.write_text(json.dumps(saved))
    pipeline.run(None, out, from_stage="export")
    assert not (out / "meshes" / "object_00.glb").exists()


def test_the_scene_places_the_candidate_mesh_that_explains_the_photo(frame, oracle_run, tmp_path):
    """object3d/ may hold alternative meshes per object (--mesh-candidates): the refine stage
    searches each and the scene places the one that explains the photo best."""
    import shutil

    import trimesh

    from scenemaker.geometry.canonical import canonicalize_mesh

    out = tmp_path / "run"
    shutil.copytree(oracle_run[0], out)
    objects = out / "object3d" / "objects.json"
    saved = json.loads(objects.read_text())
    # object 0: a thin slab first, its true mesh (what the photo shows) as the alternative
    true_glb = out / "object3d" / "object_00.glb"
    shutil.copy(true_glb, out / "object3d" / "object_00_alt_1.glb")
    slab = canonicalize_mesh(trimesh.creation.box((1.0, 0.08, 0.6)))[0]
    true_glb.write_bytes(slab.export(file_type="glb"))
    truth = saved["objects"][0]["source"]
    saved["objects"][0]["alternatives"] = [{"source": truth, "textured": False}]
    saved["objects"][0]["source"] = "slab"
    objects.write_text(json.dumps(saved))
    SceneMakerPipeline(_config(frame, generator="oracle"), progress=False).run(
        None, out, from_stage="refine"
    )
    record = json.loads((out / "refine" / "poses.json").read_text())["objects"][0]
    assert record["mesh_choice"] == 1 and record["mesh_scores"]["1"] < record["mesh_scores"]["0"]
    scene = json.loads((out / "scene.json").read_text())
    first = next(o for o in scene["objects"] if o["instance_id"] == 2)
    assert first["mesh_file"] == "object3d/object_00_alt_1.glb"
    report = json.loads((out / "report.json").read_text())
    assert report["per_object"][0]["mesh"] == truth
    assert report["per_object"][0]["mesh_candidates"] == 2
    assert report["per_object"][1]["mesh_candidates"] == 1
    assert f"{truth} (best of 2 candidates)" in (out / "report.html").read_text()


def test_run_without_opengl_stops_with_one_line_before_any_work(
    frame, tmp_path, monkeypatch, capsys
):
    import moderngl

    from scenemaker.cli import main

    def no_gl(*args, **kwargs):
        raise Exception("eglGetDisplay failed")

    monkeypatch.setattr(moderngl, "create_standalone_context", no_gl)
    monkeypatch.delenv("SCENEMAKER_DEBUG", raising=False)
    out = tmp_path / "out"
    code = main(["run", str(frame["image"]), "--out", str(out), "--masks", str(frame["masks"]),
                 "--depth-file", str(frame["depth"]), "--K", frame["K"], "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "OpenGL" in err[0] and "apt-get install libegl1" in err[0]
    assert not (out / "perception").exists() and not (out / "scene.glb").exists()


@pytest.mark.parametrize(
    "option, expected",
    [(("--pose-samples", "0"), "--pose-samples 0: expected an integer in 1..256"),
     (("--refine-workers", "-1"), "--refine-workers -1: expected an integer in 0..1024"),
     (("--mesh-candidates", "0"), "--mesh-candidates 0: expected an integer in 1..16")],
)  # fmt: skip
def test_pose_samples_and_workers_settings_are_checked(frame, tmp_path, capsys, option, expected):
    from scenemaker.cli import main

    code = main(["run", str(frame["image"]), "--out", str(tmp_path / "o"), "--masks",
                 str(frame["masks"]), "--depth-file", str(frame["depth"]), "--K", frame["K"],
                 *option, "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0]
    assert not (tmp_path / "o").exists()


def test_stretch_setting_reaches_the_refiner_and_is_checked(frame, tmp_path, capsys):
    """`--stretch auto` fits proportions for retrieved meshes, never for the objects' own
    (oracle); `on` / `off` force it; anything else is one line naming the option."""
    from scenemaker.backends import build_backend
    from scenemaker.cli import main

    def refiner(**kw):
        return build_backend("refiner", PipelineConfig(**kw)).settings.stretch

    assert refiner() is True  # retrieval: another object of the category
    assert refiner(generator="oracle") is False and refiner(generator="lift") is False
    assert refiner(generator="oracle", stretch="on") is True
    assert refiner(stretch="off") is False
    code = main(["run", str(frame["image"]), "--out", str(tmp_path / "o"), "--masks",
                 str(frame["masks"]), "--depth-file", str(frame["depth"]), "--K", frame["K"],
                 "--stretch", "yes", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--stretch 'yes': expected auto | on | off" in err[0]


def test_from_stage_refine_with_a_damaged_pool_is_one_clear_error(frame, tmp_path):
    import shutil

    out = tmp_path / "run"
    SceneMakerPipeline(_config(frame, generator="oracle"), progress=False).run(
        frame["image"], out, extra=_extra(frame)
    )
    saved = json.loads((out / "pose" / "poses.json").read_text())
    saved["hypotheses"][0][0]["R"] = "not a matrix"
    (out / "pose" / "poses.json").write_text(json.dumps(saved))
    with pytest.raises(InputError, match="poses.json: damaged saved stage output"):
        SceneMakerPipeline(_config(frame, generator="oracle"), progress=False).run(
            frame["image"], out, from_stage="refine"
        )
    assert not (out / "scene.json").exists() and not (out / "scene.glb").exists()
    shutil.rmtree(out)
