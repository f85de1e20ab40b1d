import json
import warnings

import numpy as np
import pytest
import torch

from scenemaker.geometry.points import farthest_point_sample
from scenemaker.pose.config import preset
from scenemaker.pose.data import PoseDataset, prepare_pose_data
from scenemaker.pose.encoding import decode_pose, encode_pose
from scenemaker.pose.estimator import DiTPoseEstimator, Observation, load_pose_model
from scenemaker.pose.flow import flow_matching_loss, loss_weight
from scenemaker.pose.model import PoseDiT
from scenemaker.pose.train import train_pose

TINY = preset("tiny").model


def _model(attention="full", seed=0):
    torch.manual_seed(seed)
    model = PoseDiT(**{**TINY.model_kwargs(), "attention": attention})
    # zero-initialised heads make every output 0: randomise them so tests see real signal
    for head in (model.rot_out, model.trans_out, model.size_out):
        torch.nn.init.normal_(head.weight, std=0.5)
    return model.eval()


def _batch(b=2, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p, c = TINY.num_points, TINY.num_canonical
    return {
        "local_points": torch.randn(b, n, p, 3, generator=g),
        "scene_points": torch.randn(b, n, p, 3, generator=g),
        "box": torch.randn(b, n, 6, generator=g),
        "canonical": torch.randn(b, n, c, 6, generator=g),
        "object_mask": torch.ones(b, n, dtype=torch.bool),
    }


def _run(model, batch, x, t):
    with torch.no_grad():
        return model(x, t, model.encode_conditions(batch), batch["object_mask"])


@pytest.mark.parametrize("attention", ["full", "global_local", "global"])
def test_output_is_equivariant_to_object_order(attention):
    model, batch = _model(attention), _batch()
    x, t = torch.randn(2, 3, 10), torch.tensor([100.0, 900.0])
    out = _run(model, batch, x, t)
    perm = torch.tensor([2, 0, 1])
    permuted = {k: v[:, perm] for k, v in batch.items()}
    out_perm = _run(model, permuted, x[:, perm], t)
    assert out.abs().mean() > 1e-3
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attention", ["full", "global"])
def test_padding_objects_change_nothing_and_give_no_nan(attention):
    model, batch = _model(attention), _batch(b=1, n=2)
    x, t = torch.randn(1, 2, 10), torch.tensor([500.0])
    out = _run(model, batch, x, t)
    padded = {
        k: torch.cat(
            [
                v,
                torch.zeros_like(v[:, :1])
                if v.dtype == torch.bool
                else 5 * torch.randn_like(v[:, :1]),
            ],
            1,
        )
        for k, v in batch.items()
    }
    out_padded = _run(model, padded, torch.cat([x, torch.randn(1, 1, 10)], 1), t)
    torch.testing.assert_close(out_padded[:, :2], out, atol=1e-5, rtol=1e-4)
    assert (out_padded[:, 2] == 0).all()
    # a row that is nothing but padding must stay finite
    empty = {k: v.clone() for k, v in padded.items()}
    empty["object_mask"][:] = False
    assert torch.isfinite(_run(model, empty, torch.randn(1, 3, 10), t)).all()


def test_any_number_of_objects():
    model = _model()
    for n in (1, 9):
        out = _run(model, _batch(1, n), torch.randn(1, n, 10), torch.tensor([10.0]))
        assert out.shape == (1, n, 10) and torch.isfinite(out).all()


def test_flow_loss_is_zero_for_the_true_velocity_and_weighted():
    class Oracle(torch.nn.Module):
        """Predicts the exact velocity eps - x0 (knows the noise through the sample)."""

        def forward(self, z, timestep, conditions=None, object_mask=None, batch=None, drop=None):
            sigma = (timestep / 1000.0)[:, None, None]
            return (z - self.x0) / sigma  # z = (1-s) x0 + s eps  =>  v = (z - x0) / s

    batch = _batch()
    batch["target"] = torch.randn(2, 3, 10)
    oracle = Oracle()
    oracle.x0 = batch["target"]
    loss, terms = flow_matching_loss(oracle, batch, generator=torch.Generator().manual_seed(0))
    assert float(loss) == pytest.approx(0.0, abs=1e-8)
    assert set(terms) == {"rotation", "translation", "size"}
    assert float(loss_weight(torch.tensor(0.5))) == pytest.approx(2 / (np.pi * 0.5))
    model = _model()
    loss, _ = flow_matching_loss(model.train(), batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert float(loss.detach()) > 0 and all(p.grad is not None for p in model.rot_in.parameters())


def test_pose_encoding_round_trip(rng):
    from scipy.spatial.transform import Rotation

    R = Rotation.random(4, random_state=2).as_matrix()
    t, s = rng.normal(size=(4, 3)), rng.uniform(0.2, 2.0, 4)
    center, scale = rng.normal(size=3), 1.7
    x = encode_pose(R, t, s, center, scale)
    R2, t2, s2 = decode_pose(x, center, scale)
    np.testing.assert_allclose(R2, R, atol=1e-5)
    np.testing.assert_allclose(t2, t, atol=1e-5)
    np.testing.assert_allclose(s2, s, atol=1e-5)


def test_farthest_point_sampling_spreads_points(rng):
    points = np.concatenate([rng.normal(0, 0.01, (20, 3)), [[5.0, 0, 0], [-5.0, 0, 0]]])
    chosen = farthest_point_sample(points, 3, seed=0)
    assert {20, 21} <= set(chosen.tolist())
    # dense input (a random pool first): the samples still cover the set far better than chance
    cloud = rng.uniform(-1, 1, (20000, 3))
    from scipy.spatial import cKDTree

    fps = cloud[farthest_point_sample(cloud, 64, seed=0)]
    rand = cloud[rng.choice(len(cloud), 64, replace=False)]
    assert cKDTree(fps).query(cloud)[0].max() < 0.8 * cKDTree(rand).query(cloud)[0].max()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("pose")
    cfg = GenerateConfig(
        objects="procedural", views=ViewConfig(views=3, width=96, height=96), surface_samples=4096
    )
    generate_dataset(root / "scenes", 4, cfg, progress=False)
    summary = prepare_pose_data([root / "scenes"], root / "train.npz", progress=False)
    return root, summary


def test_prepared_targets_are_consistent_with_augmentation(prepared):
    root, summary = prepared
    assert summary["views"] >= 10 and summary["object_views"] >= 20
    data = PoseDataset(root / "train.npz", TINY.num_points, TINY.num_canonical, augment=True)
    plain = PoseDataset(root / "train.npz", TINY.num_points, TINY.num_canonical, augment=False)
    turned = 0
    for seed in range(8):
        # object 0 draws the same canonical subset in both; only the augmented one is turned
        a = data.item(0, np.random.default_rng(seed))
        b = plain.item(0, np.random.default_rng(seed))
        Ra, ta, sa = decode_pose(a["target"][:1], a["center"], a["scale"])
        Rb, tb, sb = decode_pose(b["target"][:1], b["center"], b["scale"])
        turned += not np.allclose(Ra, Rb, atol=1e-4)
        pa = (sa[0] / 2) * a["canonical"][0, :, :3] @ Ra[0].T + ta[0]
        pb = (sb[0] / 2) * b["canonical"][0, :, :3] @ Rb[0].T + tb[0]
        np.testing.assert_allclose(pa, pb, atol=1e-4)
    assert turned >= 3
    # observed points sit on the ground-truth posed surface (camera frame)
    arrays = plain.arrays
    for r in range(5):
        pts = arrays["points"][r, : arrays["count"][r]]
        canon = arrays["canon_points"][arrays["canon"][r]].astype(np.float64)
        posed = arrays["size"][r] / 2 * canon @ arrays["rotation"][r].T + arrays["translation"][r]
        from scipy.spatial import cKDTree

        dist = cKDTree(posed).query(pts)[0]
        assert np.median(dist) < 0.03 * arrays["size"][r] + 0.01


def test_training_resumes_exactly_and_estimator_runs(prepared, tmp_path):
    root, _ = prepared
    npz = root / "train.npz"
    cfg = preset("tiny", max_steps=6, checkpoint_every=3, eval_every=6, val_views=4)
    straight = train_pose(npz, tmp_path / "a", cfg, val_data=npz, progress=False)
    train_pose(
        npz,
        tmp_path / "b",
        preset("tiny", max_steps=3, checkpoint_every=3, eval_every=6, val_views=4),
        progress=False,
    )
    # resuming with other settings is refused
    with pytest.raises(ValueError, match="other settings"):
        train_pose(npz, tmp_path / "b", cfg, progress=False)
    # same settings, as if the first run had been interrupted at step 3
    cfg_b = json.loads((tmp_path / "b" / "train_config.json").read_text())
    cfg_b["max_steps"] = 6
    (tmp_path / "b" / "train_config.json").write_text(json.dumps(cfg_b))
    train_pose(npz, tmp_path / "b", cfg, progress=False)
    wa = load_pose_model(tmp_path / "a" / "checkpoint").state_dict()
    wb = load_pose_model(tmp_path / "b" / "checkpoint").state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=0, rtol=0)
    assert "val_add_s" in straight and np.isfinite(straight["loss"])
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert any("val_rot_err_deg_median" in r for r in log)

    # the estimator on a real view: poses for visible objects, skips for bad ones
    import trimesh

    from scenemaker.synth.dataset import list_scenes

    scene = list_scenes(root / "scenes")[0]
    view = scene.view(0)
    objects = scene.scene.objects
    masks = [view.instance == o.instance_id for o in objects]
    meshes = [o.mesh for o in objects]
    masks.append(np.zeros_like(masks[0]))  # empty mask
    meshes.append(meshes[0])
    masks.append(masks[0])  # a mesh with no area
    meshes.append(trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 2]], process=False))
    depth = view.depth.copy()
    depth[0, :] = np.nan  # invalid depth values are ignored
    estimator = DiTPoseEstimator(tmp_path / "a" / "checkpoint", steps=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimator.estimate(Observation(depth, view.camera.K, masks), meshes)
    n = len(objects)
    assert all(p is not None for p in result.poses[:n])
    assert result.poses[n] is None and "empty mask" in result.skipped[n]
    assert result.poses[n + 1] is None and "canonical mesh" in result.skipped[n + 1]
    assert len(caught) >= 2
    for pose in result.poses[:n]:
        assert np.isfinite(pose.t).all() and pose.s > 0


def test_checkpoint_config_mismatch_is_a_clear_error(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["width"] = 64
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match"):
        load_pose_model(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="no PoseDiT weights"):
        DiTPoseEstimator(tmp_path / "nothing")


def test_multi_process_training_with_torchrun(prepared, tmp_path):
    """Two CPU processes (gloo), as on a multi-GPU machine: rank 0 prepares, all train."""
    import subprocess
    import sys
    from pathlib import Path

    root, _ = prepared
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "-m",
        "scenemaker.cli",
        "train",
        "pose",
        "--preset",
        "tiny",
        "--data",
        str(root / "scenes"),
        "--out",
        str(tmp_path / "ddp"),
        "--max-steps",
        "4",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    model = load_pose_model(tmp_path / "ddp" / "checkpoint")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4


def _tiny_dinov2():
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
        num_register_tokens=4,
    )
    return Dinov2WithRegistersModel(config)


def test_image_branch_with_a_tiny_dinov2(prepared):
    from scenemaker.pose.image_encoder import ImageEncoder, square_crop
    from scenemaker.synth.dataset import list_scenes

    rgb = np.zeros((40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 30:37] = True
    crop = square_crop(rgb, mask)
    assert crop.shape == (15, 15, 3)  # 10 px box = 70% of the side
    assert (crop == 255).any() and (crop == 0).any()  # outside the mask: white

    encoder = ImageEncoder(model=_tiny_dinov2(), image_size=56)
    root, _ = prepared
    scene = list_scenes(root / "scenes")[0]
    view = scene.view(0)
    masks = [view.instance == o.instance_id for o in scene.scene.objects]
    tokens = encoder.scene_tokens(view.rgb, masks)
    n = len(masks)
    assert tokens["crop_tokens"].shape == (n, 1 + 4 + 16, 32)
    assert tokens["scene_tokens"].shape == (21, 32)

    torch.manual_seed(0)
    model = PoseDiT(**{**TINY.model_kwargs(), "image_dim": 32}).eval()
    torch.nn.init.normal_(model.rot_out.weight, std=0.5)
    batch = _batch(1, n)
    batch.update({k: v[None] for k, v in tokens.items()})
    x, t = torch.randn(1, n, 10), torch.tensor([300.0])
    out = _run(model, batch, x, t)
    other = dict(batch, crop_tokens=torch.randn_like(batch["crop_tokens"]))
    assert not torch.allclose(_run(model, other, x, t), out)  # image tokens are used
    if n > 1:  # still equivariant to object order
        perm = torch.arange(n).flip(0)
        permuted = {k: (v[:, perm] if k != "scene_tokens" else v) for k, v in batch.items()}
        torch.testing.assert_close(
            _run(model, permuted, x[:, perm], t), out[:, perm], atol=1e-5, rtol=1e-4
        )
    # the estimator feeds the image branch from the observation's rgb
    estimator = DiTPoseEstimator(model=model, steps=2, image_encoder=encoder)
    result = estimator.estimate(
        Observation(view.depth, view.camera.K, masks, rgb=view.rgb),
        [o.mesh for o in scene.scene.objects],
    )
    assert all(p is not None for p in result.poses)
    with pytest.raises(ValueError, match="needs rgb"):
        estimator.estimate(
            Observation(view.depth, view.camera.K, masks), [o.mesh for o in scene.scene.objects]
        )


def test_sampler_lands_on_the_target_with_an_oracle_velocity():
    from scenemaker.pose.estimator import sample_poses

    target = torch.randn(2, 3, 10)

    class Oracle(torch.nn.Module):
        def encode_conditions(self, batch, drop=None):
            return {}

        def forward(self, z, timestep, conditions=None, object_mask=None, **kw):
            sigma = (timestep / 1000.0)[:, None, None]
            # guided sampling runs the conditional and unconditional branch as one batch
            return (z - target.repeat(z.shape[0] // len(target), 1, 1)) / sigma

    batch = {"object_mask": torch.ones(2, 3, dtype=torch.bool)}
    for steps in (1, 5, 50):
        x = sample_poses(
            Oracle(), batch, steps, guidance=3.0, generator=torch.Generator().manual_seed(0)
        )
        torch.testing.assert_close(x, target, atol=1e-4, rtol=1e-4)


def test_training_and_inference_see_the_same_inputs(prepared):
    """The prepared training sample of a view and the estimator's inputs for it agree."""
    from scenemaker.pose.encoding import make_inputs
    from scenemaker.pose.estimator import STORED_POINTS, prepare_objects
    from scenemaker.synth.dataset import list_scenes

    root, _ = prepared
    data = PoseDataset(root / "train.npz", TINY.num_points, TINY.num_canonical, augment=False)
    sample = data.item(0, np.random.default_rng(0))
    scene = list_scenes(root / "scenes")[0]
    view = scene.view(0)
    masks = [view.instance == o.instance_id for o in scene.scene.objects]
    obs = Observation(view.depth, view.camera.K, masks)
    prep = prepare_objects(
        obs,
        [o.mesh for o in scene.scene.objects],
        num_points=STORED_POINTS,
        num_canonical=TINY.num_canonical,
    )
    assert len(prep.indices) == len(sample["target"])
    inputs = make_inputs(prep.points, prep.canonical, TINY.num_points)
    np.testing.assert_allclose(inputs.local_points, sample["local_points"], atol=1e-4)
    np.testing.assert_allclose(inputs.scene_points, sample["scene_points"], atol=1e-4)
    np.testing.assert_allclose(inputs.box, sample["box"], atol=1e-4)


def test_estimates_do_not_depend_on_object_order(prepared):
    from scenemaker.synth.dataset import list_scenes

    root, _ = prepared
    scene = list_scenes(root / "scenes")[1]
    view = scene.view(0)
    objects = scene.scene.objects
    masks = [view.instance == o.instance_id for o in objects]
    meshes = [o.mesh for o in objects]
    estimator = DiTPoseEstimator(model=_model(), steps=3)
    a = estimator.estimate(Observation(view.depth, view.camera.K, masks), meshes).poses
    b = estimator.estimate(Observation(view.depth, view.camera.K, masks[::-1]), meshes[::-1]).poses
    assert sum(p is not None for p in a) >= 2
    for pa, pb in zip(a, b[::-1], strict=True):
        assert (pa is None) == (pb is None)  # an object hidden in this view is skipped in both
        if pa is None:
            continue
        np.testing.assert_allclose(pa.t, pb.t, atol=1e-4)
        np.testing.assert_allclose(pa.R, pb.R, atol=1e-4)


def test_icp_refinement_improves_noisy_poses(prepared):
    from scipy.spatial.transform import Rotation

    from scenemaker.eval.metrics import add_s
    from scenemaker.pose.baselines import DiTIcpEstimator
    from scenemaker.pose.estimator import PoseResult
    from scenemaker.scene import Pose
    from scenemaker.synth.dataset import list_scenes

    root, _ = prepared
    scene = list_scenes(root / "scenes")[0]
    view = scene.view(0)
    w2c = view.camera.world_to_camera
    gt = [
        Pose(w2c[:3, :3] @ o.pose.R, w2c[:3, :3] @ o.pose.t + w2c[:3, 3], o.pose.s)
        for o in scene.scene.objects
    ]
    rng = np.random.default_rng(0)

    class NoisyTruth:
        seed = 0

        def estimate(self, observation, meshes):
            poses = []
            for p in gt:
                dR = Rotation.from_rotvec(rng.normal(size=3) * np.radians(4)).as_matrix()
                poses.append(Pose(dR @ p.R, p.t + rng.normal(size=3) * 0.03 * p.s, p.s))
            return PoseResult(poses)

    masks = [view.instance == o.instance_id for o in scene.scene.objects]
    meshes = [o.mesh for o in scene.scene.objects]
    obs = Observation(view.depth, view.camera.K, masks)
    noisy = NoisyTruth().estimate(obs, meshes).poses
    rng = np.random.default_rng(0)  # the refiner sees the very same noisy poses
    refined = DiTIcpEstimator(NoisyTruth()).estimate(obs, meshes).poses
    pts = [m.sample(1000, seed=1) for m in meshes]

    def err(poses):
        return np.mean(
            [
                add_s(q, (p.R, p.t, p.s), (g.R, g.t, g.s))
                for q, p, g in zip(pts, poses, gt, strict=True)
            ]
        )

    assert err(refined) < 0.85 * err(noisy)  # measured: 0.030 -> 0.022


def test_ship_weights_only_improves(prepared, tmp_path):
    from scenemaker.pose.train import ship_weights

    root, _ = prepared
    npz = root / "train.npz"
    cfg = preset("tiny", max_steps=2, eval_every=2, checkpoint_every=2, val_views=2)
    train_pose(npz, tmp_path / "run", cfg, val_data=npz, progress=False)
    dest = tmp_path / "weights"
    info = ship_weights(tmp_path / "run", dest)
    assert info["steps_trained"] == 2 and "val_add_s" in info["validation"]
    assert (dest / "diffusion_pytorch_model.safetensors").is_file()
    shipped = load_pose_model(dest)
    assert next(shipped.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in use
    with pytest.raises(ValueError, match="validate better"):
        ship_weights(tmp_path / "run", dest)  # not better than itself
    ship_weights(tmp_path / "run", dest, force=True)
