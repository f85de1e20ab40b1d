import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from scenemaker.synth.cameras import ViewConfig
from scenemaker.synth.dataset import DatasetScene, list_scenes
from scenemaker.synth.generate import GenerateConfig, GenerationError, generate_dataset
from scenemaker.synth.layout import LayoutConfig, LayoutError

SMALL_VIEWS = ViewConfig(views=3, width=64, height=64, min_visible_pixels=4)


def _config(**kw):
    kw.setdefault("objects", "pybullet")
    kw.setdefault("views", SMALL_VIEWS)
    kw.setdefault("surface_samples", 2048)
    return GenerateConfig(**kw)


def _tree_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _same_tree(a: Path, b: Path, skip=("manifest.json",)) -> None:
    files = [f for f in _tree_files(a) if Path(f).name not in skip]
    assert files == [f for f in _tree_files(b) if Path(f).name not in skip]
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, mismatch[:5]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    generate_dataset(out, 3, _config(), workers=1, progress=False)
    return out


def test_deterministic_across_runs_and_workers(reference, tmp_path):
    out = tmp_path / "data"
    generate_dataset(out, 3, _config(), workers=2, progress=False)
    _same_tree(reference, out)


def test_resume_redoes_only_missing_scenes(reference, tmp_path):
    import shutil

    out = tmp_path / "data"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "scene_000001")
    (out / ".tmp_scene_000002_12345").mkdir()  # left over by a killed worker
    shared = next((out / "objects").glob("*/*"))
    (shared / ".samples.npz.k1ll3d.tmp").write_bytes(b"half")  # killed writing a shared object
    before = (out / "scene_000000" / "scene.json").stat().st_mtime_ns
    result = generate_dataset(out, 3, _config(), workers=1, progress=False)
    assert result["run"] == {**result["run"], "scenes_written": 1, "scenes_kept": 2}
    assert (out / "scene_000000" / "scene.json").stat().st_mtime_ns == before
    assert not list(out.glob(".tmp_scene_*"))
    assert not list(shared.glob(".*.tmp"))
    _same_tree(reference, out)


def test_killed_run_leaves_no_partial_scene_and_resumes(reference, tmp_path):
    out = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "scenemaker.cli",
        "data",
        "generate",
        "--out",
        str(out),
        "--scenes",
        "12",
        "--views",
        "3",
        "--resolution",
        "64",
        "--objects",
        "pybullet",
        "--quiet",
    ]
    # the CLI uses the default min_visible_pixels / surface samples: compare against itself
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("scene_*"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for scene in out.glob("scene_*"):
        # a scene folder exists only once complete
        DatasetScene(scene).amodal_masks()
        assert (scene / "points.npz").is_file()
    done_before = len(list(out.glob("scene_*")))
    assert 2 <= done_before < 12
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert not list(out.glob(".tmp_scene_*"))
    assert len(list_scenes(out)) == 12
    fresh = tmp_path / "fresh"
    cmd_fresh = [*cmd[:6], str(fresh), *cmd[7:]]
    assert subprocess.run(cmd_fresh, capture_output=True).returncode == 0
    _same_tree(out, fresh)


def test_scene_files_are_consistent_with_poses(reference):
    scene = DatasetScene(reference / "scene_000000")
    assert 2 <= len(scene.payload["objects"]) <= 5
    for obj in scene.scene.objects:
        points, normals = scene.canonical_samples(obj.instance_id)
        assert points.shape == (2048, 3) and points.dtype == np.float32
        assert np.abs(points).max() == pytest.approx(1.0, abs=2e-3)  # canonical
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=2e-3)
    stored = scene.stored_points()
    for v in range(scene.num_views):
        view = scene.view(v)
        for obj in scene.scene.objects:
            # posed surface samples that are visible land on this object's pixels
            points, _ = scene.canonical_samples(obj.instance_id)
            posed = obj.pose.apply(points)
            posed = posed[posed[:, 1] > 0.02]  # where objects touch the floor, depths agree
            uv, z = view.camera.project(posed)
            px = np.rint(uv).astype(int)
            inside = (px[:, 0] >= 0) & (px[:, 0] < 64) & (px[:, 1] >= 0) & (px[:, 1] < 64)
            px, z = px[inside], z[inside]
            rendered = view.depth[px[:, 1], px[:, 0]]
            seen = np.abs(rendered - z) < 0.01
            assert seen.sum() > 0
            ids = view.instance[px[seen, 1], px[seen, 0]]
            # at 64 px, silhouette pixels next to the floor at grazing angles may show floor
            assert (ids == obj.instance_id).mean() > 0.85
            assert set(np.unique(ids)) <= {1, obj.instance_id}
            # stored observed points are a subset of the back-projected depth
            sub = stored[f"v{v:03d}_i{obj.instance_id:03d}"]
            full = scene.observed_points(v, obj.instance_id)
            assert 0 < len(sub) <= len(full)
            from scipy.spatial import cKDTree

            assert cKDTree(full).query(sub)[0].max() < 0.01  # float16 storage
    masks = scene.amodal_masks()
    assert masks.shape == (3, len(scene.payload["objects"]), 64, 64)


def test_manifest_records_sources_and_licences(reference):
    import json

    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["schema"] == "scenemaker.dataset/1"
    assert len(manifest["scenes"]) == 3
    for entry in manifest["objects"].values():
        assert entry["source"] == "pybullet" and entry["licence"].startswith("Zlib")
        assert (reference / entry["mesh_file"]).is_file()


