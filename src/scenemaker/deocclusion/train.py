"""LoRA finetuning of FLUX.1-Kontext for de-occlusion (one readable loop, resumable exactly).

Each training triplet is (occluded crop, prompt, complete object on white). As in Kontext's
own sampling loop, the occluded crop is the *context* image: its VAE latents are packed into
2x2 tokens and appended after the noisy target tokens along the sequence, with position ids
whose first component is 1 (the target's is 0). The transformer is trained with the
rectified-flow objective on the target tokens only: x_t = (1 - s) x0 + s noise, the model
predicts noise - x0. Sigmas are drawn logit-normal (or uniform) and, by default, shifted the
way the pipeline's scheduler shifts them at inference for this resolution, so training sees
the noise levels sampling visits. Only LoRA matrices on the attention projections learn
(q, k, v, out of every block, plus the text-stream add_* projections of the joint blocks);
the VAE, both text encoders and the transformer stay frozen. Text embeddings are computed
once per distinct prompt before training and the text encoders are then released.

Batches, flips, sigmas and noise are pure functions of (seed, step, rank), so a checkpoint
(LoRA state + optimizer state + step, written atomically) resumes to the very same run.
Accelerate runs it on one CPU process (the ``tiny`` preset, for tests) or on several
processes / GPUs with ``torchrun`` or ``accelerate launch``: each process takes its share of
every global batch, and an item's flips, sigma and noise depend on its place in the global
batch only, so N processes follow the single-process run with the same global batch (tested
with 2 CPU processes on gloo). The result is ``out/pytorch_lora_weights.safetensors`` in diffusers'
format, which ``FluxKontextDeoccluder(lora=out)`` loads.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..io_utils import load_safetensors
from ..training import Trainer, run_folder
from .train_batches import distinct_prompts, load_batch, open_triplets
from .train_checkpoints import LORA_STATE_FILE, save_checkpoint, save_lora
from .train_config import PRESETS, DeocclusionTrainConfig, get_lr, resumable_settings
from .train_lora import add_lora, encode_prompts, load_pipeline, make_optimizer, source_name
from .train_loss import ModelParts, batch_loss


def _validation_loss(model: ModelParts, dataset, config) -> float:
    """Mean loss over a fixed subset of validation triplets, each with its own fixed sigma
    and noise (the same every evaluation, so the curve is comparable across steps)."""
    import torch

    n = min(config.val_items, len(dataset))
    chosen = np.random.default_rng(1234).choice(len(dataset), n, replace=False)
    flat = replace(config, hflip=False)
    losses = []
    with torch.no_grad():
        for start in range(0, n, config.batch_size):
            idx = chosen[start : start + config.batch_size]
            inputs, targets, prompts = load_batch(dataset, idx, 0, 0, flat)
            generator = torch.Generator().manual_seed(1234 + start)
            loss, _ = batch_loss(
                model, model.transformer, inputs, targets, prompts, config, generator
            )
            losses.append(float(loss) * len(idx))
    return sum(losses) / n


def train_deocclusion_lora(
    data,
    out: str | Path,
    config: DeocclusionTrainConfig | None = None,
    pipeline=None,
    val_data=None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the de-occlusion LoRA; returns the last logged metrics plus ``lora``
    (the path of ``pytorch_lora_weights.safetensors``).

    data: a triplet folder (``scenemaker data deocclusion``; ``config.val_fraction`` of it is
        held out for the validation loss) or a dataset object (``len`` + item dicts with
        ``input``, ``target`` (S, S, 3) uint8 and ``prompt``).
    out: run folder: ``train_config.json``, ``log.jsonl``, ``checkpoint/``, the LoRA file.
        A folder holding a checkpoint is resumed (same settings required, except
        ``max_steps``, ``max_minutes`` and the logging / checkpoint intervals).
    pipeline: None (``config.model``), a hub id / local folder, or a FluxKontextPipeline
        object (its transformer gets the adapter).
    val_data: optional validation triplets (folder or dataset), overriding the held-out share.
    """
    import torch
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    config = config or PRESETS["paper"]
    config.validate()
    run_folder(out)
    train_set, val_set = open_triplets(data, config)
    if val_data is not None:
        val_set, _ = open_triplets(val_data, replace(config, val_fraction=0.0))
    if len(train_set) == 0:
        raise ValueError("no training triplets")
    if val_set is not None and len(val_set) == 0:
        val_set = None  # e.g. a held-out share of a folder with a single scene

    load_batch(train_set, [0], 0, 0, config)  # a broken item fails now, not after loading
    record = {
        "schema": "scenemaker.deocclusion-train/1",
        "pipeline": source_name(pipeline, config),
        **config.to_dict(),
    }
    trainer = Trainer(out, config.mixed_precision)
    accelerator, checkpoint = trainer.accelerator, trainer.checkpoint
    resuming = trainer.resuming(record, resumable_settings)

    device = accelerator.device
    pipe = load_pipeline(pipeline, config)
    size_multiple = 2 * pipe.vae_scale_factor  # VAE downsampling, then 2x2 packing
    if config.size % size_multiple:
        raise ValueError(
            f"size must be a multiple of {size_multiple} for this model, got {config.size}"
        )
    dtype = getattr(torch, config.weight_dtype)
    val_prompts = distinct_prompts(val_set) if val_set is not None else []
    prompts = sorted(set(distinct_prompts(train_set)) | set(val_prompts))
    text = encode_prompts(pipe, prompts, device, config.max_sequence_length)
    transformer, vae = pipe.transformer, pipe.vae
    scheduler_config = dict(pipe.scheduler.config)
    del pipe  # the text encoders are released here (unless the caller holds the pipeline)
    vae.requires_grad_(False)
    vae.to(device)
    if vae.dtype != dtype:
        vae.to(dtype)
    params = add_lora(transformer, config)
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.to(device)
    optimizer = make_optimizer(params, config)
    step = 0
    if resuming:
        result = set_peft_model_state_dict(
            transformer, load_safetensors(checkpoint / LORA_STATE_FILE)
        )
        unexpected = getattr(result, "unexpected_keys", None) or []
        if unexpected:
            raise ValueError(f"{checkpoint}: LoRA state does not fit ({unexpected[0]} ...)")
        step = int(trainer.load_state(optimizer)["step"])
    trainer.write_settings(record)  # on resume: records the latest max_steps etc.

    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    transformer.train()
    model = ModelParts(
        accelerator.unwrap_model(transformer), vae, text, scheduler_config, dtype, device
    )

    def loss_fn(step, indices, offset, generator):
        inputs, targets, prompts = load_batch(train_set, indices, step, offset, config)
        # each item's sigma and noise from its place in the global batch, not from the
        # process it landed on: N processes train exactly as one with the same global batch
        generators = [
            torch.Generator().manual_seed(int(np.random.default_rng(
                [config.seed, step, offset + k]).integers(2**62)))
            for k in range(len(indices))
        ]  # fmt: skip
        with accelerator.autocast():
            loss, sigmas = batch_loss(
                model, transformer, inputs, targets, prompts, config, generators
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {step + 1}; lower lr")
        return loss, {"sigma_mean": float(sigmas.mean())}

    def evaluate() -> dict:
        transformer.eval()
        val_loss = _validation_loss(model, val_set, config)
        transformer.train()
        return {"val_loss": val_loss}

    def save(step: int) -> None:
        save_checkpoint(checkpoint, get_peft_model_state_dict(model.transformer), optimizer, step)

    last = trainer.fit(
        step,
        config,
        optimizer,
        params,
        loss_fn,
        save,
        lr=lambda step: get_lr(step, config),
        n_items=len(train_set),
        grad_clip=config.grad_clip,
        log_every=config.log_every,
        evaluate=evaluate if val_set is not None else None,
        desc="training de-occlusion LoRA",
        progress=progress,
        rate_digits=4,
    )
    if accelerator.is_main_process:
        last["lora"] = str(save_lora(trainer.out, model.transformer, dtype))
    accelerator.wait_for_everyone()
    return last
