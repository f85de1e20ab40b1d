"""Pose estimators behind one interface, and the DiT estimator's sampling loop.

``PoseEstimator.estimate(observation, meshes)`` returns one camera-frame pose per object, or
None (with a reason) for objects that cannot be estimated (too few observed points, an empty
mask, a mesh with no area).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..geometry.points import MIN_OBSERVED_POINTS, observed_points
from ..scene import Pose
from .encoding import STORED_POINTS

DEFAULT_WEIGHTS = Path(__file__).with_name("weights")


@dataclass
class Observation:
    """One RGB-D view: metric depth, intrinsics and one visible mask per object; each
    object's observed points are computed once (:meth:`points`) for every stage that reads
    them (the pose model and the refiner)."""

    depth: np.ndarray  # (H, W) metres, camera z; 0 / NaN / inf = invalid
    K: np.ndarray  # (3, 3) pixels
    masks: list[np.ndarray]  # per object (H, W) bool visible mask
    rgb: np.ndarray | None = None  # (H, W, 3) uint8, for image-conditioned models

    def __post_init__(self):
        self.depth = np.asarray(self.depth, dtype=np.float32)
        if self.depth.ndim != 2:
            raise ValueError(f"depth must be (H, W), got shape {self.depth.shape}")
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.K.shape != (3, 3):
            raise ValueError(f"K must be (3, 3), got {self.K.shape}")
        for k, m in enumerate(self.masks):
            if np.shape(m) != self.depth.shape:
                raise ValueError(f"mask {k} has shape {np.shape(m)}, depth {self.depth.shape}")
        self.masks = [np.asarray(m, dtype=bool) for m in self.masks]
        self._points: dict = {}

    def points(self, k: int, count: int = 256, seed: int = 0) -> np.ndarray:
        """Object ``k``'s cleaned, farthest-point-ordered observed points (camera frame),
        computed on first use (:func:`scenemaker.geometry.points.observed_points`)."""
        key = (k, count, seed)
        if key not in self._points:
            self._points[key] = observed_points(self.depth, self.K, self.masks[k], count, seed=seed)
        return self._points[key]


@dataclass
class PoseResult:
    poses: list[Pose | None]
    """Camera-frame pose per object (OpenCV axes, metres); None where skipped."""
    skipped: dict[int, str] = field(default_factory=dict)
    """Object index -> why it has no pose."""
    seconds: float = 0.0
    hypotheses: list[list[Pose]] | None = None
    """Per object, every pose the estimator proposes (a generative model's samples; the
    first is ``poses[k]``), for a refiner to verify; None when it proposes one."""
    confidences: list[float | None] | None = None
    """Per object, a confidence in [0, 1] where the method computes one."""
    stretches: list | None = None
    """Per object, None or the scales per canonical axis the refiner fitted the mesh with
    (``scenemaker.refine.stretch.apply_stretch``); the pose then places the stretched mesh."""


class PoseEstimator(Protocol):
    name: str

    def estimate(self, observation: Observation, meshes: list) -> PoseResult: ...


@dataclass
class PreparedObjects:
    indices: list[int]
    points: list[np.ndarray]
    canonical: list[np.ndarray]  # (C, 6) points + normals
    skipped: dict[int, str]


def prepare_objects(
    observation: Observation,
    meshes: list,
    num_points: int = 256,
    num_canonical: int = 256,
    seed: int = 0,
) -> PreparedObjects:
    """Observed points and canonical samples per object; records why objects are skipped."""
    from ..geometry.sampling import sample_surface

    if len(meshes) != len(observation.masks):
        raise ValueError(f"got {len(meshes)} meshes for {len(observation.masks)} masks")
    out = PreparedObjects([], [], [], {})
    for k, (mask, mesh) in enumerate(zip(observation.masks, meshes, strict=True)):
        if not mask.any():
            out.skipped[k] = "empty mask"
            continue
        pts = observation.points(k, num_points, seed)
        if len(pts) < MIN_OBSERVED_POINTS:
            out.skipped[k] = f"only {len(pts)} valid observed points (< {MIN_OBSERVED_POINTS})"
            continue
        try:
            p, n = sample_surface(mesh, num_canonical, seed=seed)
        except ValueError as exc:
            out.skipped[k] = f"canonical mesh: {exc}"
            continue
        out.indices.append(k)
        out.points.append(pts)
        out.canonical.append(np.concatenate([p, n], 1).astype(np.float32))
    for k, why in out.skipped.items():
        warnings.warn(f"object {k} skipped: {why}", stacklevel=3)
    return out


class DiTPoseEstimator:
    """PoseDiT + flow-matching Euler sampling with classifier-free guidance."""

    name = "dit"

    def __init__(
        self,
        weights: str | Path | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        device: str = "cpu",
        model=None,
        image_encoder=None,
        samples: int = 1,
        dtype: str | None = None,
    ):
        from ..hub import parse_dtype
        from .model import PoseDiT

        self.dtype = parse_dtype(dtype)  # compute dtype of the sampling (autocast); None: float32

        if model is None:
            path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path}: no PoseDiT weights (config.json) there")
            model = load_pose_model(path)
        self.model: PoseDiT = model.to(device).eval()
        # sampling defaults: those chosen on validation data when the weights were shipped
        # (TRAINING.json), else 10 steps and the paper's guidance 3.0
        shipped = _shipped_sampling(weights if weights is not None else DEFAULT_WEIGHTS)
        self.steps = steps if steps is not None else shipped.get("steps", 10)
        self.guidance = guidance if guidance is not None else shipped.get("guidance", 3.0)
        self.seed, self.device = seed, device
        self.samples = int(samples)
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if int(self.steps) < 1:
            raise ValueError(f"sampling steps must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        self.image_encoder = image_encoder
        if self.model.config.image_dim and self.image_encoder is None:
            from .image_encoder import ImageEncoder

            self.image_encoder = ImageEncoder(device=device)  # DINOv2 from the hub / cache

    def estimate(self, observation: Observation, meshes: list) -> PoseResult:
        import time

        start = time.perf_counter()
        cfg = self.model.config
        prepared = prepare_objects(
            observation,
            meshes,
            # the same cleaned, farthest-point-ordered set the training data stores; the model
            # reads its first num_points and normalises the scene from all of them
            num_points=max(cfg.num_points, STORED_POINTS),
            num_canonical=cfg.num_canonical,
            seed=self.seed,
        )
        poses: list[Pose | None] = [None] * len(meshes)
        if prepared.indices:
            images = None
            if self.model.config.image_dim:
                if observation.rgb is None:
                    raise ValueError("this PoseDiT uses image features: the observation needs rgb")
                masks = [observation.masks[k] for k in prepared.indices]
                images = self.image_encoder.scene_tokens(observation.rgb, masks)
            draws = self.sample(prepared.points, prepared.canonical, images, self.samples)
            hypotheses: list[list[Pose]] = [[] for _ in meshes]
            for R, t, s in draws:
                for j, k in enumerate(prepared.indices):
                    if np.isfinite(R[j]).all() and np.isfinite(t[j]).all() and np.isfinite(s[j]):
                        if s[j] > 0:
                            hypotheses[k].append(Pose(R[j], t[j], s[j]))
            for k in prepared.indices:
                if not hypotheses[k]:
                    prepared.skipped[k] = "the model returned a degenerate pose"
                    continue
                poses[k] = hypotheses[k][0]
            return PoseResult(
                poses, prepared.skipped, time.perf_counter() - start,
                hypotheses if self.samples > 1 else None,
            )  # fmt: skip
        return PoseResult(poses, prepared.skipped, time.perf_counter() - start)

    def sample(
        self, points: list[np.ndarray], canonical: list[np.ndarray], images=None, samples=None
    ):
        """Camera-frame (R, t, s) for one scene's objects (the written-out sampling loop).

        With ``samples=S`` the scene is drawn S times in one batch (different noise) and a
        list of S (R, t, s) is returned; draw 0 is the one ``samples=None`` gives."""
        import torch

        from .encoding import decode_pose, make_inputs

        inputs = make_inputs(points, canonical, self.model.config.num_points)
        n = len(points)
        batch = {
            "local_points": torch.from_numpy(inputs.local_points)[None],
            "scene_points": torch.from_numpy(inputs.scene_points)[None],
            "box": torch.from_numpy(inputs.box)[None],
            "canonical": torch.from_numpy(inputs.canonical)[None],
            "object_mask": torch.ones(1, n, dtype=torch.bool),
        }
        if images is not None:
            batch.update({k: v[None] for k, v in images.items()})
        draws = 1 if samples is None else int(samples)
        batch = {k: v.expand(draws, *v.shape[1:]).to(self.device) for k, v in batch.items()}
        # each object's starting noise is seeded by where it is (its observed centroid, in
        # millimetres), not by its position in the list: results do not depend on object order
        noise = torch.stack(
            [
                torch.stack(
                    [
                        torch.randn(
                            10,
                            generator=torch.Generator().manual_seed(
                                _point_seed(p, self.seed + 104729 * d)
                            ),
                        )
                        for p in points
                    ]
                )
                for d in range(draws)
            ]
        )
        import contextlib

        lower = self.dtype is not None and self.dtype != torch.float32
        kind = torch.device(self.device).type
        with torch.autocast(kind, dtype=self.dtype) if lower else contextlib.nullcontext():
            x = sample_poses(self.model, batch, self.steps, self.guidance, initial=noise)
        x = x.float()
        out = [decode_pose(x[d].cpu().numpy(), inputs.center, inputs.scale) for d in range(draws)]
        return out[0] if samples is None else out


def _shipped_sampling(path) -> dict:
    import json

    info = Path(path) / "TRAINING.json"
    if not info.is_file():
        return {}
    try:
        return json.loads(info.read_text()).get("sampling", {}) or {}
    except (ValueError, OSError):
        return {}


def _point_seed(points: np.ndarray, seed: int) -> int:
    import hashlib

    key = np.rint(np.asarray(points).mean(0) * 1000).astype(np.int64).tobytes()
    return int.from_bytes(hashlib.sha1(key + str(seed).encode()).digest()[:7], "little")


def sample_poses(model, batch: dict, steps: int, guidance: float, generator=None, initial=None):
    """Euler sampling from noise (or ``initial`` (B, N, 10)) to normalised poses (B, N, 10);
    the conditions are encoded once, not once per step."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .flow import NUM_TRAIN_TIMESTEPS

    mask = batch["object_mask"]
    b, n = mask.shape
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)
    scheduler.set_timesteps(steps, device=mask.device)
    guided = guidance != 1.0
    with torch.inference_mode():
        cond = model.encode_conditions(batch)
        if guided:  # conditional and unconditional branches in one batch
            uncond = model.encode_conditions(batch, drop=torch.ones(b, dtype=torch.bool))
            cond = {k: torch.cat([cond[k], uncond[k]]) for k in cond}
            mask = torch.cat([mask, mask])
        cond["kv_cache"] = {}  # condition keys / values projected once for all steps
        if initial is not None:
            x = initial.to(mask.device, torch.float32)
        else:
            x = torch.randn((b, n, 10), generator=generator).to(mask.device)
        for t in scheduler.timesteps:
            x_in = torch.cat([x, x]) if guided else x
            v = model(x_in, t.expand(len(x_in)).to(x.dtype), cond, mask)
            if guided:
                v_c, v_u = v.chunk(2)
                v = v_u + guidance * (v_c - v_u)
            x = scheduler.step(v, t, x).prev_sample
    return x


WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"  # diffusers' name (save_pretrained)


def load_pose_model(path: str | Path):
    """Load PoseDiT weights (config.json + safetensors, never a pickle); a one-line error
    naming the file that is missing, damaged or does not match the other."""
    from ..errors import InputError, MissingWeightsError
    from ..io_utils import check_safetensors, read_json
    from .model import PoseDiT

    path = Path(path)
    config, weights = path / "config.json", path / WEIGHTS_FILE
    if not config.is_file():
        raise MissingWeightsError(
            f"{config}: not found (PoseDiT weights: config.json + {WEIGHTS_FILE})"
        )
    settings = read_json(config)
    if not isinstance(settings, dict):
        raise InputError(
            f"{config}: expected a JSON object of PoseDiT settings, found {type(settings).__name__}"
        )
    if not weights.is_file() and any(path.glob("*.bin")):
        raise InputError(f"{path}: pickled .bin weights refused: expected {WEIGHTS_FILE}")
    check_safetensors(weights)
    try:
        return PoseDiT.from_pretrained(path, low_cpu_mem_usage=False, use_safetensors=True)
    except (ValueError, RuntimeError, OSError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{path}: checkpoint does not match its config.json ({first[:200]})"
        ) from None
