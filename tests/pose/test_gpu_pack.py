"""The GPU recipe, dry-run on this CPU with the tiny preset: pack (<= 64 MiB), train with only
PyTorch and numpy importable (everything else blocked, as on a bare GPU machine), shards of at
most 16 MiB, unpack here into a run folder ship-pose reads, validated against the shipped
weights; and depth-noise augmentation in data preparation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scenemaker.pose.data import prepare_pose_data

# imported by the training process at start-up: only the standard library, torch with what
# torch itself requires, numpy, and what the pack carries may be imported
BLOCKER = r'''
import importlib.abc, importlib.machinery, importlib.metadata, os, re, sys

PACK = os.path.realpath(os.environ["SCENEMAKER_PACK"])
dists, todo = set(), ["torch", "numpy"]
while todo:
    name = todo.pop()
    if name in dists:
        continue
    dists.add(name)
    for req in importlib.metadata.requires(name) or []:
        if "extra ==" not in req:
            todo.append(re.split(r"[ ;<>=!~\[(]", req.strip())[0].lower().replace("_", "-"))
allowed = {m for m, owners in importlib.metadata.packages_distributions().items()
           if {o.lower().replace("_", "-") for o in owners} & dists}


class StockTorchOnly(importlib.abc.MetaPathFinder):
    """The path finder, blind to top-level modules a stock PyTorch would not have."""

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        top = name.split(".")[0]
        if spec is None or name != top or top in sys.stdlib_module_names or top in allowed:
            return spec
        origin = spec.origin or next(iter(spec.submodule_search_locations or []), "")
        if top[0] == "_" or os.path.realpath(origin).startswith(PACK):
            return spec  # C helpers of the standard library; what the pack carries
        return None


sys.meta_path[:] = [StockTorchOnly() if f is importlib.machinery.PathFinder else f
                    for f in sys.meta_path]
'''


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("gpu_pack")
    cfg = GenerateConfig(objects="procedural", views=ViewConfig(views=2, width=96, height=96),
                         surface_samples=4096)  # fmt: skip
    generate_dataset(root / "scenes", 3, cfg, progress=False)
    return root


def _stock_env(root: Path, pack: Path) -> dict:
    (root / "stock").mkdir(exist_ok=True)
    (root / "stock" / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(root / "stock"), "SCENEMAKER_PACK": str(pack)}


def test_pack_train_there_with_torch_alone_and_unpack(scenes, tmp_path):
    from scenemaker.cli import main
    from scenemaker.pose.estimator import load_pose_model

    pack = tmp_path / "pack"
    assert main(["train", "pose-pack", "--data", str(scenes / "scenes"), "--out", str(pack),
                 "--preset", "tiny", "--depth-noise", "1"]) == 0  # fmt: skip
    record = json.loads((pack / "pack.json").read_text())
    size = sum(p.stat().st_size for p in pack.rglob("*") if p.is_file())
    assert size <= 64 * 2**20 and record["depth_noise"] == 1
    assert any(w.startswith("tqdm-") for w in record["wheels"])
    with np.load(pack / "data" / "train.npz") as data:  # trimmed to what the preset reads
        assert data["points"].dtype == np.float16 and data["points"].shape[1] == 16
        assert data["canon_points"].shape[1] == 32

    env = _stock_env(tmp_path, pack)
    probe = subprocess.run([sys.executable, "-c", "import diffusers"], env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert probe.returncode != 0 and "No module named 'diffusers'" in probe.stderr  # blocked
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(pack / "train.py"), "--out", str(results), "--max-steps", "3"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["device"] == "cpu"
    assert Path(summary["package"]).resolve() == (pack / "src" / "scenemaker").resolve()
    for shard in summary["shards"]:
        assert (results / "weights" / shard).stat().st_size <= 16 * 2**20

    run = tmp_path / "run"
    assert main(["train", "pose-unpack", str(results), "--out", str(run), "--val",
                 str(scenes / "scenes")]) == 0  # fmt: skip
    model = load_pose_model(run / "best")  # diffusers reads what the stand-ins wrote
    assert model.config.width == 32
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert "val_add_s" in log[-1] and log[-1]["step"] == 3


def test_shards_split_large_weights_and_read_back(tmp_path):
    import torch

    from scenemaker.errors import InputError
    from scenemaker.pose.train_gpu import read_shards, write_shards

    state = {f"w{k}": torch.randn(1024, 1024) for k in range(6)}  # 24 MiB in fp32
    names = write_shards(state, tmp_path / "w", max_mib=16)
    assert len(names) == 2
    assert all((tmp_path / "w" / n).stat().st_size <= 16 * 2**20 for n in names)
    back = read_shards(tmp_path / "w")
    assert all(torch.equal(back[k], state[k]) for k in state)
    (tmp_path / "w" / names[1]).write_bytes(b"\0" * 10)
    with pytest.raises(InputError, match=names[1]):
        read_shards(tmp_path / "w")


def test_depth_noise_augmentation_scales_targets_with_the_depth(scenes, tmp_path):
    clean = prepare_pose_data([scenes / "scenes"], tmp_path / "a.npz", progress=False)
    noisy = prepare_pose_data([scenes / "scenes"], tmp_path / "b.npz", progress=False,
                              depth_noise=2)  # fmt: skip
    assert noisy["depth_noise"] == 2 and clean["depth_noise"] == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a["points"].shape[0] >= 1
        if a["points"].shape == b["points"].shape:
            assert not np.allclose(a["points"], b["points"])
            ratio = b["size"] / a["size"]  # one global scale per view, within +-15 %
            assert np.all((ratio > 0.84) & (ratio < 1.16)) and not np.allclose(ratio, 1)
    with pytest.raises(ValueError, match="depth_noise must be one of"):
        prepare_pose_data([scenes / "scenes"], tmp_path / "c.npz", progress=False, depth_noise=5)
