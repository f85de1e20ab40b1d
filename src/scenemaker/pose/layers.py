"""Building blocks of PoseDiT: Fourier features, attention with key masks, encoders."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierFeatures(nn.Module):
    """x -> [x, sin(2^k pi x), cos(2^k pi x)] for k < num_freqs (per input channel)."""

    def __init__(self, in_dim: int, num_freqs: int):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(num_freqs)) * math.pi, persistent=False)
        self.out_dim = in_dim * (2 * num_freqs + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x[..., None] * self.freqs  # (..., D, F)
        feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)
        return torch.cat([x, feats], dim=-1)


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))


class Attention(nn.Module):
    """Multi-head attention; ``key_mask`` (B, Lk) True = attend. A learned null key/value is
    always present, so a query whose keys are all masked (padding) gets a finite output."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        kv_dim = kv_dim or dim
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.null_kv = nn.Parameter(torch.zeros(2, dim))

    def forward(self, x, context=None, key_mask=None, cache: dict | None = None):
        """``cache``: a dict kept across calls with the same ``context`` (the conditions of one
        scene during sampling) so its keys / values are projected once, not once per step."""
        b, lq, d = x.shape
        h = self.heads
        q = self.q(x).view(b, lq, h, d // h).transpose(1, 2)
        if cache is not None and id(self) in cache:
            k, v = cache[id(self)]
        else:
            k, v = self._keys_values(x if context is None else context)
            if cache is not None:
                cache[id(self)] = (k, v)
        mask = None
        if key_mask is not None:
            mask = torch.cat([key_mask.new_ones(b, 1), key_mask], dim=1)[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(out.transpose(1, 2).reshape(b, lq, d))

    def _keys_values(self, context):
        b, _, d = context.shape
        h = self.heads
        k, v = self.kv(context).chunk(2, dim=-1)
        k = torch.cat([self.null_kv[0].expand(b, 1, d).to(k.dtype), k], dim=1)
        v = torch.cat([self.null_kv[1].expand(b, 1, d).to(v.dtype), v], dim=1)
        lk = k.shape[1]
        k = k.view(b, lk, h, d // h).transpose(1, 2)
        v = v.view(b, lk, h, d // h).transpose(1, 2)
        return k, v


class PointEncoder(nn.Module):
    """Each point a token: Fourier features of xyz, then an MLP."""

    def __init__(self, width: int, num_freqs: int, in_dim: int = 3):
        super().__init__()
        self.fourier = FourierFeatures(in_dim, num_freqs)
        self.mlp = mlp(self.fourier.out_dim, width, width)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.fourier(points))


class SetEncoder(nn.Module):
    """Canonical surface points with normals -> ``num_latents`` geometry tokens (learned
    queries cross-attending to the embedded points). Replaceable by a pretrained shape VAE."""

    def __init__(self, width: int, heads: int, num_latents: int, num_freqs: int):
        super().__init__()
        self.points = PointEncoder(width, num_freqs, in_dim=6)
        self.latents = nn.Parameter(torch.randn(num_latents, width) * 0.02)
        self.norm_q = nn.RMSNorm(width)
        self.norm_kv = nn.RMSNorm(width)
        self.attn = Attention(width, heads)
        self.ff = mlp(width, 2 * width, width)
        self.norm_ff = nn.RMSNorm(width)

    def forward(self, surface: torch.Tensor) -> torch.Tensor:
        """(B, C, 6) -> (B, num_latents, width)."""
        tokens = self.norm_kv(self.points(surface))
        q = self.latents.expand(surface.shape[0], -1, -1)
        x = q + self.attn(self.norm_q(q), tokens)
        return x + self.ff(self.norm_ff(x))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps in [0, 1000]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)
