"""Hostile inputs at every way in that other files do not already cover (COCO masks, scene.json
paths and --resolution: test_hostile_inputs_io.py; saved intermediates:
test_hostile_intermediates.py; checkpoints and weights: test_checkpoints.py): the run image,
user depth, K / FOV, eval and data generate. Each case: exit 2, one line naming the file or
option and what was expected, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _cli(args, capsys):
    from scenemaker.cli import main

    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured


def _run_args(frame, out, image=None, masks=None, depth=None, extra=()):
    return ["run", str(image or frame["image"]), "--out", str(out),
            "--masks", str(masks or frame["masks"]), "--depth-file", str(depth or frame["depth"]),
            *(() if any(e.startswith(("--K", "--fov")) for e in extra) else ("--K", frame["K"])),
            "--generator", "lift", "--pose", "box_fit", "--refine", "none", "--quiet", *extra]  # fmt: skip


def _image_cases(tmp):
    empty = tmp / "empty.png"
    empty.write_bytes(b"")
    text = tmp / "text.png"
    text.write_text("not an image")
    cut = tmp / "cut.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:60])
    tiny = tmp / "tiny.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    return {
        "missing": (tmp / "nope.png", "nope.png: no such image or folder"),
        "empty": (empty, "empty.png"),
        "text": (text, "text.png"),
        "truncated": (cut, "cut.png"),
        "1x1 image": (tiny, "--K: principal point (95.5, 79.5) lies outside the 1x1 image"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated",
                                  "1x1 image"])  # fmt: skip
def test_hostile_run_image(frame, tmp_path, capsys, case):
    image, expected = _image_cases(tmp_path)[case]
    out = tmp_path / "out"
    code, err, captured = _cli(_run_args(frame, out, image=image), capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], captured.err
    assert "Traceback" not in captured.err and not out.exists()


def _depth_cases(frame, tmp):
    h, w = frame["view"].depth.shape
    cases = {}
    small = tmp / "small.npy"
    np.save(small, np.ones((h // 3, w // 5), np.float32))
    cases["another aspect"] = (small, "small.npy")
    nan = tmp / "nan.npy"
    np.save(nan, np.full((h, w), np.nan, np.float32))
    cases["all nan"] = (nan, "nan.npy")
    negative = tmp / "negative.npy"
    np.save(negative, -np.ones((h, w), np.float32))
    cases["negative"] = (negative, "negative.npy")
    pickled = tmp / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases["pickled"] = (pickled, "pickled.npy")
    text = tmp / "text.png"
    text.write_text("no depth")
    cases["text"] = (text, "text.png")
    rgb = tmp / "rgb.png"
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(rgb)
    cases["8-bit colour"] = (rgb, "rgb.png")
    return cases


@pytest.mark.parametrize(
    "case", ["another aspect", "all nan", "negative", "pickled", "text", "8-bit colour"]
)
def test_hostile_depth(frame, tmp_path, capsys, case):
    depth, expected = _depth_cases(frame, tmp_path)[case]
    out = tmp_path / "out"
    code, err, captured = _cli(_run_args(frame, out, depth=depth), capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], captured.err
    assert "Traceback" not in captured.err and not out.exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("--K", "500,500,100"), "--K"),
        (("--K=-500,500,100,80",), "--K"),
        (("--K", "nan,500,100,80"), "--K"),
        (("--K", "a,b,c,d"), "--K"),
        (("--fov", "0"), "--fov 0.0: expected degrees in (0, 180)"),
        (("--fov", "nan"), "--fov nan: expected degrees in (0, 180)"),
    ],
)
def test_hostile_intrinsics(frame, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    code, err, captured = _cli(_run_args(frame, out, extra=extra), capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], captured.err
    assert "Traceback" not in captured.err and not out.exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--methods", ","], "--methods ',': expected a comma-separated list"),
        (["--methods", "nonsense"], "nonsense"),
        (["--data", "{missing}"], "missing"),
        (["--data", "{empty}"], "no scenes"),
        (["--max-scenes", "0"], "--max-scenes"),
    ],
)
def test_hostile_eval(tmp_path, capsys, args, expected):
    (tmp_path / "empty").mkdir()
    args = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
    if "--data" not in args:
        args = ["--data", str(tmp_path / "empty"), *args]
    out = tmp_path / "out"
    code, err, captured = _cli(["eval", "pose", *args, "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], captured.err
    assert "Traceback" not in captured.err and not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--scenes", "0"], "--scenes"),
        (["--objects", "nowhere-source"], "nowhere-source"),
        (["--any-face", "2"], "--any-face"),
        (["--stack", "-1"], "--stack"),
        (["--min-objects", "4", "--max-objects", "2"], "objects"),
        (["--views", "0"], "--views"),
    ],
)
def test_hostile_generate(tmp_path, capsys, args, expected):
    out = tmp_path / "out"
    code, err, captured = _cli(["data", "generate", "--out", str(out), *args, "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], captured.err
    assert "Traceback" not in captured.err
    assert not out.exists() or not any(out.rglob("scene.json"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from scenemaker.cli import main

    root = tmp_path_factory.mktemp("hostile_data") / "data"
    assert main(["data", "generate", "--out", str(root), "--scenes", "1", "--views", "2",
                 "--resolution", "64", "--split", "test", "--quiet"]) == 0  # fmt: skip
    return root


def _copy(dataset, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    return copy, sorted(copy.glob("scene_*"))[0]


@pytest.mark.parametrize("case", ["truncated view", "text view", "missing view",
                                  "scene.json a list", "no dataset"])  # fmt: skip
def test_hostile_dataset_for_inspect_and_eval(dataset, tmp_path, capsys, case):
    copy, scene = _copy(dataset, tmp_path)
    rgb = sorted(scene.rglob("*rgb*.png"))[0]
    expected = {"truncated view": rgb.name, "text view": rgb.name, "missing view": rgb.name,
                "scene.json a list": "scene.json", "no dataset": "nowhere"}[case]  # fmt: skip
    if case == "truncated view":
        rgb.write_bytes(rgb.read_bytes()[:40])
    elif case == "text view":
        rgb.write_text("not a png")
    elif case == "missing view":
        rgb.unlink()
    elif case == "scene.json a list":
        (scene / "scene.json").write_text("[]")
    elif case == "no dataset":
        copy = tmp_path / "nowhere"
    for args in (["data", "inspect", str(copy), "--sheet", str(tmp_path / "sheet.png")],
                 ["eval", "pose", "--data", str(copy), "--methods", "box_fit",
                  "--out", str(tmp_path / "ev")]):  # fmt: skip
        code, err, captured = _cli(args, capsys)
        err = [line for line in err if "%|" not in line]  # progress bars are not errors
        assert code == 2 and len(err) == 1 and expected in err[0], (args[:2], captured.err)
        assert "Traceback" not in captured.err
