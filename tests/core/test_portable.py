"""The stand-ins for a bare GPU machine write what the real libraries read, and read what they
write (safetensors files; diffusers' config.json + weights layout)."""

import json

import torch
from safetensors.torch import load_file, save_file

from scenemaker.portable import (
    ConfigMixin,
    ModelMixin,
    SingleDevice,
    load_tensors,
    register_to_config,
    save_tensors,
)


def test_safetensors_files_both_ways(tmp_path):
    tensors = {"a": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.int64),
               "c": torch.randn(2, 2).to(torch.bfloat16), "empty": torch.zeros(0, 4)}  # fmt: skip
    save_tensors(tensors, tmp_path / "mine.safetensors", {"format": "pt"})
    theirs = load_file(str(tmp_path / "mine.safetensors"))
    assert theirs.keys() == tensors.keys()
    assert all(torch.equal(theirs[k], tensors[k]) for k in tensors)
    save_file(tensors, str(tmp_path / "theirs.safetensors"))
    mine = load_tensors(tmp_path / "theirs.safetensors")
    assert all(torch.equal(mine[k], tensors[k]) and mine[k].dtype == tensors[k].dtype
               for k in tensors)  # fmt: skip


class Tiny(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, width: int = 4, depth: int = 2):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth))


def test_models_save_and_load_in_diffusers_layout(tmp_path):
    model = Tiny(width=6)
    assert model.config.width == 6 and model.config.depth == 2
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["width"] == 6 and saved["_class_name"] == "Tiny"
    weights = load_file(str(tmp_path / "m" / "diffusion_pytorch_model.safetensors"))
    assert torch.equal(weights["layers.0.weight"], model.layers[0].weight)
    again = Tiny.from_pretrained(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                  model.state_dict().values(), strict=True))  # fmt: skip


def test_one_device_accelerator_trains():
    accelerator = SingleDevice("bf16")
    model = accelerator.prepare(torch.nn.Linear(3, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    losses = []
    for _ in range(20):
        with accelerator.autocast():
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        optimizer.zero_grad()
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(accelerator.reduce(loss.detach())))
    assert losses[-1] < losses[0] and accelerator.unwrap_model(model) is model
