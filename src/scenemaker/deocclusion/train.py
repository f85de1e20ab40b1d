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
Accelerate runs it on one CPU process (the ``tiny`` preset, for tests) or on GPUs with
``accelerate launch``. The result is ``out/pytorch_lora_weights.safetensors`` in diffusers'
format, which ``FluxKontextDeoccluder(lora=out)`` loads.

GPU memory for the ``paper`` preset (estimates from parameter counts, not measured here):
the FLUX.1 transformer (12B parameters) takes ~24 GB in bf16, T5-XXL ~9.5 GB, CLIP-L and the
VAE < 1 GB; rank-32 LoRA weights with AdamW states ~0.8 GB. Prompts are encoded before
training and the text encoders moved back to the CPU and released, so training holds the
transformer, the VAE and activations: with gradient checkpointing at 512 px, batch 4
(2,048 image tokens + 512 text tokens per sample) this should fit in ~40 GB (A100/H100 80 GB
comfortably; 48 GB cards likely). Smaller cards: batch 1-2 (same ``lr``); ``optimizer=
"adamw8bit"`` (needs ``bitsandbytes``); a quantised frozen base (bitsandbytes NF4 / torchao
int8, QLoRA style) would bring it near 24 GB but is not wired in here. Loading the pipeline
needs ~35 GB of CPU memory in bf16.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..io_utils import (
    atomic_folder,
    atomic_write_json,
    load_safetensors,
    load_trainer_state,
    read_json,
    recover_folder,
)
from ..training import append_jsonl, batch_indices, out_of_time
from .flux import DEFAULT_MODEL, LORA_WEIGHT_NAME

STATE_FILE = "trainer_state.pt"
LORA_STATE_FILE = "lora.safetensors"
# image stream (and the single blocks' q, k, v), then the joint blocks' text stream
TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
TARGET_MODULES += ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
TINY_MODEL = "tiny"
"""``model`` value that builds the tiny random pipeline of ``tiny.py`` in code (seed 0)."""
# settings that may change when a run is resumed (they do not change what a step computes)
RESUMABLE_CHANGES = ("max_steps", "max_minutes", "checkpoint_every", "log_every", "eval_every")
_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class DeocclusionTrainConfig:
    model: str = DEFAULT_MODEL
    """Hub id or local folder of a diffusers FluxKontextPipeline; "tiny": built in code."""
    size: int = 512
    """Side (pixels) of the square crops during training; triplets are resized to it."""
    rank: int = 32
    """LoRA rank."""
    lora_alpha: float = 32.0
    """LoRA scale numerator (the update is alpha / rank * B A)."""
    target_modules: tuple[str, ...] = TARGET_MODULES
    batch_size: int = 4
    """Global batch (split across processes)."""
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    """Linear warm-up, then a constant learning rate."""
    max_steps: int = 10_000
    max_minutes: float | None = None
    """Stop (and checkpoint) after this wall time, whatever max_steps says."""
    optimizer: str = "adamw"
    """adamw | adamw8bit (bitsandbytes)."""
    mixed_precision: str = "bf16"
    """no | bf16 | fp16: Accelerate autocast."""
    weight_dtype: str = "bfloat16"
    """dtype of the frozen weights (float32 / bfloat16 / float16); LoRA weights stay float32."""
    gradient_checkpointing: bool = True
    timestep_sampling: str = "logit_normal"
    """logit_normal | uniform: how sigma in (0, 1) is drawn before the shift."""
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift_like_inference: bool = True
    """Shift sigmas as the pipeline's scheduler does at inference for this resolution."""
    guidance: float = 1.0
    """Guidance-embedding input (FLUX.1 dev is guidance-distilled; 1.0 as in diffusers'
    Kontext LoRA example); unused when the transformer has no guidance embedding."""
    max_sequence_length: int = 512
    """T5 tokens: keep it equal to the value used at inference (FluxKontextDeoccluder)."""
    hflip: bool = True
    """Flip input and target together, with probability 0.5 per item."""
    grad_clip: float = 1.0
    val_fraction: float = 0.02
    """Share of a triplet folder held out for the validation loss (0: none)."""
    val_items: int = 32
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0

    def validate(self) -> None:
        """A ValueError naming the first setting that cannot work."""
        checks = {
            "size": self.size >= 16,
            "rank": self.rank >= 1,
            "lora_alpha": self.lora_alpha > 0,
            "target_modules": len(self.target_modules) > 0,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "warmup_steps": self.warmup_steps >= 0,
            "max_steps": self.max_steps >= 1,
            "max_minutes": self.max_minutes is None or self.max_minutes > 0,
            "optimizer": self.optimizer in ("adamw", "adamw8bit"),
            "mixed_precision": self.mixed_precision in ("no", "bf16", "fp16"),
            "weight_dtype": self.weight_dtype in _DTYPES,
            "timestep_sampling": self.timestep_sampling in ("logit_normal", "uniform"),
            "logit_std": self.logit_std > 0,
            "guidance": self.guidance >= 0,
            "max_sequence_length": 1 <= self.max_sequence_length <= 512,
            "grad_clip": self.grad_clip > 0,
            "val_fraction": 0 <= self.val_fraction < 1,
            "val_items": self.val_items >= 1,
            "eval_every": self.eval_every >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "log_every": self.log_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"de-occlusion training setting {name}={getattr(self, name)!r} is invalid"
                )

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


