"""Stand-ins for three libraries, used only where they are missing: on a bare GPU machine that
has nothing but a stock PyTorch (``scenemaker train pose-pack``: no diffusers, no accelerate,
no safetensors, no network). Everywhere else the real libraries are used.

* :class:`ModelMixin` / :class:`ConfigMixin` / :func:`register_to_config`: what PoseDiT uses of
  diffusers' mixins (``model.config.<name>``, ``save_pretrained`` / ``from_pretrained`` writing
  and reading the same two files diffusers does: ``config.json`` and
  ``diffusion_pytorch_model.safetensors``).
* :func:`save_tensors` / :func:`load_tensors`: the safetensors file format (8-byte header
  length, a JSON header of dtype / shape / byte offsets, then the raw little-endian bytes),
  written by hand only because the library is a compiled package that cannot ride along as a
  pure-Python wheel; files are read here by the real library.
* :class:`SingleDevice`: the part of ``accelerate.Accelerator`` the training loop uses, for one
  process on one device (bf16 autocast on CUDA).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from pathlib import Path

import torch

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip
_BY_NAME = {name: dtype for dtype, name in _DTYPES.items()}


def save_tensors(tensors: dict, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``{name: tensor}`` as a safetensors file (the library's format)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        data = tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the library aligns the data to 8 bytes
    with open(path, "wb") as f:
        f.write(len(encoded).to_bytes(8, "little"))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)


def load_tensors(path: str | Path) -> dict:
    """Read a safetensors file into ``{name: tensor}`` (CPU)."""
    raw = Path(path).read_bytes()
    length = int.from_bytes(raw[:8], "little")
    if not 0 < length <= len(raw) - 8:
        raise ValueError(f"{path}: not a safetensors file (header length {length})")
    header = json.loads(raw[8 : 8 + length])
    base, out = 8 + length, {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        buffer = bytearray(raw[base + start : base + end])
        dtype = _BY_NAME[spec["dtype"]]
        flat = torch.frombuffer(buffer, dtype=dtype) if buffer else torch.zeros(0, dtype=dtype)
        out[name] = flat.reshape(spec["shape"])
    return out


class _Config(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def register_to_config(init):
    """Record the constructor's arguments as ``self.config`` (diffusers' decorator, reduced)."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self._internal_dict = _Config({k: v for k, v in bound.arguments.items() if k != "self"})

    return wrapper


class ConfigMixin:
    config_name = "config.json"

    @property
    def config(self) -> _Config:
        return self._internal_dict


class ModelMixin(torch.nn.Module):
    """``save_pretrained`` / ``from_pretrained`` in diffusers' file layout."""

    def save_pretrained(self, folder, safe_serialization: bool = True, **_) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.config_name).write_text(
            json.dumps({"_class_name": type(self).__name__, **self.config}, indent=2)
        )
        save_tensors(self.state_dict(), folder / WEIGHTS_NAME, {"format": "pt"})

    @classmethod
    def from_pretrained(cls, folder, **_):
        folder = Path(folder)
        settings = json.loads((folder / cls.config_name).read_text())
        accepted = inspect.signature(cls.__init__).parameters
        model = cls(**{k: v for k, v in settings.items() if k in accepted})
        model.load_state_dict(load_tensors(folder / WEIGHTS_NAME))
        return model


class SingleDevice:
    """One process on one device: what the training loop uses of ``accelerate.Accelerator``."""

    num_processes, process_index = 1, 0
    is_main_process = True

    def __init__(self, mixed_precision: str = "no"):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.mixed_precision = mixed_precision

    def prepare(self, *objects):
        prepared = tuple(o.to(self.device) if isinstance(o, torch.nn.Module) else o
                         for o in objects)  # fmt: skip
        return prepared if len(prepared) > 1 else prepared[0]

    def autocast(self):
        if self.mixed_precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def clip_grad_norm_(self, params, max_norm):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap_model(self, model):
        return model

    def wait_for_everyone(self) -> None:
        pass

    def reduce(self, tensor, reduction: str = "mean"):
        return tensor

    def print(self, *args, **kwargs) -> None:
        print(*args, **kwargs)
