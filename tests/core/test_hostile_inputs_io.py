"""Hostile user files: COCO masks that crash or hang pycocotools, absurd --resolution values,
scene.json paths that lead outside the scene's data. Each ends in one line and a non-zero
exit, never a traceback, a crash or a read of another file."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from PIL import Image

from scenemaker.cli import main
from scenemaker.errors import InputError
from scenemaker.perception.inputs import read_user_masks
from scenemaker.scene import ObjectInstance, Pose, Scene, resolve_scene_file
from scenemaker.synth.cameras import ViewConfig
from scenemaker.synth.dataset import DatasetScene

SIDE = 16  # the test image is SIDE x SIDE


# ----------------------------------------------------------------------------- COCO masks


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """A photo and an aligned depth map that `scenemaker run` accepts."""
    folder = tmp_path_factory.mktemp("frame")
    Image.fromarray(np.full((SIDE, SIDE, 3), 128, np.uint8)).save(folder / "image.png")
    np.save(folder / "depth.npy", np.full((SIDE, SIDE), 2.0, np.float32))
    return folder


def _run_cli(frame, masks, out):
    """`scenemaker run` in a child process: a crash or hang there fails the test, not pytest."""
    env = {k: v for k, v in os.environ.items() if k != "SCENEMAKER_DEBUG"}
    env["HF_HUB_OFFLINE"] = "1"
    args = ["run", str(frame / "image.png"), "--masks", str(masks), "--out", str(out),
            "--depth-file", str(frame / "depth.npy"), "--fov", "60", "--refine", "none", "--quiet"]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "scenemaker.cli", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def _rle(counts, size=(SIDE, SIDE)):
    return [{"segmentation": {"size": list(size), "counts": counts}}]


HOSTILE_COCO = {
    # polygons: pycocotools segfaults on these coordinates and hangs on NaN
    "polygon_2e31": (
        [{"segmentation": [[0, 0, 2**31, 0, 2**31, 2**31]]}],
        "unusable segmentation (polygon 0 has coordinates beyond |x| <= 64, |y| <= 64",
    ),
    "polygon_minus_1e9": (
        [{"segmentation": [[1, 1, 5, 1, -1e9, -1e9]]}],
        "unusable segmentation (polygon 0 has coordinates beyond |x| <= 64, |y| <= 64",
    ),
    "polygon_nan": (
        [{"segmentation": [[0, 0, float("nan"), 0, 5, 5]]}],
        "unusable segmentation (polygon 0 holds NaN or infinite coordinates)",
    ),
    "polygon_infinity": (
        [{"segmentation": [[1, 1, 4, 1, 4, float("inf")]]}],
        "unusable segmentation (polygon 0 holds NaN or infinite coordinates)",
    ),
    "polygon_odd": (
        [{"segmentation": [[1, 1, 4, 1, 4]]}],
        "unusable segmentation (polygon 0 has 5 numbers; expected 3 or more x, y pairs)",
    ),
    "polygon_text": (
        [{"segmentation": [[1, 1, "4", 1, 4, 4]]}],
        "unusable segmentation (polygon 0 must be a list of numbers",
    ),
    "polygon_huge_image": (
        {
            "images": [{"id": 1, "width": 10**9, "height": 10**9}],
            "annotations": [{"image_id": 1, "segmentation": [[1, 1, 4, 1, 4, 4]]}],
        },
        "unusable segmentation (size 1000000000x1000000000 (height x width) exceeds",
    ),
    # RLE: counts that overflow pycocotools' uint32 or its buffer
    "rle_counts_4e10": (
        _rle([4e10, 3]),
        f"unusable segmentation (RLE run lengths sum to 40000000003; expected {SIDE * SIDE}",
    ),
    "rle_negative_count": (
        _rle([-5, SIDE * SIDE + 5]),
        "unusable segmentation (RLE 'counts' holds a negative run length)",
    ),
    "rle_short": (
        _rle([3, 4]),
        f"unusable segmentation (RLE run lengths sum to 7; expected {SIDE * SIDE} = height",
    ),
    "rle_counts_number": (
        _rle(4e10),
        "unusable segmentation (RLE 'counts' must be a list of run lengths or a compressed",
    ),
    "rle_huge_size": (
        _rle([10**18], size=(10**9, 10**9)),
        "unusable segmentation (size 1000000000x1000000000 (height x width) exceeds",
    ),
    "rle_size_infinite": (
        [{"segmentation": {"size": [1e400, SIDE], "counts": [SIDE * SIDE]}}],
        "unusable segmentation (size inf",
    ),
    "rle_string_cut": (
        _rle("0000P"),  # 'P' says another 5-bit group follows, but the string ends
        "unusable segmentation (compressed RLE 'counts' ends inside a number)",
    ),
    "rle_string_big_sum": (
        _rle("1" + "o" * 20),  # a count of ever more 5-bit groups: far beyond any image
        "unusable segmentation (compressed RLE 'counts' holds a number too large)",
    ),
    "rle_string_wrong_sum": (
        _rle("05"),  # counts 0, 5: not 256
        f"unusable segmentation (RLE run lengths sum to 5; expected {SIDE * SIDE}",
    ),
    "image_id_list": (
        [{"image_id": [1], "segmentation": [[1, 1, 4, 1, 4, 4]]}],
        "annotation 0: 'image_id' must be an integer or text",
    ),
}


def _write_json(path, payload):
    # json.dumps writes NaN / Infinity literals, as some tools do
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE_COCO))
def test_hostile_coco_masks_are_one_line_cli_errors(frame, tmp_path, case):
    payload, message = HOSTILE_COCO[case]
    masks = _write_json(tmp_path / f"{case}.json", payload)
    done = _run_cli(frame, masks, tmp_path / "out")
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # not a signal (< 0)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {masks}: annotation 0: "), lines[0]
    assert message in lines[0]
    assert not (tmp_path / "out").exists()  # nothing half-written: the new folder is gone


def test_deeply_nested_coco_json_is_one_line(frame, tmp_path):
    masks = _write_json(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    done = _run_cli(frame, masks, tmp_path / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {masks}: not valid JSON (maximum")


def test_bad_categories_and_images_lists_are_named(tmp_path):
    ann = {"segmentation": {"size": [4, 4], "counts": [16]}}
    for key in ("categories", "images"):
        path = _write_json(tmp_path / f"{key}.json", {key: 5, "annotations": [ann]})
        with pytest.raises(InputError, match=rf"{key}.json: '{key}' must be a list of objects"):
            read_user_masks(path, (4, 4))
    full = {"size": [4, 4], "counts": [0, 16]}
    odd_ids = {
        "categories": [{"id": [1], "name": "x"}, {"id": 2, "name": "cup"}],
        "annotations": [{"segmentation": full, "category_id": 2, "score": 10**400}],
    }
    path = _write_json(tmp_path / "ids.json", odd_ids)
    masks, _ = read_user_masks(path, (4, 4))
    assert masks.labels == ["cup"] and masks.scores == [None] and masks.masks.all()


def test_compressed_rle_decoded_like_pycocotools(tmp_path):
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    expected, annotations = [], []
    for k in range(40):
        mask = (rng.uniform(size=(SIDE, SIDE)) < rng.uniform()).astype(np.uint8)
        if k % 2:  # long runs (counts of several 5-bit groups)
            mask = np.zeros((SIDE, SIDE), np.uint8)
            mask[rng.integers(SIDE) :, rng.integers(SIDE) :] = 1
        counts = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
        annotations.append({"segmentation": {"size": [SIDE, SIDE], "counts": counts}})
        expected.append(mask.astype(bool))
    path = _write_json(tmp_path / "rle.json", annotations)
    masks, notes = read_user_masks(path, (SIDE, SIDE))
    kept = [m for m in expected if m.any()]
    assert len(masks) == len(kept) and len(notes) == len(expected) - len(kept)
    np.testing.assert_array_equal(masks.masks, np.stack(kept))


def test_rle_at_the_original_size_is_resized(tmp_path):
    counts = [2 * SIDE * SIDE, 2 * SIDE * SIDE]  # 2x the image: the right half set
    path = _write_json(tmp_path / "big.json", _rle(counts, size=(2 * SIDE, 2 * SIDE)))
    masks, notes = read_user_masks(path, (SIDE, SIDE))
    assert masks.masks.shape == (1, SIDE, SIDE)
    assert masks.masks[0, :, SIDE // 2 :].all() and not masks.masks[0, :, : SIDE // 2].any()


# ----------------------------------------------------------------------------- --resolution


@pytest.mark.parametrize("value", ["100000", "0", "-256", "31", "4097"])
def test_generate_resolution_out_of_range_is_one_line(tmp_path, capsys, value):
    out = tmp_path / "data"
    args = ["data", "generate", "--out", str(out), "--scenes", "1", "--views", "1"]
    assert main([*args, "--resolution", value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: --resolution {value}: expected 32..4096 pixels (the side of the square"
        " rendered images)"
    ]
    assert not out.exists()


def test_demo_resolution_out_of_range_is_one_line(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--resolution", "100000"]) == 2
    assert capsys.readouterr().err.startswith("error: --resolution 100000: expected 32..4096")
    assert not out.exists()


def test_view_config_bounds_the_image_size():
    with pytest.raises(ValueError, match=r"image size must be 32..4096 pixels a side, got 5000x64"):
        ViewConfig(width=5000, height=64).validate()
    ViewConfig(width=4096, height=32).validate()


# ----------------------------------------------------------------------------- scene.json paths


def _write_scene(folder, mesh_file, mesh_at=None):
    """A one-object scene.json in ``folder`` naming ``mesh_file``; the box saved at ``mesh_at``."""
    folder.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.creation.box((1.0, 0.5, 0.5))
    if mesh_at is not None:
        mesh_at.parent.mkdir(parents=True, exist_ok=True)
        mesh.export(mesh_at)
    obj = ObjectInstance(mesh, "box", Pose(np.eye(3), [0.0, 0.25, 0.0], 1.0), mesh_file=mesh_file)
    Scene([obj]).save_json(folder / "scene.json")
    return folder / "scene.json"


def _export(scene_json, out, capsys):
    code = main(["export", str(scene_json), "--out", str(out)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_export_refuses_etc_passwd(tmp_path, capsys):
    scene_json = _write_scene(tmp_path / "scene", "/etc/passwd")
    code, err = _export(scene_json, tmp_path / "x.glb", capsys)
    assert code == 2 and err == [
        f"error: {scene_json}: objects[0].mesh_file: absolute path '/etc/passwd' refused"
        " (expected a path relative to the scene folder)"
    ]
    assert not (tmp_path / "x.glb").exists()


def test_export_refuses_absolute_path_to_a_real_mesh(tmp_path, capsys):
    outside = tmp_path / "elsewhere" / "box.ply"
    scene_json = _write_scene(tmp_path / "scene", str(outside), mesh_at=outside)
    code, err = _export(scene_json, tmp_path / "x.glb", capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(
        f"error: {scene_json}: objects[0].mesh_file: absolute path '{outside}'"
    )
    assert not (tmp_path / "x.glb").exists()


def test_export_refuses_dot_dot_escape(tmp_path, capsys):
    scene_json = _write_scene(tmp_path / "a" / "scene", "../../x.glb", mesh_at=tmp_path / "x.glb")
    code, err = _export(scene_json, tmp_path / "out.glb", capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(
        f"error: {scene_json}: objects[0].mesh_file: '../../x.glb' leads outside"
        f" {tmp_path / 'a' / 'scene'} (expected a file inside the scene's folder"
    )
    assert not (tmp_path / "out.glb").exists()


def test_export_refuses_symlink_to_outside(tmp_path, capsys):
    outside = tmp_path / "secret" / "box.ply"
    scene_json = _write_scene(tmp_path / "scene", "mesh.ply", mesh_at=outside)
    (tmp_path / "scene" / "mesh.ply").symlink_to(outside)
    code, err = _export(scene_json, tmp_path / "out.glb", capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {scene_json}: objects[0].mesh_file: 'mesh.ply' leads outside")
    assert not (tmp_path / "out.glb").exists()


def test_relative_paths_and_inner_symlinks_still_load(tmp_path, capsys):
    folder = tmp_path / "scene"
    scene_json = _write_scene(folder, "meshes/box.ply", mesh_at=folder / "meshes" / "box.ply")
    code, err = _export(scene_json, tmp_path / "ok.glb", capsys)
    assert code == 0 and err == [] and (tmp_path / "ok.glb").is_file()
    (folder / "link.ply").symlink_to(folder / "meshes" / "box.ply")
    _write_scene(folder, "./meshes/../link.ply")
    assert len(Scene.load_json(scene_json).objects[0].mesh.vertices) == 8


def _dataset(tmp_path, mesh_file="../objects/box/mesh.ply", generate_json=True):
    """A generated-dataset layout: scenes share DATASET/objects through '..'."""
    root = tmp_path / "data"
    scene_json = _write_scene(root / "scene_000000", mesh_file, root / "objects/box/mesh.ply")
    np.savez(root / "objects/box/samples.npz", points=np.zeros((4, 3)), normals=np.zeros((4, 3)))
    if generate_json:
        (root / "generate.json").write_text("{}")
    return root, scene_json


def test_generated_dataset_may_share_its_objects_folder(tmp_path):
    root, scene_json = _dataset(tmp_path)
    assert len(Scene.load_json(scene_json).objects[0].mesh.faces) == 12
    points, _ = DatasetScene(root / "scene_000000").canonical_samples(2)
    assert points.shape == (4, 3)
    (root / "generate.json").unlink()  # not a dataset: the scene folder is the limit
    with pytest.raises(InputError, match=r"objects\[0\].mesh_file: '../objects/box/mesh.ply'"):
        Scene.load_json(scene_json)


def test_dataset_reader_refuses_paths_leading_outside(tmp_path):
    root, _ = _dataset(tmp_path, mesh_file="../../outside/mesh.ply")
    scene = DatasetScene(root / "scene_000000")
    with pytest.raises(InputError, match=r"objects\[0\].mesh_file: '../../outside/mesh.ply' leads"):
        scene.canonical_samples(2)
    with pytest.raises(InputError, match=r"objects\[0\].mesh_file: '../../outside/mesh.ply' leads"):
        scene.scene  # noqa: B018 - the property loads the meshes
    scene.payload["views"] = [{"rgb": "/etc/passwd", "depth": "d.png", "instance": "i.png"}]
    with pytest.raises(InputError, match=r"views\[0\].rgb: absolute path '/etc/passwd' refused"):
        scene.view(0)


@pytest.mark.parametrize(
    ("rgb", "message"),
    [
        ("/etc/passwd", "views[0].rgb: absolute path '/etc/passwd' refused"),
        ("../../outside.png", "views[0].rgb: '../../outside.png' leads outside"),
        ("link.png", "views[0].rgb: 'link.png' leads outside"),
    ],
)
def test_inspect_refuses_view_files_outside_the_dataset(tmp_path, capsys, rgb, message):
    root = tmp_path / "data"
    scene = root / "scene_000000"
    scene.mkdir(parents=True)
    (root / "generate.json").write_text("{}")
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(outside)
    (scene / "link.png").symlink_to(outside)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(scene / "instance.png")
    view = {"index": 0, "rgb": rgb, "instance": "instance.png", "objects": []}
    payload = {"schema": "scenemaker.scene/1", "objects": [], "views": [view]}
    (scene / "scene.json").write_text(json.dumps(payload))
    assert main(["data", "inspect", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {scene / 'scene.json'}: {message}")
    assert not (root / "contact_sheet.png").exists()


def test_resolve_scene_file_refuses_non_paths(tmp_path):
    scene_json = tmp_path / "scene.json"
    for value in (5, "", "a\0b", ["x"]):
        with pytest.raises(InputError, match=r"scene.json: views\[1\].depth: expected a file path"):
            resolve_scene_file(scene_json, value, "views[1].depth")
    assert resolve_scene_file(scene_json, "a/b.png", "f") == (tmp_path / "a/b.png").resolve()