PRESETS = {
    # CPU test: the tiny random pipeline, 32 px, a few steps (seconds). The learning rate is
    # high so that a few steps visibly change the tiny model's output; alpha != rank checks
    # that the LoRA scale travels with the saved weights.
    "tiny": DeocclusionTrainConfig(
        model=TINY_MODEL,
        size=32,
        rank=4,
        lora_alpha=8.0,
        batch_size=1,
        lr=5e-2,
        warmup_steps=0,
        max_steps=4,
        mixed_precision="no",
        weight_dtype="float32",
        max_sequence_length=32,
        val_fraction=0.0,
        val_items=2,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
    ),
    # the paper's setting: FLUX.1-Kontext-dev, 512 px crops, 10K triplets, batch 4, 10k steps.
    # The paper gives no rank; 32 is the middle of what FLUX LoRAs use (16-64) and keeps the
    # file ~100 MB in bf16.
    "paper": DeocclusionTrainConfig(),
}


def preset(name: str, **overrides) -> DeocclusionTrainConfig:
    if name not in PRESETS:
        raise ValueError(
            f"unknown de-occlusion training preset {name!r}; choose from {sorted(PRESETS)}"
        )
    return replace(PRESETS[name], **overrides)


def get_lr(step: int, config: DeocclusionTrainConfig) -> float:
    """Linear warm-up, then constant (the usual schedule for LoRA finetuning)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr


def sample_sigmas(
    batch: int, config: DeocclusionTrainConfig, image_seq_len: int, scheduler_config, generator
):
    """(B,) noise levels in (0, 1): logit-normal or uniform, then (optionally) the scheduler's
    inference-time shift for ``image_seq_len`` target tokens."""
    import torch

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


# --- data -----------------------------------------------------------------------------------


def open_triplets(data, config: DeocclusionTrainConfig):
    """(train, val or None) from a triplet folder (``data.TripletDataset``, split by
    ``config.val_fraction``) or from a dataset object (``len`` + items as dicts)."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_dir():
            raise ValueError(
                f"{path}: triplet folder not found (make it with `scenemaker data deocclusion`)"
            )
        from .data import TripletDataset

        dataset = TripletDataset(path)
        if config.val_fraction > 0 and len(dataset) > 1:
            return dataset.split(config.val_fraction, config.seed)
        return dataset, None
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise ValueError(
            f"triplets must be a folder or a dataset with items, got {type(data).__name__}"
        )
    return data, None


def _square_rgb(item: dict, key: str, size: int) -> np.ndarray:
    from PIL import Image

    if key not in item:
        raise ValueError(f"triplet item has no {key!r} image")
    image = np.asarray(item[key])
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"triplet {key!r} must be (S, S, 3) uint8, got {image.shape} {image.dtype}"
        )
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"triplet {key!r} must be square, got {image.shape[:2]}")
    if image.shape[0] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    return image


def load_batch(dataset, indices, step: int, offset: int, config: DeocclusionTrainConfig):
    """(inputs, targets) (B, S, S, 3) uint8 and prompts; item k of the global batch is flipped
    by its own seeded coin (``offset``: this process's first position in the global batch)."""
    inputs, targets, prompts = [], [], []
    for k, index in enumerate(indices):
        item = dataset[int(index)]
        context = _square_rgb(item, "input", config.size)
        target = _square_rgb(item, "target", config.size)
        if config.hflip and np.random.default_rng([config.seed, step, offset + k]).random() < 0.5:
            context, target = context[:, ::-1], target[:, ::-1]
        inputs.append(context)
        targets.append(target)
        prompts.append(_prompt(item))
    return np.stack(inputs), np.stack(targets), prompts