def test_bad_inputs(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(GenerationError, match="output path is a file"):
        generate_dataset(a_file, 1, _config(), progress=False)
    with pytest.raises(FileNotFoundError, match="nor an existing folder"):
        generate_dataset(
            tmp_path / "o1", 1, _config(objects=str(tmp_path / "nope")), progress=False
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no mesh files"):
        generate_dataset(
            tmp_path / "o2", 1, _config(objects=str(tmp_path / "empty")), progress=False
        )
    with pytest.raises(LayoutError, match="cannot fit"):
        generate_dataset(
            tmp_path / "o3",
            1,
            _config(layout=LayoutConfig(min_objects=5, max_objects=5, arena_radius=0.2)),
            progress=False,
        )
    generate_dataset(tmp_path / "o4", 1, _config(), progress=False)
    with pytest.raises(GenerationError, match="other settings"):
        generate_dataset(tmp_path / "o4", 1, _config(seed=1), progress=False)
    assert not list((tmp_path / "o3").glob("scene_*"))


def test_folder_source_skips_broken_meshes(tmp_path):
    meshes = tmp_path / "meshes"
    (meshes / "chair").mkdir(parents=True)
    for k in range(4):
        trimesh.creation.box((0.5 + 0.1 * k, 1.0, 0.3)).export(meshes / "chair" / f"c{k}.obj")
    trimesh.creation.cylinder(0.2, 1.0).export(meshes / "bottle.glb")
    (meshes / "broken.obj").write_text("v 0 0 0\nf 1 2 3\nthis is not a mesh\n")
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False)
    flat.export(meshes / "flat.ply")
    nan = trimesh.creation.box()
    nan.vertices[0] = np.nan
    nan.export(meshes / "nan.stl")
    out = tmp_path / "data"
    with pytest.warns(UserWarning, match="skipping mesh"):
        result = generate_dataset(
            out,
            8,
            _config(
                objects=str(meshes), split="all", layout=LayoutConfig(min_objects=2, max_objects=3)
            ),
            progress=False,
        )
    skipped = result["skipped_meshes"]
    assert set(skipped) == {"broken.obj", "flat.ply", "nan.stl"}
    assert all(name in why for name, why in skipped.items())
    labels = {o["label"] for s in list_scenes(out) for o in s.payload["objects"]}
    assert labels <= {"chair", "object"} and "chair" in labels


def test_import_is_light():
    code = (
        "import sys, scenemaker, scenemaker.cli, scenemaker.scene;"
        "heavy = {'torch', 'moderngl', 'diffusers', 'transformers', 'bpy', 'ray', 'open3d',"
        " 'gradio', 'trimesh'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_errors_are_one_line(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenemaker.cli",
            "data",
            "generate",
            "--out",
            str(tmp_path / "o"),
            "--objects",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "missing" in res.stderr
    assert "Traceback" not in res.stderr


def test_ctrl_c_with_workers_stops_promptly(tmp_path):
    out = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "scenemaker.cli",
        "data",
        "generate",
        "--out",
        str(out),
        "--scenes",
        "200",
        "--views",
        "3",
        "--resolution",
        "64",
        "--objects",
        "pybullet",
        "--workers",
        "2",
        "--quiet",
    ]
    # a shell that started the tests in the background leaves SIGINT ignored; a user's
    # terminal does not: restore the default so Python installs its Ctrl-C handler
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("scene_*"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stopped = time.time()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command" in err
    assert time.time() - stopped < 20
    n = len(list(out.glob("scene_*")))
    assert n < 100  # stopped, did not run on to the end
    time.sleep(2)
    assert len(list(out.glob("scene_*"))) == n  # and no orphaned worker keeps writing
    assert (out / "manifest.json").is_file()


def test_failed_run_leaves_no_output_folder(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(LayoutError):
        generate_dataset(
            out,
            2,
            _config(layout=LayoutConfig(min_objects=5, max_objects=5, arena_radius=0.2)),
            progress=False,
        )
    assert not out.exists()
    with pytest.raises(GenerationError, match="seed must be >= 0"):
        generate_dataset(out, 1, _config(seed=-1), progress=False)
    assert not out.exists()


def test_stacked_objects_rest_on_the_object_below(tmp_path):
    """With --stack every object off the floor touches another object's surface: it was
    lowered from its support's box top onto the support itself (procedural shapes are rarely
    boxes, so resting on the box top would leave most of them afloat)."""
    from scipy.spatial import cKDTree

    from scenemaker.geometry.sampling import sample_surface

    layout = LayoutConfig(min_objects=3, max_objects=3, stack=1.0)
    out = tmp_path / "stacked"
    generate_dataset(out, 8, _config(objects="procedural", layout=layout), progress=False)
    stacked = 0
    for scene in list_scenes(out):
        objects = scene.scene.objects
        surfaces = [o.pose.apply(sample_surface(o.mesh, 8192, seed=1)[0]) for o in objects]
        for k, points in enumerate(surfaces):
            low = points[:, 1].min()
            if low < 1e-3:
                continue  # on the floor
            bottom = points[points[:, 1] < low + 0.01 * objects[k].pose.s]
            gap = min(cKDTree(surfaces[j]).query(bottom)[0].min()
                      for j in range(len(objects)) if j != k)  # fmt: skip
            assert gap < 0.01 + 0.03 * objects[k].pose.s, (scene.folder.name, k, gap)
            stacked += 1
    assert stacked >= 5
