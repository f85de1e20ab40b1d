import json
import subprocess
import sys

import numpy as np
import pygltflib
import pytest
import trimesh
from PIL import Image

from scenemaker.cli import main
from scenemaker.sources import get_source
from scenemaker.synth.inspect import dataset_statistics, load_scene_payloads


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "data"
    code = main(
        [
            "data",
            "generate",
            "--out",
            str(out),
            "--scenes",
            "3",
            "--views",
            "4",
            "--resolution",
            "64",
            "--objects",
            "procedural",
            "--split",
            "test",
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_inspect_statistics_and_contact_sheet(dataset, capsys):
    assert main(["data", "inspect", str(dataset), "--tiles", "6"]) == 0
    printed = capsys.readouterr().out
    assert "3 scenes, 12 views" in printed and "contact sheet" in printed
    scenes = load_scene_payloads(dataset)
    stats = dataset_statistics(scenes)
    n_object_views = sum(len(p["objects"]) * len(p["views"]) for _, p in scenes)
    assert sum(stats["occlusion_histogram"].values()) == n_object_views
    assert sum(stats["objects_per_scene"].values()) == 3
    assert sum(stats["categories"].values()) == sum(len(p["objects"]) for _, p in scenes)
    assert set(stats["sources"]) == {"procedural"}
    sheet = Image.open(dataset / "contact_sheet.png")
    assert sheet.size == (6 * 64, 64)  # 6 tiles in one row of 6 columns
    # masks are drawn: the sheet differs from the plain RGB views
    rgb = np.asarray(Image.open(dataset / "scene_000000" / "views" / "000_rgb.png"))
    assert not np.array_equal(np.asarray(sheet)[:, :64], rgb)


def test_test_split_objects_are_test_objects(dataset):
    source = get_source("procedural")
    test_ids = set(source.ids("test"))
    manifest = json.loads((dataset / "manifest.json").read_text())
    used = {key.split("/", 1)[1] for key in manifest["objects"]}
    assert used and used <= test_ids


def test_export_command_writes_glb(dataset, tmp_path):
    glb = tmp_path / "scene.glb"
    assert main(["export", str(dataset / "scene_000000" / "scene.json"), "--out", str(glb)]) == 0
    gltf = pygltflib.GLTF2().load(str(glb))
    payload = json.loads((dataset / "scene_000000" / "scene.json").read_text())
    object_nodes = [n for n in gltf.nodes if n.name and n.name.startswith("object_")]
    assert len(object_nodes) == len(payload["objects"])
    assert sum(n.camera is not None for n in gltf.nodes) == 1
    assert (
        main(
            [
                "export",
                str(dataset / "scene_000000" / "scene.json"),
                "--out",
                str(glb),
                "--camera",
                "99",
            ]
        )
        == 2
    )


def test_inspect_missing_folder_is_one_line_error(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_objaverse_local_folder(tmp_path):
    (tmp_path / "glbs").mkdir()
    for uid in ("aaa111", "bbb222"):
        trimesh.creation.annulus(0.3, 0.5, 0.4).export(tmp_path / "glbs" / f"{uid}.glb")
    source = get_source(f"objaverse:{tmp_path / 'glbs'}")
    assert source.all_ids() == ["aaa111", "bbb222"]
    asset = source.load("aaa111")
    assert asset.source == "objaverse"
    np.testing.assert_allclose(np.abs(asset.mesh.bounds).max(), 1.0)


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "scenemaker.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("data", "demo", "export"):
        assert command in out.stdout


def test_bad_paths_and_values_are_one_line_errors(dataset, tmp_path, capsys):
    scene_json = str(dataset / "scene_000000" / "scene.json")
    assert main(["export", scene_json, "--out", str(tmp_path)]) == 2  # a folder, not a file
    assert main(["data", "inspect", str(dataset), "--tiles", "0"]) == 2
    assert main(["data", "generate", "--out", str(tmp_path / "o"), "--objects", "objaverse:"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)
    assert not (tmp_path / "o").exists()


def test_demo_command(tmp_path, capsys):
    import json

    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--scenes",
        "1",
        "--resolution",
        "160",
        "--generator",
        "lift",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "demo_report.json").read_text())
    scene = report["scenes"][0]
    assert (out / "scene_00" / "pipeline" / "scene.glb").is_file()
    for run in ("pipeline", "oracle"):  # every PAPER.md metric, measured against the truth
        assert {"cd_s", "f_score_s", "cd_o", "f_score_o", "iou_b", "mask_iou"} <= set(scene[run])
    assert scene["oracle"]["cd_o"] < 1e-6  # ground-truth meshes: no shape error
    assert scene["pipeline"]["cd_o"] > scene["oracle"]["cd_o"]  # lifted hulls: some
    assert "mean" in printed and "mask_iou" in printed
    # the demo's objects are test-split objects, never in the retrieval library
    data = json.loads((out / "data" / "generate.json").read_text())
    assert data["config"]["split"] == "test"
    # a second demo with other settings starts afresh instead of refusing
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--scenes",
                "1",
                "--resolution",
                "128",
                "--generator",
                "lift",
            ]
        )
        == 0
    )


def test_bad_pose_settings_are_one_line_errors(dataset, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "pose",
                "--data",
                str(dataset),
                "--out",
                str(tmp_path / "t"),
                "--preset",
                "tiny",
                "--batch-size",
                "0",
            ]
        )
        == 2
    )
    assert not (tmp_path / "t").exists()  # nothing prepared or written
    assert (
        main(
            [
                "eval",
                "pose",
                "--data",
                str(dataset),
                "--methods",
                "dit",
                "--steps",
                "0",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "eval",
                "pose",
                "--data",
                str(dataset),
                "--methods",
                "dit",
                "--guidance",
                "-1",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)
    assert not (tmp_path / "e").exists()