def _prompt(item: dict) -> str:
    prompt = item.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"triplet item has no prompt string, got {prompt!r}")
    return prompt


def distinct_prompts(dataset) -> list[str]:
    """Every prompt of a dataset, once: from its manifest ``records`` (TripletDataset) when
    it has them, else read item by item."""
    records = getattr(dataset, "records", None)
    if records is not None:
        prompts = [_prompt(record) for record in records]
    else:
        prompts = [_prompt(dataset[i]) for i in range(len(dataset))]
    return sorted(set(prompts))


# --- model pieces ---------------------------------------------------------------------------


def _source_name(source, config: DeocclusionTrainConfig) -> str:
    if source is None:
        return config.model
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__} object>"


def load_pipeline(source, config: DeocclusionTrainConfig):
    """The FluxKontextPipeline to finetune: ``source`` None -> ``config.model``; a hub id /
    folder; or a pipeline object (used as it is: the LoRA is added to its transformer)."""
    import torch

    dtype = getattr(torch, config.weight_dtype)
    if source is not None and not isinstance(source, (str, Path)):
        if not all(hasattr(source, name) for name in ("transformer", "vae", "encode_prompt")):
            raise ValueError(
                "pipeline must be a FluxKontextPipeline, an id or a folder, got "
                f"{type(source).__name__}"
            )
        return source
    name = _source_name(source, config)
    if name == TINY_MODEL:
        from .tiny import build_tiny_flux_kontext

        pipe = build_tiny_flux_kontext(seed=0)  # float32
        return pipe if dtype == torch.float32 else pipe.to(dtype)
    from diffusers import FluxKontextPipeline

    from .flux import _from_pretrained

    return _from_pretrained(FluxKontextPipeline, name, dtype)


def encode_prompts(pipe, prompts: list[str], device, max_sequence_length: int) -> dict:
    """{prompt: (T5 embeddings (L, D), CLIP pooled (P,))} on the CPU, plus the text ids."""
    import torch

    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        encoder.to(device)
    table = {}
    with torch.no_grad():
        for start in range(0, len(prompts), 16):
            chunk = prompts[start : start + 16]
            embeds, pooled, text_ids = pipe.encode_prompt(
                prompt=chunk, prompt_2=None, device=device, max_sequence_length=max_sequence_length
            )
            for k, prompt in enumerate(chunk):
                table[prompt] = (embeds[k].cpu(), pooled[k].cpu())
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        encoder.to("cpu")
    return {"prompts": table, "text_ids": text_ids.cpu()}


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


def add_lora(transformer, config: DeocclusionTrainConfig) -> list:
    """Freeze the transformer, add the LoRA adapter (seeded init); its float32 parameters."""
    import torch
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(config.seed)
    transformer.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.lora_alpha,
            init_lora_weights=True,  # B = 0: training starts from the base model
            target_modules=list(config.target_modules),
        )
    )
    params = [p for _, p in transformer.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"target_modules {list(config.target_modules)} match no layer")
    for param in params:
        param.data = param.data.float()
    return params


