"""Hunyuan3D-2 shape generation through ``hy3dgen`` (``hunyuan3d``).

``hy3dgen`` (Tencent's package, which needs torchvision) is imported on first use only. Its
image processor recentres the object using the alpha channel, so the crop goes in as RGBA:
:func:`hunyuan_input_image` makes the white background transparent with the amodal mask
(no background-removal model needed). :func:`hunyuan_mesh_to_canonical` converts its output.

Axes: Hunyuan3D-2 writes meshes in glTF's convention, +y up with the input view's side
facing +z (its texture stage renders the azimuth-0 view, the input image's, from +z).
That is already our canonical frame, so ``HUNYUAN_TO_CANONICAL`` is the identity; it is
kept as a named constant so a different release can change it in one place. Checked against
the released code, not against real weights (none here).

Weights: ``tencent/Hunyuan3D-2`` (subfolder ``hunyuan3d-dit-v2-0``), Tencent Hunyuan 3D 2.0
Community License: not licensed in the EU, the UK and South Korea; read it before use.
"""

from __future__ import annotations

import numpy as np

from ..errors import BackendError, MissingDependencyError, MissingWeightsError
from .base import CanonicalMesh, ObjectObservation, canonical_mesh

DEFAULT_MODEL = "tencent/Hunyuan3D-2"
DEFAULT_SUBFOLDER = "hunyuan3d-dit-v2-0"
HUNYUAN_TO_CANONICAL = np.eye(3)
INSTALL_HINT = (
    "hunyuan3d needs the hy3dgen package and torchvision: "
    "pip install 'scenemaker[hunyuan3d]' torchvision"
)


def hunyuan_input_image(image: np.ndarray, mask: np.ndarray):
    """(S, S, 3) uint8 crop + (S, S) amodal mask -> PIL RGBA image: the object opaque, the
    rest transparent (and white, as hy3dgen's own background removal leaves it)."""
    from PIL import Image

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (S, S, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}, image {image.shape[:2]}")
    if not mask.any():
        raise ValueError("amodal mask is empty: nothing to generate")
    rgb = np.where(mask[..., None], image, 255).astype(np.uint8)
    alpha = mask.astype(np.uint8)[..., None] * 255
    return Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")


def hunyuan_mesh_to_canonical(mesh, source: str = "hunyuan3d") -> CanonicalMesh:
    """hy3dgen's output (a ``trimesh.Trimesh``, a scene, or a list of them) -> CanonicalMesh."""
    import trimesh

    if isinstance(mesh, (list, tuple)):
        mesh = mesh[0] if mesh else None
    if isinstance(mesh, trimesh.Scene):
        parts = [g for g in mesh.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        mesh = trimesh.util.concatenate(parts) if parts else None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise BackendError("hunyuan3d produced no mesh (empty surface)")
    mesh = mesh.copy()
    transform = np.eye(4)
    transform[:3, :3] = HUNYUAN_TO_CANONICAL
    mesh.apply_transform(transform)
    return canonical_mesh(mesh, source)


class Hunyuan3DGenerator:
    """Hunyuan3D-2 DiT flow-matching shape generation (untextured).

    Args:
        model: hub id or local folder holding ``subfolder``.
        subfolder: the DiT checkpoint folder inside ``model``.
        device: "cpu", "cuda", "cuda:N", "mps" or "auto".
        dtype: "float32" / "bfloat16" / "float16" (default: float16 on CUDA, else float32).
        cpu_offload: hy3dgen's ``enable_model_cpu_offload`` (GPU only).
        steps, guidance, octree_resolution: hy3dgen's sampling settings.
        seed: seed of the initial noise.
    """

    name = "hunyuan3d"
    licence = "Tencent Hunyuan 3D 2.0 Community License (excludes EU, UK, South Korea)"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        subfolder: str = DEFAULT_SUBFOLDER,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        steps: int = 50,
        guidance: float = 5.0,
        octree_resolution: int = 256,
        seed: int = 0,
    ):
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if int(octree_resolution) < 16:
            raise ValueError(f"octree_resolution must be >= 16, got {octree_resolution}")
        self.model = str(model or DEFAULT_MODEL)
        self.subfolder = subfolder
        self.device = device
        self.dtype = dtype
        self.cpu_offload = bool(cpu_offload)
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.octree_resolution = int(octree_resolution)
        self.seed = int(seed)
        self._pipe = None
        self._device = None

    def load(self):
        """Import hy3dgen and load the pipeline (otherwise on first use)."""
        if self._pipe is not None:
            return self._pipe
        try:
            from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline
        except ImportError:
            raise MissingDependencyError(INSTALL_HINT) from None
        import torch

        from ..hub import missing_weights_message, parse_dtype, resolve_device

        device = resolve_device(self.device)
        dtype = parse_dtype(self.dtype) or (
            torch.float16 if device.startswith("cuda") else torch.float32
        )
        try:
            pipe = Hunyuan3DDiTFlowMatchingPipeline.from_pretrained(
                self.model, subfolder=self.subfolder, device=device, dtype=dtype
            )
        except (OSError, ValueError) as exc:  # hub / file errors: weights not here
            raise MissingWeightsError(missing_weights_message(self.model, str(exc))) from None
        if self.cpu_offload and device != "cpu":
            pipe.enable_model_cpu_offload(device=device)
        self._pipe, self._device = pipe, device
        return pipe

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        image = hunyuan_input_image(amodal.image, amodal.mask)
        pipe = self.load()
        import torch

        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        output = pipe(
            image=image,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            octree_resolution=self.octree_resolution,
            generator=generator,
            output_type="trimesh",
        )
        return hunyuan_mesh_to_canonical(output, self.name)
