"""Checkpoints of the de-occlusion LoRA run (LoRA state + optimizer state + step, written
atomically) and the final LoRA file in diffusers' format."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import training
from .flux import LORA_WEIGHT_NAME

STATE_FILE = training.STATE_FILE
LORA_STATE_FILE = "lora.safetensors"


def save_checkpoint(folder: Path, lora_state: dict, optimizer, step: int) -> None:
    """Write a checkpoint folder atomically (a kill at any instant leaves the newest complete
    checkpoint for ``recover_folder``)."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in lora_state.items()}

    def write_weights(tmp: Path) -> None:
        save_file(state, str(tmp / LORA_STATE_FILE))
        os.chmod(tmp / LORA_STATE_FILE, 0o644)  # safetensors writes owner-only files

    training.save_checkpoint(folder, write_weights, optimizer, step)


def save_lora(out: Path, transformer, weight_dtype) -> Path:
    """``out/pytorch_lora_weights.safetensors`` (diffusers' LoRA format, with the adapter's
    rank / alpha as metadata), written beside and renamed into place."""
    from diffusers import FluxKontextPipeline
    from peft.utils import get_peft_model_state_dict

    layers = {k: v.to(weight_dtype) for k, v in get_peft_model_state_dict(transformer).items()}
    metadata = transformer.peft_config["default"].to_dict()
    tmp = out / ".lora.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    FluxKontextPipeline.save_lora_weights(
        tmp, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
    )
    os.chmod(tmp / LORA_WEIGHT_NAME, 0o644)  # safetensors writes owner-only files
    os.replace(tmp / LORA_WEIGHT_NAME, out / LORA_WEIGHT_NAME)
    shutil.rmtree(tmp, ignore_errors=True)
    return out / LORA_WEIGHT_NAME