def make_optimizer(params, config: DeocclusionTrainConfig):
    import torch

    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as error:
            from ..errors import MissingDependencyError

            raise MissingDependencyError(
                "optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes"
            ) from error
        cls = bnb.optim.AdamW8bit
    else:
        cls = torch.optim.AdamW
    return cls(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


# --- checkpoints ----------------------------------------------------------------------------


def save_checkpoint(folder: Path, lora_state: dict, optimizer, step: int) -> None:
    """Write a checkpoint folder atomically (a kill at any instant leaves the newest complete
    checkpoint for ``recover_folder``)."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in lora_state.items()}
    with atomic_folder(folder) as tmp:
        save_file(state, str(tmp / LORA_STATE_FILE))
        os.chmod(tmp / LORA_STATE_FILE, 0o644)  # safetensors writes owner-only files
        torch.save({"optimizer": optimizer.state_dict(), "step": step}, tmp / STATE_FILE)


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


def _resumable(config_dict: dict) -> dict:
    return {k: v for k, v in config_dict.items() if k not in RESUMABLE_CHANGES}


# --- the loop -------------------------------------------------------------------------------


@dataclass
class _Model:
    transformer: object  # unwrapped (no DDP)
    vae: object
    text: dict  # encode_prompts' table
    scheduler_config: dict
    dtype: object  # of the frozen weights
    device: object


def batch_loss(model: _Model, transformer, inputs, targets, prompts, config, generator):
    """Loss of one batch ((B, S, S, 3) uint8 contexts and targets); sigmas and noise drawn
    from ``generator`` (CPU) in that order. Returns (loss, sigmas)."""
    import torch

    x0, grid = encode_images(model.vae, targets)
    context, _ = encode_images(model.vae, inputs)
    sigmas = sample_sigmas(len(prompts), config, x0.shape[1], model.scheduler_config, generator)
    noise = torch.randn(x0.shape, generator=generator).to(model.device, x0.dtype)
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


def _validation_loss(model: _Model, dataset, config) -> float:
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
    from accelerate import Accelerator
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from tqdm.auto import tqdm

    config = config or PRESETS["paper"]
    config.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path is a file, expected a folder")
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
        "pipeline": _source_name(pipeline, config),
        **config.to_dict(),
    }
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision
    )
    checkpoint = out / "checkpoint"
    if accelerator.is_main_process:
        recover_folder(checkpoint)  # the newest complete checkpoint, had a save been killed
    accelerator.wait_for_everyone()
    resuming = (checkpoint / STATE_FILE).is_file()
    if resuming:
        saved = read_json(out / "train_config.json")
        if _resumable(saved) != _resumable(record):
            changed = sorted(k for k in record if saved.get(k) != record[k])
            raise ValueError(
                f"{out}: holds a run with other settings ({', '.join(changed)}); "
                "use a new out folder"
            )

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
        state = load_trainer_state(checkpoint / STATE_FILE, optimizer)
        step = int(state["step"])
        accelerator.print(f"resuming from step {step}")
    if accelerator.is_main_process:  # on resume: records the latest max_steps etc.
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "train_config.json", record)

    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    transformer.train()
    model = _Model(
        accelerator.unwrap_model(transformer), vae, text, scheduler_config, dtype, device
    )
    world, rank = accelerator.num_processes, accelerator.process_index
    per_rank = max(1, config.batch_size // world)
    log_path = out / "log.jsonl"
    start_time, start_step = time.perf_counter(), step
    bar = tqdm(
        total=config.max_steps,
        initial=step,
        desc="training de-occlusion LoRA",
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    last: dict = {"step": step}
    while step < config.max_steps:
        if config.max_minutes and out_of_time(start_time, config.max_minutes, accelerator):
            break
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step, config)
        indices = batch_indices(step, len(train_set), config.batch_size, config.seed)
        indices = indices[rank * per_rank : (rank + 1) * per_rank]
        inputs, targets, prompts = load_batch(train_set, indices, step, rank * per_rank, config)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * world + rank)
        with accelerator.autocast():
            loss, sigmas = batch_loss(
                model, transformer, inputs, targets, prompts, config, generator
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {step + 1}; lower lr")
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        if accelerator.is_main_process:
            rate = (step - start_step) / (time.perf_counter() - start_time)
            last = {
                "step": step,
                "loss": float(loss.detach()),
                "sigma_mean": float(sigmas.mean()),
                "lr": get_lr(step - 1, config),
                "steps_per_s": round(rate, 4),
            }
            bar.set_postfix(loss=f"{last['loss']:.4f}")
            if step % config.log_every == 0 or step == config.max_steps:
                append_jsonl(log_path, last)
            if val_set is not None and (step % config.eval_every == 0 or step == config.max_steps):
                transformer.eval()
                last["val_loss"] = _validation_loss(model, val_set, config)
                transformer.train()
                append_jsonl(log_path, {"step": step, "val_loss": last["val_loss"]})
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                save_checkpoint(
                    checkpoint, get_peft_model_state_dict(model.transformer), optimizer, step
                )
        accelerator.wait_for_everyone()
    bar.close()
    if accelerator.is_main_process:
        save_checkpoint(checkpoint, get_peft_model_state_dict(model.transformer), optimizer, step)
        last["lora"] = str(save_lora(out, model.transformer, dtype))
    accelerator.wait_for_everyone()
    return last
