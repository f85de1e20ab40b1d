import json

import numpy as np
import pytest

from scenemaker.cli import main
from scenemaker.eval.pose_benchmark import build_methods, evaluate_scenes, summarize


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("bench") / "scenes"
    cfg = GenerateConfig(
        objects="procedural",
        split="test",
        surface_samples=4096,
        views=ViewConfig(views=2, width=128, height=128),
    )
    generate_dataset(root, 3, cfg, progress=False)
    return root


def test_oracle_is_perfect_and_box_fit_is_not(scenes):
    methods = build_methods(["oracle", "box_fit"])
    summary = summarize(evaluate_scenes([scenes], methods, samples_per_object=1024, progress=False))
    oracle, box = summary["oracle"], summary["box_fit"]
    assert oracle["iou_b"] == pytest.approx(1.0) and oracle["cd_s"] == pytest.approx(0.0)
    assert oracle["rot_err_deg"] == pytest.approx(0.0, abs=1e-4)
    assert oracle["add_s"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < box["iou_b"] < 1.0 and box["add_s"] > 0.01
    assert box["scenes"] == 3 and len(box["iou_b_ci95"]) == 2
    counted = sum(b["objects"] for b in box["by_occlusion"].values())
    assert counted >= 6


def test_pose_compensation_for_a_changed_canonical_frame(rng):
    from scipy.spatial.transform import Rotation

    from scenemaker.eval.pose_benchmark import compensate_pose
    from scenemaker.scene import Pose

    pose = Pose(Rotation.random(random_state=3).as_matrix(), rng.normal(size=3), 0.8)
    T = np.eye(4)
    T[:3, :3] = 0.6 * Rotation.random(random_state=4).as_matrix()
    T[:3, 3] = rng.normal(size=3)
    q = rng.normal(size=(50, 3))
    q_new = q @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(compensate_pose(pose, T).apply(q_new), pose.apply(q), atol=1e-9)


def test_eval_command_writes_metrics(scenes, tmp_path):
    assert (
        main(
            [
                "eval",
                "pose",
                "--data",
                str(scenes),
                "--methods",
                "oracle,box_fit",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    required = {
        "iou_b",
        "cd_s",
        "f_score_s",
        "cd_o",
        "f_score_o",
        "rot_err_deg",
        "add_s",
        "trans_err",
        "size_err",
        "seconds_per_scene",
    }
    assert required <= set(metrics["oracle"]) and "by_occlusion" in metrics["box_fit"]
    assert (
        main(
            [
                "eval",
                "pose",
                "--data",
                str(scenes),
                "--methods",
                "nope",
                "--out",
                str(tmp_path / "ev2"),
            ]
        )
        == 2
    )


def test_perturbed_meshes_are_canonical_deterministic_and_different():
    from scenemaker.eval.perturb import perturb_mesh
    from scenemaker.sources import get_source

    source = get_source("procedural")
    mesh = source.load(source.ids("test")[0]).mesh
    for level in (1, 2):
        a, T = perturb_mesh(mesh, np.random.default_rng(0), level)
        b, _ = perturb_mesh(mesh, np.random.default_rng(0), level)
        np.testing.assert_array_equal(a.vertices, b.vertices)
        assert np.abs(a.bounds).max() == pytest.approx(1.0)
        assert T.shape == (4, 4)
        # the surface really changed: chamfer against the original is clearly non-zero
        from scenemaker.eval.metrics import chamfer_distance

        assert chamfer_distance(a.sample(2000, seed=1), mesh.sample(2000, seed=1)) > 1e-3


def test_dense_meshes_keep_their_surface_and_frame(scenes, tmp_path):
    from scenemaker.eval.perturb import densify
    from scenemaker.sources import get_source

    source = get_source("procedural")
    mesh = source.load(source.ids("test")[0]).mesh
    dense, T = densify(mesh)
    assert len(dense.faces) >= 20000 and len(mesh.faces) < 20000
    np.testing.assert_array_equal(T, np.eye(4))
    np.testing.assert_allclose(dense.bounds, mesh.bounds, atol=1e-9)
    # the same surface: the original vertices kept, faces split in place (same area)
    np.testing.assert_array_equal(dense.vertices[: len(mesh.vertices)], mesh.vertices)
    assert dense.area == pytest.approx(mesh.area, rel=1e-9)
    # the ground truth needs no change: the oracle's poses stay exact (its IoU-B, from boxes
    # of surface samples, only sees that the two meshes are sampled differently)
    out = tmp_path / "ev"
    argv = ["eval", "pose", "--data", str(scenes), "--methods", "oracle", "--perturb", "dense",
            "--max-scenes", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    oracle = json.loads((out / "metrics.json").read_text())["oracle"]
    assert oracle["add_s"] < 1e-9 and oracle["rot_err_deg"] < 1e-6 and oracle["iou_b"] > 0.9


def test_eval_with_perturbed_meshes_runs(scenes, tmp_path):
    assert (
        main(
            [
                "eval",
                "pose",
                "--data",
                str(scenes),
                "--methods",
                "oracle",
                "--perturb",
                "level2",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # perturbed shapes: the shape measure sees the errors
    assert metrics["oracle"]["cd_o"] > 1e-3


def test_ground_truth_follows_a_changed_canonical_frame(scenes):
    """A similarity perturbation (no shape change): the compensated oracle stays perfect."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = 0.7 * Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix()
    T[:3, 3] = [0.2, -0.1, 0.3]

    def similarity(mesh, rng, obj):
        out = mesh.copy()
        out.apply_transform(T)
        return out, T

    summary = summarize(
        evaluate_scenes(
            [scenes],
            build_methods(["oracle"]),
            samples_per_object=1024,
            perturb=similarity,
            progress=False,
        )
    )["oracle"]
    assert summary["iou_b"] == pytest.approx(1.0, abs=1e-6)
    assert summary["cd_s"] == pytest.approx(0.0, abs=1e-5)


def test_depth_noise_levels_follow_the_specification():
    from scenemaker.eval.depth_noise import degrade_depth

    yy, xx = np.mgrid[0:120, 0:160]
    depth = np.full((120, 160), 3.0, np.float32)
    depth[30:90, 40:120] = 2.0  # an object in front of a wall: depth edges around it
    depth[:5] = 0.0  # no depth at the top
    assert np.array_equal(degrade_depth(depth, 0, np.random.default_rng(0)), depth)
    valid = depth > 0
    for level, (scale, sigma, holes) in {1: (0.05, 0.002, 0.02), 2: (0.15, 0.005, 0.06)}.items():
        out = degrade_depth(depth, level, np.random.default_rng(level))
        missing = valid & (out == 0)
        assert abs(missing.sum() / valid.sum() - holes) < 0.005
        # holes lie on the edges of the object (within 2 px of a depth jump)
        near_edge = (np.abs(yy - 30) <= 2) | (np.abs(yy - 89) <= 2) | (np.abs(xx - 40) <= 2)
        near_edge |= (np.abs(xx - 119) <= 2) | (yy <= 6)
        assert near_edge[missing].all()
        wall = out[100:, :30][out[100:, :30] > 0]
        ratio = np.median(wall) / 3.0
        assert abs(ratio - 1) <= scale + 1e-3
        assert abs(wall.std() / (sigma * 9.0 * ratio**2) - 1) < 0.2
    with pytest.raises(ValueError, match="depth noise level"):
        degrade_depth(depth, 3, np.random.default_rng(0))
