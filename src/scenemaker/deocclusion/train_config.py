"""Settings of the de-occlusion LoRA finetuning (``train.py``): the config, its presets, the
learning-rate schedule and which settings a resumed run may change.

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
from dataclasses import asdict, dataclass, replace

from .flux import DEFAULT_MODEL

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


def resumable_settings(config_dict: dict) -> dict:
    """The settings a resumed run must share with the saved one."""
    return {k: v for k, v in config_dict.items() if k not in RESUMABLE_CHANGES}
