"""Every backend by stage and name: how to build it from a PipelineConfig, which library it
needs, its default weights and their licence (``scenemaker doctor`` prints this table).

Backends are imported lazily: building one imports its module, listing them imports nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field

from .errors import InputError


@dataclass(frozen=True)
class BackendSpec:
    stage: str
    name: str
    target: str  # "module:Class"
    requires: tuple[str, ...] = ()  # importable modules the backend needs
    weights: tuple[str, ...] = ()  # default Hugging Face ids (none: embedded)
    licence: str = "Apache-2.0 (SceneMaker)"
    note: str = ""
    extra: dict = field(default_factory=dict)


_HF = ("transformers",)
SPECS: list[BackendSpec] = [
    # perception: segmentation
    BackendSpec("segmenter", "user", "scenemaker.perception.inputs:UserMasks",
                note="masks given with --masks (label PNG, per-object PNGs, COCO RLE JSON)"),
    BackendSpec("segmenter", "grounded-sam", "scenemaker.perception.grounded_sam:GroundedSAM", _HF,
                ("IDEA-Research/grounding-dino-tiny", "facebook/sam-vit-base"),
                "Apache-2.0 (Grounding DINO), Apache-2.0 (SAM)"),
    BackendSpec("segmenter", "sam-clicks", "scenemaker.perception.grounded_sam:SamClicks", _HF,
                ("facebook/sam-vit-base",), "Apache-2.0 (SAM)"),
    # perception: depth and intrinsics
    BackendSpec("depth", "user", "scenemaker.perception.inputs:UserDepth",
                note="RGB-D: --depth file with --K or --fov"),
    BackendSpec("depth", "moge", "scenemaker.perception.depth_models:MoGeDepth", ("moge", "utils3d"),
                ("Ruicheng/moge-2-vitl-normal",), "MIT (MoGe-2 code and weights)"),
    BackendSpec("depth", "depth-anything", "scenemaker.perception.depth_models:DepthAnythingDepth",
                _HF, ("depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",),
                "Apache-2.0 (Small checkpoints); Base/Large: CC-BY-NC-4.0"),
    BackendSpec("depth", "depth-pro", "scenemaker.perception.depth_models:DepthProDepth",
                ("transformers", "torchvision"), ("apple/DepthPro-hf",), "Apple ML research licence (apple-amlr)"),
    # de-occlusion
    BackendSpec("deoccluder", "classical", "scenemaker.deocclusion.classical:ClassicalDeoccluder",
                ("cv2",), note="OpenCV inpainting inside an estimated amodal region"),
    BackendSpec("deoccluder", "none", "scenemaker.deocclusion.classical:NoDeocclusion"),
    BackendSpec("deoccluder", "flux-kontext", "scenemaker.deocclusion.flux:FluxKontextDeoccluder",
                ("diffusers", "peft"), ("black-forest-labs/FLUX.1-Kontext-dev",),
                "FLUX.1 [dev] Non-Commercial License (gated)"),
    # object generation
    BackendSpec("generator", "retrieval", "scenemaker.object3d.retrieval:RetrievalGenerator",
                note="train-split meshes: procedural (CC0-1.0) + pybullet random_urdfs (zlib)"),
    BackendSpec("generator", "lift", "scenemaker.object3d.lift:LiftGenerator",
                note="closed mesh lifted from the visible points"),
    BackendSpec("generator", "oracle", "scenemaker.object3d.oracle:OracleGenerator",
                note="ground-truth meshes (synthetic scenes only)"),
    BackendSpec("generator", "external", "scenemaker.object3d.external:ExternalGenerator",
                note="any command: --external-command 'python gen.py {image} {out_mesh}'"),
    BackendSpec("generator", "shap-e", "scenemaker.object3d.shap_e:ShapEGenerator", ("diffusers",),
                ("openai/shap-e-img2img",), "MIT"),
    BackendSpec("generator", "hunyuan3d", "scenemaker.object3d.hunyuan:Hunyuan3DGenerator",
                ("hy3dgen", "torchvision"), ("tencent/Hunyuan3D-2",),
                "Tencent Hunyuan Community License"),
    # pose and refinement
    BackendSpec("pose", "dit", "scenemaker.pose.estimator:DiTPoseEstimator",
                note="shipped PoseDiT weights (trained by this project, Apache-2.0)"),
    BackendSpec("pose", "box_fit", "scenemaker.pose.baselines:BoxFitEstimator"),
    BackendSpec("pose", "registration", "scenemaker.pose.registration:RegistrationEstimator",
                ("open3d",)),
    BackendSpec("pose", "initial", "scenemaker.backends:InitialPoseEstimator",
                note="the generator's own placement (lift), box fit where it has none"),
    BackendSpec("refiner", "render", "scenemaker.refine:RenderCompareRefiner",
                note="the pose model's samples x headings x resting faces x sizes, rendered and "
                     "compared with masks and depth, ICP with scale, local search; confidence"),
    BackendSpec("refiner", "fit", "scenemaker.refine:FitRefiner",
                note="4 headings per object, ICP, best fit to the depth image"),
    BackendSpec("refiner", "icp", "scenemaker.refine:IcpRefiner"),
    BackendSpec("refiner", "overlap", "scenemaker.refine:OverlapRefiner"),
    BackendSpec("refiner", "none", "scenemaker.refine:NoRefiner"),
]  # fmt: skip
STAGE_OF_KIND = {"segmenter": "perception", "depth": "perception", "deoccluder": "deocclusion",
                 "generator": "object3d", "pose": "pose", "refiner": "refine"}  # fmt: skip


def spec(kind: str, name: str) -> BackendSpec:
    for s in SPECS:
        if s.stage == kind and s.name == name:
            return s
    names = ", ".join(s.name for s in SPECS if s.stage == kind)
    raise InputError(f"unknown {kind} backend {name!r} (choose from {names})")


def names(kind: str) -> list[str]:
    return [s.name for s in SPECS if s.stage == kind]


def _load(target: str):
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def _hf(config, model) -> dict:
    kw = {"device": config.device, "dtype": config.dtype, "cpu_offload": config.cpu_offload}
    if model:
        kw["model"] = model
    return kw


def resolve_name(kind: str, config) -> str:
    if kind == "segmenter":
        if config.segmenter == "auto":
            return "user" if config.masks else "grounded-sam"
        return config.segmenter
    if kind == "depth":
        if config.depth == "auto":
            return "user" if config.depth_file else "moge"
        return config.depth
    return {
        "deoccluder": config.deocclusion,
        "generator": config.generator,
        "pose": config.pose,
        "refiner": config.refine,
    }[kind]


def build_backend(kind: str, config):
    """The backend of ``kind`` named in ``config``, constructed with its settings."""
    name = resolve_name(kind, config)
    s = spec(kind, name)
    cls = _load(s.target)
    if kind == "segmenter":
        if name == "user":
            if not config.masks:
                raise InputError("--segmenter user needs --masks FILE_OR_FOLDER")
            return cls(config.masks)
        if name == "sam-clicks":
            if not config.clicks:
                raise InputError("--segmenter sam-clicks needs --clicks")
            return cls(clicks=config.clicks, **_hf(config, config.segmenter_model))
        return cls(**_hf(config, config.segmenter_model))
    if kind == "depth":
        if name == "user":
            if not config.depth_file:
                raise InputError("--depth user needs --depth-file FILE (16-bit PNG, EXR or NPY)")
            return cls(
                config.depth_file, K=config.K, fov=config.fov, depth_scale=config.depth_scale,
                invalid_value=config.invalid_depth,
            )  # fmt: skip
        return cls(**_hf(config, config.depth_model))
    if kind == "deoccluder":
        if name == "flux-kontext":
            return cls(lora=config.lora, seed=config.seed, **_hf(config, config.deocclusion_model))
        return cls()
    if kind == "generator":
        if name == "external":
            if not config.external_command:
                raise InputError(
                    "--generator external needs --external-command 'CMD {image} {out_mesh}'"
                )
            return cls(config.external_command, timeout=config.external_timeout)
        if name in ("shap-e", "hunyuan3d"):
            return cls(seed=config.seed, **_hf(config, config.generator_model))
        if name == "retrieval":
            # only the render refiner chooses among candidate meshes
            return cls(alternatives=config.mesh_candidates - 1 if config.refine == "render" else 0)
        return cls()
    if kind == "pose":
        if name == "dit":
            from .hub import resolve_device

            try:
                device = resolve_device(config.device)
            except ValueError as exc:
                raise InputError(f"--device: {exc}") from None
            return cls(config.pose_weights, steps=config.pose_steps, guidance=config.guidance,
                       seed=config.seed, samples=config.pose_samples, device=device,
                       dtype=config.dtype)  # fmt: skip
        if name == "initial":
            return cls()
        return cls(seed=config.seed)
    if kind == "refiner":
        if name == "overlap":
            from .refine import FitRefiner

            return cls(icp=FitRefiner(seed=config.seed))
        if name == "render":
            return cls(seed=config.seed, stretch=config.stretches, workers=config.refine_workers)
        if name in ("icp", "fit"):
            return cls(seed=config.seed)
        return cls()
    raise ValueError(f"unknown backend kind {kind!r}")


class InitialPoseEstimator:
    """Keeps each generator's own placement (``CanonicalMesh.initial_pose``, e.g. the lift
    generator's); box fit for meshes that come without one. Takes CanonicalMesh objects."""

    name = "initial"

    def estimate(self, observation, meshes):
        import time

        from .pose.baselines import BoxFitEstimator
        from .pose.estimator import PoseResult

        start = time.perf_counter()
        fallback = BoxFitEstimator().estimate(observation, [m.mesh for m in meshes])
        poses = [
            m.initial_pose if m.initial_pose is not None else p
            for m, p in zip(meshes, fallback.poses, strict=True)
        ]
        skipped = {k: v for k, v in fallback.skipped.items() if poses[k] is None}
        return PoseResult(poses, skipped, time.perf_counter() - start)


def doctor() -> list[dict]:
    """One row per backend: does its library import, are its default weights local."""
    rows = []
    for s in SPECS:
        missing = [m for m in s.requires if importlib.util.find_spec(m) is None]
        rows.append(
            {
                "stage": s.stage,
                "name": s.name,
                "imports": not missing,
                "missing": missing,
                "weights": {w: _weights_present(w) for w in s.weights},
                "licence": s.licence,
                "note": s.note,
            }
        )
    return rows


def _weights_present(model_id: str) -> bool:
    """True when the hub cache holds a snapshot of ``model_id`` (no network access)."""
    try:
        from huggingface_hub import scan_cache_dir

        return any(r.repo_id == model_id for r in scan_cache_dir().repos)
    except Exception:  # no cache folder yet, or an unreadable one: nothing local
        return False


def device_summary() -> str:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        mem = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"cuda: {name} ({mem:.0f} GiB)"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads), no GPU found"
