"""Stage records: reruns replace what they recorded, --from-stage refuses changed inputs, a batch
redoes exactly the images whose inputs or settings changed, settings are checked up front."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from scenemaker.errors import InputError
from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline
from scenemaker.stage_records import RECORDS_FILE, check_settings_cover

FAST = dict(generator="lift", pose="box_fit", refine="none")


def _config(frame, **kw) -> PipelineConfig:
    base = dict(masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"], **FAST)
    return PipelineConfig(**{**base, **kw})


def _fewer_masks(frame, folder, keep: int):
    labels = np.asarray(Image.open(frame["masks"]))
    labels = np.where(labels <= keep, labels, 0).astype(labels.dtype)
    path = folder / f"masks_{keep}.png"
    Image.fromarray(labels).save(path)
    return str(path)


def _run(config, image, out, **kw):
    return SceneMakerPipeline(config, progress=False).run(image, out, **kw).report


def test_every_setting_belongs_to_a_stage():
    check_settings_cover(PipelineConfig)


def test_rerun_with_fewer_objects_leaves_nothing_stale(frame, tmp_path):
    out = tmp_path / "run"
    report = _run(_config(frame), frame["image"], out)
    assert report["objects"] == 3
    assert (out / "object3d" / "object_02.glb").is_file()
    assert (out / "deocclusion" / "object_02_amodal.png").is_file()
    records = json.loads((out / RECORDS_FILE).read_text())
    assert "object3d/object_02.glb" in records["stages"]["object3d"]["files"]
    (out / "notes.txt").write_text("mine")  # a user's files are never touched
    (out / "object3d" / "mine.glb").write_bytes(b"x")
    report = _run(_config(frame, masks=_fewer_masks(frame, tmp_path, 2)), frame["image"], out)
    assert report["objects"] == 2
    for stale in ("object3d/object_02.glb", "deocclusion/object_02_amodal.png",
                  "deocclusion/object_02_input.png", "masks/object_02.png"):  # fmt: skip
        assert not (out / stale).exists(), stale
    assert (out / "object3d" / "object_01.glb").is_file()
    assert (out / "notes.txt").read_text() == "mine" and (out / "object3d" / "mine.glb").exists()
    scene = json.loads((out / "scene.json").read_text())
    assert len(scene["objects"]) == 2


def test_from_stage_refuses_other_inputs_and_accepts_later_settings(frame, tmp_path):
    out = tmp_path / "run"
    _run(_config(frame), frame["image"], out)
    other_masks = _config(frame, masks=_fewer_masks(frame, tmp_path, 2))
    with pytest.raises(InputError, match=r"--from-stage pose: the perception stage .* --masks"):
        _run(other_masks, frame["image"], out, from_stage="pose")
    other_image = tmp_path / "other.png"
    rgb = np.asarray(Image.open(frame["image"])).copy()
    rgb[0, 0] ^= 255
    Image.fromarray(rgb).save(other_image)
    with pytest.raises(InputError, match="made with another input image; rerun from perception"):
        _run(_config(frame), other_image, out, from_stage="refine")
    with pytest.raises(InputError, match=r"object3d stage .* --generator; rerun from object3d"):
        _run(_config(frame, generator="oracle"), frame["image"], out, from_stage="pose")
    # settings of the stages being rerun may change
    report = _run(_config(frame, refine="icp"), frame["image"], out, from_stage="refine")
    assert report["placed"] == 3
    records = json.loads((out / RECORDS_FILE).read_text())
    assert records["stages"]["refine"]["settings"]["refine"] == "icp"


def test_interrupted_rerun_is_refused_not_crashed(frame, tmp_path):
    """A rerun with other masks killed during a later stage: the saved stages after the kill
    point are forgotten, so --from-stage refine says what is missing (it used to fail with
    'zip() argument 3 is longer than arguments 1-2')."""
    out = tmp_path / "run"
    _run(_config(frame), frame["image"], out)

    class Killed(Exception):
        pass

    class Dies:
        name = "dies"

        def complete(self, crop):
            raise Killed()

    config = _config(frame, masks=_fewer_masks(frame, tmp_path, 2))
    with pytest.raises(Killed):
        SceneMakerPipeline(config, progress=False, deoccluder=Dies()).run(frame["image"], out)
    with pytest.raises(InputError, match="has no finished deocclusion stage"):
        _run(config, frame["image"], out, from_stage="refine")
    assert not (out / "scene.json").exists()


def test_folder_without_records_is_refused_by_from_stage(frame, tmp_path):
    out = tmp_path / "run"
    _run(_config(frame), frame["image"], out)
    (out / RECORDS_FILE).unlink()
    with pytest.raises(InputError, match="written before stage records existed"):
        _run(_config(frame), frame["image"], out, from_stage="pose")
    (out / RECORDS_FILE).write_text("[]")
    with pytest.raises(InputError, match=f"{RECORDS_FILE}: damaged stage records"):
        _run(_config(frame), frame["image"], out, from_stage="pose")
    _run(_config(frame), frame["image"], out)  # a plain run starts over


def test_batch_reruns_exactly_the_changed_images(frame, tmp_path, capsys):
    from scenemaker.cli import main

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        shutil.copy(frame["image"], images / f"{name}.png")
        shutil.copy(frame["masks"], masks / f"{name}.png")
    args = ["run", str(images), "--out", str(tmp_path / "out"), "--masks", str(masks),
            "--depth", "user", "--depth-file", str(frame["depth"]), "--K", frame["K"],
            "--generator", "lift", "--pose", "box_fit", "--refine", "none", "--quiet"]  # fmt: skip
    # --depth-file in batch mode is a folder with one file per image
    depths = tmp_path / "depths"
    depths.mkdir()
    for name in ("a", "b"):
        shutil.copy(frame["depth"], depths / f"{name}{frame['depth'].suffix}")
    args[args.index(str(frame["depth"]))] = str(depths)
    assert main(args) == 0
    assert "2 done, 0 already finished" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 done, 2 already finished" in capsys.readouterr().out
    Image.open(frame["masks"]).point(lambda v: v if v <= 2 else 0).save(masks / "b.png")
    assert main(args) == 0
    assert "1 done, 1 already finished" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "b" / "report.json").read_text())["objects"] == 2
    args[args.index("box_fit")] = "initial"
    assert main(args) == 0
    assert "2 done, 0 already finished" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--dtype", "int8", "--dtype 'int8': expected float32 | bfloat16 | float16"),
        ("--guidance", "nan", "--guidance nan: expected a finite number"),
        ("--device", "gpu", "--device 'gpu': expected cpu | cuda"),
        ("--depth-scale", "0", "--depth-scale 0.0: expected a finite number > 0"),
        ("--max-side", "5", "--max-side 5: expected pixels in 64..16384"),
        ("--fov", "200", "--fov 200.0: expected degrees in (0, 180)"),
    ],
)
def test_bad_settings_fail_before_any_stage(frame, tmp_path, capsys, flag, value, expected):
    from scenemaker.cli import main

    out = tmp_path / "o"
    code = main(["run", str(frame["image"]), "--out", str(out), "--masks", str(frame["masks"]),
                 "--depth-file", str(frame["depth"]), "--K", frame["K"], flag, value, "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not out.exists()


def test_device_reaches_the_pose_model():
    import torch

    from scenemaker.backends import build_backend

    dit = build_backend("pose", PipelineConfig(device="auto"))
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert str(next(dit.model.parameters()).device).startswith(want) and dit.device == want
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="--device: device='cuda' but torch sees no CUDA"):
            build_backend("pose", PipelineConfig(device="cuda"))


def test_run_options_cover_every_setting_with_its_default():
    """The `run` options are checked against PipelineConfig: one option per field, same default."""
    from dataclasses import fields

    from scenemaker.cli import build_parser
    from scenemaker.cli_pipeline import _DEST, _config

    args = build_parser().parse_args(["run", "photo.png", "--out", "out"])
    for f in fields(PipelineConfig):
        assert hasattr(args, _DEST.get(f.name, f.name)), f"no run option for {f.name}"
    assert _config(args) == PipelineConfig()
    args = build_parser().parse_args(["run", "p.png", "--out", "o", "--steps", "7", "--fov", "50"])
    assert _config(args).pose_steps == 7 and _config(args).fov == 50.0


def test_device_and_dtype_reach_every_model_backend(monkeypatch):
    """Every backend that runs a model is built with the run's --device and --dtype (the
    registry's wiring, checked on recorder classes: no weights needed)."""
    from scenemaker import backends

    built = {}

    def recorder(target):
        class Recorder:
            def __init__(self, *args, **kwargs):
                built[target] = kwargs

        return Recorder

    monkeypatch.setattr(backends, "_load", recorder)
    config = PipelineConfig(device="auto", dtype="bfloat16", masks="m.png", clicks=[[(1, 2)]])
    models = [s for s in backends.SPECS if s.weights or s.name == "dit"]
    assert {s.stage for s in models} >= {"segmenter", "depth", "deoccluder", "generator", "pose"}
    for spec in models:
        config.segmenter, config.depth, config.deocclusion = "auto", "auto", "classical"
        config.generator, config.pose = "retrieval", "dit"
        setattr(config, {"segmenter": "segmenter", "depth": "depth", "deoccluder": "deocclusion",
                         "generator": "generator", "pose": "pose"}[spec.stage], spec.name)  # fmt: skip
        backends.build_backend(spec.stage, config)
        kwargs = built[spec.target]
        assert kwargs.get("dtype") == "bfloat16", spec.name
        assert kwargs.get("device") in ("auto", "cpu", "cuda"), spec.name


