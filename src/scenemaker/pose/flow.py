"""Flow matching in the 10-D pose space (PAPER.md, "Flow matching").

z_sigma = (1 - sigma) x0 + sigma eps; the network predicts the velocity v = eps - x0; the
clean pose is recovered as x0_hat = z_sigma - sigma v_hat and the loss is the MSE on x0,
weighted by w(sigma) = 2 / (pi (1 - 2 sigma + 2 sigma^2)), with separate rotation,
translation and size terms. sigma is drawn uniformly over a 1,000-step discretisation.
"""

from __future__ import annotations

import math

import torch

NUM_TRAIN_TIMESTEPS = 1000
SLICES = {"rotation": slice(0, 6), "translation": slice(6, 9), "size": slice(9, 10)}


def loss_weight(sigma: torch.Tensor) -> torch.Tensor:
    return 2.0 / (math.pi * (1.0 - 2.0 * sigma + 2.0 * sigma**2))


def sample_sigmas(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """sigma = k / 1000 for k uniform in 1..1000 (the timestep discretisation)."""
    steps = torch.randint(1, NUM_TRAIN_TIMESTEPS + 1, (batch,), generator=generator)
    return steps.float() / NUM_TRAIN_TIMESTEPS


def flow_matching_loss(
    model,
    batch: dict,
    condition_dropout: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One training loss on a collated batch; returns (loss, per-term floats)."""
    x0 = batch["target"]
    mask = batch["object_mask"]
    b = x0.shape[0]
    sigma = sample_sigmas(b, generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    z = (1.0 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
    drop = torch.rand(b, generator=generator).to(x0.device) < condition_dropout
    velocity = model(z, sigma * NUM_TRAIN_TIMESTEPS, batch=batch, drop=drop)
    x0_hat = z - sigma[:, None, None] * velocity.float()
    weight = loss_weight(sigma)[:, None]  # (B, 1)
    valid = mask.float()
    terms, total = {}, 0.0
    for name, sl in SLICES.items():
        err = ((x0_hat[..., sl] - x0[..., sl]) ** 2).mean(-1)  # (B, N)
        term = (err * weight * valid).sum() / valid.sum().clamp(min=1.0)
        terms[name] = float(term.detach())
        total = total + term
    return total, terms
