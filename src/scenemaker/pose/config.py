"""Named presets of the pose model and its training (nerfstudio-style config dataclasses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass
class PoseDiTConfig:
    width: int = 256
    """Token width."""
    depth: int = 6
    """Number of blocks."""
    heads: int = 4
    mlp_ratio: float = 4.0
    geometry_tokens: int = 8
    """Tokens of the canonical-mesh set encoder per object."""
    num_freqs: int = 6
    """Fourier frequencies of the point encoders."""
    num_points: int = 64
    """Observed points per object (each one a condition token)."""
    num_canonical: int = 256
    """Canonical surface samples per object fed to the set encoder."""
    attention: str = "full"
    """full | global_local | global (ablations)."""
    image_dim: int | None = None
    """Width of DINOv2 image tokens (1024 for dinov2-with-registers-large); None: no image
    conditions (the CPU preset). Training with image tokens needs them in the prepared data,
    which ``prepare_pose_data`` does not write yet."""

    def model_kwargs(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    model: PoseDiTConfig = field(default_factory=PoseDiTConfig)
    batch_size: int = 32
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 200
    max_steps: int = 5000
    max_minutes: float | None = None
    """Stop (and checkpoint) after this wall time, whatever max_steps says."""
    condition_dropout: float = 0.1
    mixed_precision: str = "no"
    """no | bf16 (autocast)."""
    eval_every: int = 250
    checkpoint_every: int = 250
    val_views: int = 64
    """Validation views sampled (with a fixed seed) from the validation data."""
    sampling_steps: int = 10
    guidance: float = 3.0
    seed: int = 0
    num_workers: int = 0

    def validate(self) -> None:
        """A ValueError naming the first setting that cannot work."""
        checks = {
            "batch_size": self.batch_size >= 1,
            "max_steps": self.max_steps >= 1,
            "lr": self.lr > 0,
            "sampling_steps": self.sampling_steps >= 1,
            "guidance": self.guidance >= 0,
            "max_minutes": self.max_minutes is None or self.max_minutes > 0,
            "condition_dropout": 0 <= self.condition_dropout < 1,
            "mixed_precision": self.mixed_precision in ("no", "bf16"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"training setting {name}={getattr(self, name)!r} is invalid")


PRESETS = {
    "tiny": TrainConfig(
        model=PoseDiTConfig(
            width=32,
            depth=2,
            heads=2,
            geometry_tokens=2,
            num_freqs=2,
            num_points=16,
            num_canonical=32,
        ),
        batch_size=4,
        max_steps=20,
        warmup_steps=2,
        eval_every=10,
        checkpoint_every=10,
        val_views=4,
        sampling_steps=3,
    ),
    # measured on the 2-core dev machine (batch 32, 4 objects): 64 observed points + 128
    # canonical samples per object ran at ~0.7 steps/s in bf16 autocast, ~0.57 in fp32.
    # Width 240 with mlp_ratio 2 keeps the shipped fp16 weights under 20 MB (9.3M parameters).
    "cpu": TrainConfig(
        model=PoseDiTConfig(
            width=240,
            depth=6,
            heads=4,
            mlp_ratio=2.0,
            geometry_tokens=8,
            num_points=64,
            num_canonical=128,
        ),
        batch_size=32,
        max_steps=3500,
        mixed_precision="bf16",
    ),
    "paper": TrainConfig(
        model=PoseDiTConfig(
            width=1024, depth=16, heads=16, geometry_tokens=64, num_points=256, num_canonical=2048
        ),
        batch_size=8,
        max_steps=200_000,
        mixed_precision="bf16",
        eval_every=2000,
        checkpoint_every=2000,
    ),
}


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
