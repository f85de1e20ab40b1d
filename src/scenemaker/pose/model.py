"""PoseDiT: a diffusion transformer that predicts the flow-matching velocity of every object's
10-D pose (6-D rotation, translation, size) jointly.

Tokens per object: rotation, translation and size tokens (MLPs of the noisy values) plus
``geometry_tokens`` tokens of the canonical mesh (a set encoder over surface points and
normals). No positional encoding across objects: the output is equivariant to object order
and any number of objects is accepted. Block order (``attention="full"``, the paper's):

1. global self-attention over all tokens of all objects (padding objects masked out);
2. local self-attention within each object's tokens;
3. local cross-attention: the rotation token attends to the object's own local conditions
   (its observed points in its own normalisation);
4. translation / size tokens receive the object's observed box (centre, extent) token;
5. global cross-attention: translation and size tokens attend to scene-level conditions
   (every object's points in scene-normalised coordinates);
6. feed-forward.

Ablations: ``"global"`` keeps only (1) and ``"global_local"`` (1)+(2); both replace (3)-(5)
with one undecoupled cross-attention in which every token of an object attends to its own
points, its box token and the scene points. Timestep conditioning is adaLN-single (one shared
MLP, a learned per-block table), normalisation RMSNorm. This module only predicts velocity;
the scheduler and sampling loop live in :mod:`scenemaker.pose.estimator`.
"""

from __future__ import annotations

import torch
from torch import nn

try:
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.modeling_utils import ModelMixin
except ImportError:  # a bare GPU machine (train pose-pack): the same files, written by hand
    from ..portable import ConfigMixin, ModelMixin, register_to_config

from .layers import Attention, PointEncoder, SetEncoder, mlp, timestep_embedding

ATTENTION_VARIANTS = ("global", "global_local", "full")
POSE_DIM = 10  # rot6d (6) + translation (3) + size (1)


class PoseDiTBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, attention: str):
        super().__init__()
        self.attention = attention
        self.norm_global = nn.RMSNorm(width, elementwise_affine=False)
        self.attn_global = Attention(width, heads)
        if attention != "global":
            self.norm_local = nn.RMSNorm(width, elementwise_affine=False)
            self.attn_local = Attention(width, heads)
        if attention == "full":
            self.norm_rot = nn.RMSNorm(width)
            self.attn_rot = Attention(width, heads)
            self.inject = nn.Linear(width, 2 * width)
            self.norm_scene = nn.RMSNorm(width)
            self.attn_scene = Attention(width, heads)
        else:
            self.norm_cross = nn.RMSNorm(width)
            self.attn_cross = Attention(width, heads)
        self.norm_ff = nn.RMSNorm(width, elementwise_affine=False)
        self.ff = mlp(width, int(width * mlp_ratio), width)
        n_mod = 9 if attention != "global" else 6
        self.modulation = nn.Parameter(torch.randn(n_mod, width) / width**0.5)

    def forward(self, x, t_mod, cond, object_mask):
        """x: (B, N, T, D) tokens; t_mod: (B, n_mod, D); cond: dict of condition tokens."""
        b, n, t, d = x.shape
        mods = (self.modulation[None] + t_mod[:, : self.modulation.shape[0]]).unbind(1)

        def modulate(h, shift, scale):
            return h * (1 + scale[:, None, None]) + shift[:, None, None]

        # 1. global self-attention over all objects' tokens
        shift, scale, gate = mods[0], mods[1], mods[2]
        h = modulate(self.norm_global(x), shift, scale).reshape(b, n * t, d)
        key_mask = object_mask[:, :, None].expand(b, n, t).reshape(b, n * t)
        h = self.attn_global(h, key_mask=key_mask).reshape(b, n, t, d)
        x = x + gate[:, None, None] * h
        k = 3
        # 2. local self-attention within each object
        if self.attention != "global":
            shift, scale, gate = mods[3], mods[4], mods[5]
            h = modulate(self.norm_local(x), shift, scale).reshape(b * n, t, d)
            h = self.attn_local(h).reshape(b, n, t, d)
            x = x + gate[:, None, None] * h
            k = 6
        if self.attention == "full":
            # 3. rotation token -> the object's own observed points (local normalisation)
            rot = x[:, :, 0].reshape(b * n, 1, d)
            cache = cond.get("kv_cache")
            rot = self.attn_rot(self.norm_rot(rot), cond["local"], cond["local_mask"], cache)
            # 4. translation / size tokens receive the observed box token
            inj_t, inj_s = self.inject(cond["box"]).chunk(2, dim=-1)  # (B, N, D) each
            # 5. translation / size tokens -> scene-level conditions
            ts = x[:, :, 1:3] + torch.stack([inj_t, inj_s], dim=2)
            ts_flat = self.norm_scene(ts).reshape(b, n * 2, d)
            ts_out = self.attn_scene(ts_flat, cond["scene"], cond["scene_mask"], cache)
            ts_out = ts_out.reshape(b, n, 2, d)
            x = torch.cat(
                [
                    x[:, :, :1] + rot.reshape(b, n, 1, d),
                    ts + ts_out,
                    x[:, :, 3:],
                ],
                dim=2,
            )
        else:
            # undecoupled: every token of an object -> [own points, own box, scene points]
            h = self.attn_cross(
                self.norm_cross(x).reshape(b * n, t, d),
                cond["joint"],
                cond["joint_mask"],
                cond.get("kv_cache"),
            )
            x = x + h.reshape(b, n, t, d)
        # 6. feed-forward
        shift, scale, gate = mods[k], mods[k + 1], mods[k + 2]
        x = x + gate[:, None, None] * self.ff(modulate(self.norm_ff(x), shift, scale))
        return x