def test_the_pose_model_computes_in_the_dtype_asked_for():
    import torch

    from scenemaker.pose.estimator import DiTPoseEstimator

    calls = []
    dit = DiTPoseEstimator(dtype="bfloat16")
    forward = dit.model.forward

    def spy(*args, **kwargs):
        calls.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return forward(*args, **kwargs)

    dit.model.forward = spy
    rng = np.random.default_rng(0)
    points = [
        rng.normal(size=(64, 3)) * 0.1 + [0, 0, 2],
        rng.normal(size=(64, 3)) * 0.1 + [0.5, 0, 2],
    ]
    canonical = [np.concatenate([rng.normal(size=(2048, 3)), np.ones((2048, 3))], 1)] * 2
    R, t, s = dit.sample(points, canonical)
    assert calls and set(calls) == {torch.bfloat16}
    assert np.isfinite(R).all() and np.isfinite(t).all() and (s > 0).all()


def test_observed_points_are_computed_once_per_frame(frame, monkeypatch):
    """The pose model and the render refiner read each object's observed points from the
    frame: one computation per object, not one per stage."""
    from scenemaker.eval.pose_benchmark import default_chain
    from scenemaker.pose import estimator
    from scenemaker.pose.estimator import Observation

    calls = []
    real = estimator.observed_points
    monkeypatch.setattr(
        estimator, "observed_points", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    view = frame["view"]
    masks = [view.instance == o.instance_id for o in frame["objects"]]
    chain = default_chain()
    chain.refiner.settings.steps = 1  # the count, not the quality, is under test
    chain.estimate(
        Observation(view.depth, view.camera.K, masks), [o.mesh for o in frame["objects"]]
    )
    assert len(calls) == len(masks)
