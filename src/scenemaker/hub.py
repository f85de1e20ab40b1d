"""Shared helpers of every Hugging Face-backed backend (perception, FLUX, Shap-E, Hunyuan3D).

Loading (``load_pretrained``: one clear ``MissingWeightsError`` instead of a hub traceback),
dtype / device parsing, the ``cpu_offload`` context manager and input checks. torch and the
hub libraries are imported inside the functions so that importing this module stays light.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MissingWeightsError

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "cuda:N", "mps", "auto")

# ValueErrors that transformers / huggingface_hub raise for a missing or unusable model folder;
# any other ValueError is a real bug and propagates unchanged.
_MISSING_FILE_HINTS = ("Unrecognized", "no file named", "Repo id must", "does not appear to have")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set. huggingface_hub reads the variable itself; we never set it."""
    from huggingface_hub import is_offline_mode

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return flag or is_offline_mode()


def looks_like_path(model: str) -> bool:
    """A local file or folder rather than a hub id ("owner/name")."""
    model = str(model)
    starts = model.startswith(("/", "./", "../", "~", "\\"))
    return starts or model.count("/") > 1 or "\\" in model or Path(model).exists()


def missing_weights_message(model: str, reason: str = "") -> str:
    """One line naming ``model`` and how to get its weights."""
    reason = reason.strip().splitlines()[0] if reason.strip() else ""
    if Path(model).expanduser().exists():
        return f"model folder '{model}' is missing files or is unreadable ({reason})"
    if looks_like_path(model):
        return f"model path '{model}' does not exist"
    if hub_offline():
        return (
            f"weights for '{model}' are not available locally (HF_HUB_OFFLINE=1): download them "
            f"on a machine with network with {_download_hint(model)}, or pass a local folder"
        )
    return (
        f"could not get weights for '{model}' from the Hugging Face hub ({reason}): check the "
        f"id and the network: {_download_hint(model)}, or pass a local folder"
    )


def _download_hint(model: str) -> str:
    # huggingface_hub >= 1.0 ships the `hf` command; `huggingface-cli` is gone there
    return f"`hf download {model}` (older huggingface_hub: `huggingface-cli download {model}`)"


def is_missing_weights_error(err: BaseException) -> bool:
    """Errors meaning "these weights are not here" (offline, no such repo, missing files)."""
    if isinstance(err, OSError):  # LocalEntryNotFoundError, RepositoryNotFoundError, ...
        return True
    try:
        from huggingface_hub.errors import HFValidationError
    except ImportError:  # pragma: no cover - very old huggingface_hub
        HFValidationError = ()  # noqa: N806
    if isinstance(err, HFValidationError):
        return True
    return isinstance(err, ValueError) and any(h in str(err) for h in _MISSING_FILE_HINTS)


def load_pretrained(cls: Any, model: str | os.PathLike, **kwargs) -> Any:
    """``cls.from_pretrained(model, **kwargs)``, turning "weights not found" into one line.

    ``model`` is a hub id or a local folder. Offline mode is whatever HF_HUB_OFFLINE says
    (huggingface_hub reads it; nothing here overrides it). Raises ``MissingWeightsError``
    naming ``model`` when the files are not available.
    """
    model = str(model)
    try:
        return cls.from_pretrained(model, **kwargs)
    except MissingWeightsError:
        raise
    except (OSError, ValueError) as err:
        if not is_missing_weights_error(err):
            raise
        raise MissingWeightsError(missing_weights_message(model, str(err))) from err


def parse_dtype(dtype: Any):
    """``"float32" | "bfloat16" | "float16" | torch.dtype | None`` -> torch dtype or None."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.strip().lower() in DTYPES:
        return getattr(torch, dtype.strip().lower())
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)} or None, got {dtype!r}")


def resolve_device(device: Any = "cpu") -> str:
    """``"cpu" | "cuda" | "cuda:N" | "mps" | "auto"`` -> a torch device string.

    "auto" picks "cuda" when torch sees a GPU, else "cpu". Asking for a GPU that torch cannot
    see is a ValueError (rather than a CUDA error at the first forward call).
    """
    import torch

    name = str(device).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but torch sees no CUDA GPU: use 'cpu' or 'auto'")
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' but torch has no MPS support here: use 'cpu' or 'auto'")
        return name
    raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")


def place(model, device: str, dtype=None, cpu_offload: bool = False):
    """Cast ``model`` to ``dtype`` and put it where it lives between calls (eval mode).

    With ``cpu_offload`` the weights stay in CPU memory and ``cpu_offload()`` moves them to
    ``device`` for each forward call only.
    """
    if dtype is not None:
        model = model.to(dtype=dtype)
    model = model.to("cpu" if cpu_offload else device)
    return model.eval()


@contextmanager
def cpu_offload(model, device: str, enabled: bool = True) -> Iterator[None]:
    """Run the ``with`` block with ``model`` on ``device``, then move it back to the CPU.

    Whole-model offload: the weights live in CPU memory between calls and occupy the GPU
    only while one backend runs, so several large models (detector, segmenter, depth, FLUX)
    can share one GPU in turn. Costs one host-to-device copy of the weights per call; the
    finer-grained (per-layer) offload of accelerate's ``cpu_offload`` saves more memory but
    is much slower. A no-op when ``enabled`` is false or ``device`` is the CPU. Inputs must
    be moved to ``device`` by the caller.
    """
    if not enabled or str(device) == "cpu":
        yield
        return
    import torch

    model.to(device)
    try:
        yield
    finally:
        model.to("cpu")
        if str(device).startswith("cuda"):
            torch.cuda.empty_cache()


def as_rgb(image: Any, name: str = "image") -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, or a ValueError naming ``name``."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be an (H, W, 3) RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0-255), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def as_intrinsics(K: Any, name: str = "K") -> np.ndarray:
    """A finite (3, 3) float64 intrinsics matrix with positive focal lengths."""
    arr = np.asarray(K, dtype=np.float64)
    if arr.shape != (3, 3) or not np.all(np.isfinite(arr)) or arr[0, 0] <= 0 or arr[1, 1] <= 0:
        raise ValueError(f"{name} must be a finite (3, 3) intrinsics matrix with fx, fy > 0")
    return arr


def to_device(inputs: dict, device: str, dtype=None) -> dict:
    """Move the tensors of a processor output to ``device``; floats to ``dtype`` if given."""
    import torch

    moved = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype=dtype)
            value = value.to(device)
        moved[key] = value
    return moved
