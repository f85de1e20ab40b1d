"""De-occlusion LoRA training on 2 CPU processes under torchrun (gloo), as on a multi-GPU
machine: after N steps both ranks hold identical LoRA parameters, and the loss curve and the
weights follow a single-process run with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_deocclusion_train import make_triplets

SCRIPT = r"""
import os, sys
import numpy as np
import torch

torch.set_num_threads(1)
import scenemaker.deocclusion.train as train
from scenemaker.deocclusion.train_config import preset

data, out, model = sys.argv[1:4]
arrays = np.load(data)
items = [{"input": arrays["inputs"][i], "target": arrays["targets"][i],
          "prompt": str(arrays["prompts"][i])} for i in range(len(arrays["inputs"]))]
captured = []
real = train.ModelParts


def keep(*args, **kwargs):  # each process's model, to dump its LoRA after training
    parts = real(*args, **kwargs)
    captured.append(parts)
    return parts


train.ModelParts = keep
config = preset("tiny", batch_size=4, max_steps=3, log_every=1, checkpoint_every=100)
train.train_deocclusion_lora(items, out, config, pipeline=model, progress=False)
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

state = get_peft_model_state_dict(captured[-1].transformer)
rank = int(os.environ.get("RANK", "0"))
save_file({k: v.detach().float().contiguous() for k, v in state.items()},
          os.path.join(out, f"rank{rank}.safetensors"))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from scenemaker.deocclusion.tiny import build_tiny_flux_kontext

    root = tmp_path_factory.mktemp("ddp")
    build_tiny_flux_kontext(root / "model", seed=0)
    items = make_triplets(8)
    np.savez(root / "items.npz", inputs=np.stack([i["input"] for i in items]),
             targets=np.stack([i["target"] for i in items]),
             prompts=np.array([i["prompt"] for i in items]))  # fmt: skip
    (root / "train.py").write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [str(root / "items.npz")]
    torchrun = Path(sys.executable).with_name("torchrun")
    multi = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
         str(_free_port()), str(root / "train.py"), *args, str(root / "two"), str(root / "model")],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert multi.returncode == 0, multi.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, str(root / "train.py"), *args, str(root / "one"), str(root / "model")],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    return root / "one", root / "two"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run: Path) -> list[float]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines if "loss" in json.loads(x)]


def test_both_ranks_hold_the_same_lora(runs):
    _, two = runs
    a, b = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(a[k].abs().max() > 0 for k in a if "lora_B" in k)  # it trained (B starts at 0)


def test_two_processes_follow_one_with_the_same_global_batch(runs):
    one, two = runs
    single, multi = _losses(one), _losses(two)
    assert len(single) == len(multi) == 3
    np.testing.assert_allclose(multi, single, atol=1e-3)
    a, b = load_file(one / "rank0.safetensors"), load_file(two / "rank0.safetensors")
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5, err_msg=key)
    assert (two / "pytorch_lora_weights.safetensors").is_file()