class PoseDiT(ModelMixin, ConfigMixin):
    """Velocity predictor over all objects of a scene. See the module docstring."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        width: int = 256,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        geometry_tokens: int = 8,
        num_freqs: int = 6,
        num_points: int = 64,
        num_canonical: int = 256,
        attention: str = "full",
        image_dim: int | None = None,
    ):
        super().__init__()
        if attention not in ATTENTION_VARIANTS:
            raise ValueError(f"attention must be one of {ATTENTION_VARIANTS}, got {attention!r}")
        self.rot_in = mlp(6, width, width)
        self.trans_in = mlp(3, width, width)
        self.size_in = mlp(1, width, width)
        self.token_type = nn.Parameter(torch.randn(3 + geometry_tokens, width) * 0.02)
        self.geometry = SetEncoder(width, heads, geometry_tokens, num_freqs)
        self.local_points = PointEncoder(width, num_freqs)
        self.scene_points = PointEncoder(width, num_freqs)
        self.box_in = mlp(6, width, width)
        # optional image conditions (DINOv2 tokens): projected to the token width
        self.image_in = nn.Linear(image_dim, width) if image_dim else None
        self.t_embed = mlp(width, width, width)
        n_mod = 9 if attention != "global" else 6
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(width, n_mod * width))
        self.blocks = nn.ModuleList(
            PoseDiTBlock(width, heads, mlp_ratio, attention) for _ in range(depth)
        )
        self.norm_out = nn.RMSNorm(width, elementwise_affine=False)
        self.out_modulation = nn.Parameter(torch.randn(2, width) / width**0.5)
        self.t_out = nn.Linear(width, 2 * width)
        self.rot_out = nn.Linear(width, 6)
        self.trans_out = nn.Linear(width, 3)
        self.size_out = nn.Linear(width, 1)
        for head in (self.rot_out, self.trans_out, self.size_out):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def encode_conditions(self, batch: dict, drop: torch.Tensor | None = None) -> dict:
        """Condition tokens, computed once per scene (not once per sampling step).

        batch: ``local_points`` / ``scene_points`` (B, N, P, 3), ``box`` (B, N, 6),
        ``canonical`` (B, N, C, 6), ``object_mask`` (B, N); with ``image_dim``, also DINOv2
        tokens ``crop_tokens`` / ``masked_tokens`` (B, N, L, image_dim), ``scene_tokens``
        (B, L, image_dim) (see :mod:`scenemaker.pose.image_encoder`). ``drop`` (B,) bool zeroes the
        observation conditions of those scenes (classifier-free guidance); the canonical
        geometry is an input, never dropped.
        """
        mask = batch["object_mask"]
        b, n, p, _ = batch["local_points"].shape
        local = self.local_points(batch["local_points"])  # (B, N, P, D)
        scene = self.scene_points(batch["scene_points"])
        box = self.box_in(batch["box"])  # (B, N, D)
        if drop is not None:
            keep = (~drop).to(local.dtype)
            local = local * keep[:, None, None, None]
            scene = scene * keep[:, None, None, None]
            box = box * keep[:, None, None]
        d = local.shape[-1]
        geometry = self.geometry(batch["canonical"].reshape(b * n, -1, 6)).reshape(b, n, -1, d)
        point_mask = mask[:, :, None].expand(b, n, p)
        local_tokens = local.reshape(b * n, p, d)
        local_mask = point_mask.reshape(b * n, p)
        scene_tokens = scene.reshape(b, n * p, d)
        scene_mask = point_mask.reshape(b, n * p)
        if self.image_in is not None:
            # rotation (local) sees the object's crop; translation / size (scene-level) see the
            # whole image and the image masked to each object
            crop = self.image_in(batch["crop_tokens"])  # (B, N, L, D)
            whole = self.image_in(batch["scene_tokens"])  # (B, L, D)
            masked = self.image_in(batch["masked_tokens"])  # (B, N, L, D)
            if drop is not None:
                keep = (~drop).to(crop.dtype)
                crop, whole = crop * keep[:, None, None, None], whole * keep[:, None, None]
                masked = masked * keep[:, None, None, None]
            ll = crop.shape[2]
            img_mask = mask[:, :, None].expand(b, n, ll)
            local_tokens = torch.cat([local_tokens, crop.reshape(b * n, ll, d)], dim=1)
            local_mask = torch.cat([local_mask, img_mask.reshape(b * n, ll)], dim=1)
            scene_tokens = torch.cat([scene_tokens, whole, masked.reshape(b, n * ll, d)], dim=1)
            scene_mask = torch.cat(
                [scene_mask, mask.new_ones(b, whole.shape[1]), img_mask.reshape(b, n * ll)], dim=1
            )
        cond = {
            "geometry": geometry,
            "box": box,
            "local": local_tokens,
            "local_mask": local_mask,
            "scene": scene_tokens,
            "scene_mask": scene_mask,
        }
        if self.config.attention != "full":
            # per object: own points (+ crop) + own box + every scene-level token
            ss = scene_tokens.shape[1]
            own = torch.cat([local_tokens, box.reshape(b * n, 1, d)], dim=1)
            shared = scene_tokens[:, None].expand(b, n, ss, d).reshape(b * n, ss, d)
            cond["joint"] = torch.cat([own, shared], dim=1)
            own_mask = torch.cat([local_mask, mask.reshape(b * n, 1)], dim=1)
            shared_mask = scene_mask[:, None].expand(b, n, ss).reshape(b * n, ss)
            cond["joint_mask"] = torch.cat([own_mask, shared_mask], dim=1)
        return cond

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        conditions: dict | None = None,
        object_mask: torch.Tensor | None = None,
        batch: dict | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample: (B, N, 10) noisy poses; timestep: (B,) in [0, 1000]; -> velocity (B, N, 10).

        Pass ``conditions`` from :meth:`encode_conditions` (sampling: encoded once per scene),
        or the raw ``batch`` (training: encoded inside forward, so that wrappers such as DDP
        see one forward call).
        """
        if conditions is None:
            if batch is None:
                raise ValueError("forward needs conditions or a batch to encode")
            conditions = self.encode_conditions(batch, drop=drop)
        if object_mask is None:
            object_mask = batch["object_mask"]
        b, n, _ = sample.shape
        tokens = torch.stack(
            [
                self.rot_in(sample[..., :6]),
                self.trans_in(sample[..., 6:9]),
                self.size_in(sample[..., 9:10]),
            ],
            dim=2,
        )
        x = torch.cat([tokens, conditions["geometry"]], dim=2) + self.token_type
        t_emb = self.t_embed(timestep_embedding(timestep, x.shape[-1]).to(x.dtype))
        t_mod = self.t_block(t_emb).view(b, -1, x.shape[-1])
        for block in self.blocks:
            x = block(x, t_mod, conditions, object_mask)
        shift, scale = (self.out_modulation[None] + self.t_out(t_emb).view(b, 2, -1)).unbind(1)
        x = self.norm_out(x) * (1 + scale[:, None, None]) + shift[:, None, None]
        out = torch.cat(
            [self.rot_out(x[:, :, 0]), self.trans_out(x[:, :, 1]), self.size_out(x[:, :, 2])],
            dim=-1,
        )
        return out * object_mask[..., None].to(out.dtype)
