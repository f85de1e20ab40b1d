"""The training objective of de-occlusion finetuning: rectified flow on FLUX.1-Kontext's
tokens. The occluded crop's VAE latents are packed into 2x2 tokens and appended after the
noisy target tokens (position ids with first component 1, the target's 0); the model
predicts noise - x0 on the target tokens only. Sigmas are drawn logit-normal (or uniform)
and optionally shifted as the pipeline's scheduler shifts them at inference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .train_config import DeocclusionTrainConfig


def sample_sigmas(
    batch: int, config: DeocclusionTrainConfig, image_seq_len: int, scheduler_config, generator
):
    """(B,) noise levels in (0, 1): logit-normal or uniform, then (optionally) the scheduler's
    inference-time shift for ``image_seq_len`` target tokens."""
    import torch

    if isinstance(generator, (list, tuple)):  # one generator per item of the batch
        return torch.cat(
            [sample_sigmas(1, config, image_seq_len, scheduler_config, g) for g in generator]
        )
    if config.timestep_sampling == "logit_normal":
        normal = torch.randn(batch, generator=generator, dtype=torch.float64)
        sigmas = torch.sigmoid(config.logit_mean + config.logit_std * normal)
    else:
        sigmas = torch.rand(batch, generator=generator, dtype=torch.float64)
    sigmas = sigmas.clamp(1e-5, 1 - 1e-5)
    if config.shift_like_inference:
        sigmas = shift_sigmas(sigmas, image_seq_len, scheduler_config)
    return sigmas.float()


def shift_sigmas(sigmas, image_seq_len: int, scheduler_config):
    """The flow-matching Euler scheduler's shift, as FluxKontextPipeline sets it up: with
    dynamic shifting, mu grows linearly with the number of image tokens."""
    get = scheduler_config.get
    if get("use_dynamic_shifting", False):
        from diffusers.pipelines.flux.pipeline_flux_kontext import calculate_shift

        mu = calculate_shift(
            image_seq_len,
            get("base_image_seq_len", 256),
            get("max_image_seq_len", 4096),
            get("base_shift", 0.5),
            get("max_shift", 1.15),
        )
        if get("time_shift_type", "exponential") == "linear":
            return mu / (mu + (1 / sigmas - 1))
        return math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))
    shift = float(get("shift", 1.0))
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def encode_images(vae, images: np.ndarray):
    """(B, S, S, 3) uint8 -> packed latents (B, (h/2)(w/2), 4C) and the latent grid (h, w).

    The latent's mode (as FluxKontextPipeline encodes its context image), normalised with the
    VAE's shift and scale factors, then packed into 2x2 patches."""
    import torch
    from diffusers import FluxKontextPipeline

    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    pixels = pixels.to(vae.device, vae.dtype) / 127.5 - 1.0
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mode()
    shift = vae.config.shift_factor or 0.0
    scale = vae.config.scaling_factor or 1.0
    latents = (latents - shift) * scale
    batch, channels, height, width = latents.shape
    packed = FluxKontextPipeline._pack_latents(latents, batch, channels, height, width)
    return packed, (height, width)


def token_ids(grid: tuple[int, int], device, dtype):
    """Position ids of target tokens (first component 0) followed by context tokens (1)."""
    import torch
    from diffusers import FluxKontextPipeline

    height, width = grid
    target_ids = FluxKontextPipeline._prepare_latent_image_ids(
        1, height // 2, width // 2, device, dtype
    )
    context_ids = target_ids.clone()
    context_ids[..., 0] = 1
    return torch.cat([target_ids, context_ids], dim=0)


def flow_matching_loss(transformer, x0, context, sigmas, noise, text: dict, img_ids, guidance):
    """MSE between the velocity predicted on the target tokens and noise - x0.

    x0, context, noise: (B, N, 4C) packed latents; sigmas: (B,) in (0, 1)."""
    import torch
    import torch.nn.functional as F

    s = sigmas.view(-1, 1, 1).to(x0.device, torch.float32)
    noisy = ((1 - s) * x0.float() + s * noise.float()).to(x0.dtype)
    prediction = transformer(
        hidden_states=torch.cat([noisy, context], dim=1),
        timestep=sigmas.to(x0.device, x0.dtype),  # the pipeline passes t / 1000 = sigma
        guidance=guidance,
        pooled_projections=text["pooled"],
        encoder_hidden_states=text["embeds"],
        txt_ids=text["text_ids"],
        img_ids=img_ids,
        return_dict=False,
    )[0]
    prediction = prediction[:, : x0.shape[1]]  # the context tokens carry no loss
    return F.mse_loss(prediction.float(), (noise.float() - x0.float()))


def _text_batch(table: dict, prompts: list[str], device, dtype) -> dict:
    import torch

    embeds = torch.stack([table["prompts"][p][0] for p in prompts]).to(device, dtype)
    pooled = torch.stack([table["prompts"][p][1] for p in prompts]).to(device, dtype)
    return {"embeds": embeds, "pooled": pooled, "text_ids": table["text_ids"].to(device, dtype)}


def _guidance(transformer, batch: int, value: float, device):
    import torch

    if not transformer.config.guidance_embeds:
        return None
    return torch.full((batch,), value, device=device, dtype=torch.float32)


@dataclass
class ModelParts:
    """What the loss needs besides the batch: the frozen VAE, the prompt table, the scheduler
    settings and the transformer (unwrapped)."""

    transformer: object  # unwrapped (no DDP)
    vae: object
    text: dict  # encode_prompts' table
    scheduler_config: dict
    dtype: object  # of the frozen weights
    device: object


def batch_loss(model: ModelParts, transformer, inputs, targets, prompts, config, generator):
    """Loss of one batch ((B, S, S, 3) uint8 contexts and targets); sigmas and noise drawn
    from ``generator`` (CPU) in that order, or item k's from ``generator[k]`` when it is a list
    (training: an item's draws then do not depend on how the batch is split over processes).
    Returns (loss, sigmas)."""
    import torch

    x0, grid = encode_images(model.vae, targets)
    context, _ = encode_images(model.vae, inputs)
    sigmas = sample_sigmas(len(prompts), config, x0.shape[1], model.scheduler_config, generator)
    if isinstance(generator, (list, tuple)):
        noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generator])
    else:
        noise = torch.randn(x0.shape, generator=generator)
    noise = noise.to(model.device, x0.dtype)
    loss = flow_matching_loss(
        transformer,
        x0,
        context,
        sigmas,
        noise,
        _text_batch(model.text, prompts, model.device, model.dtype),
        token_ids(grid, model.device, model.dtype),
        _guidance(model.transformer, len(prompts), config.guidance, model.device),
    )
    return loss, sigmas
