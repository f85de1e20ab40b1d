"""Shap-E image-to-3D through diffusers' ``ShapEImg2ImgPipeline`` (``shap-e``).

The amodal crop (object on white) conditions the prior; the latent is decoded to a mesh by
the pipeline's own renderer (``ShapERenderer.decode_to_mesh``: SDF on a ``grid_size``^3 grid,
marching cubes, per-vertex colours), called directly so that the grid size is a setting and an
empty surface is a clear error rather than a ``torch.cat`` failure inside diffusers.

Axes: Shap-E meshes are z-up with the object's front towards +y. diffusers' Shap-E guide says
the exported mesh is "focused from the bottom viewpoint" and rotates it -90 degrees about x
to view it; Hugging Face's Shap-E demo exports GLBs with that rotation and a further 180
degrees about y so the object faces a glTF viewer's camera (+z). ``SHAP_E_TO_CANONICAL`` is
that product, (x, y, z) -> (-x, z, y): +y up, front +z, as our canonical frame wants.

Weights: ``openai/shap-e-img2img`` (MIT licence), about 3 GB.
"""

from __future__ import annotations

import numpy as np

from ..errors import BackendError
from .base import CanonicalMesh, ObjectObservation, canonical_mesh

DEFAULT_MODEL = "openai/shap-e-img2img"
SHAP_E_TO_CANONICAL = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
"""Shap-E axes (z up, front +y) -> canonical axes (y up, front +z); a proper rotation."""


def shap_e_mesh_to_trimesh(decoded):
    """diffusers ``MeshDecoderOutput`` (verts, faces, vertex_channels R/G/B in [0, 1]) ->
    ``trimesh.Trimesh`` in our axes, vertex colours kept. BackendError when empty."""
    import trimesh

    verts = decoded.verts.detach().float().cpu().numpy().reshape(-1, 3)
    faces = decoded.faces.detach().cpu().numpy().astype(np.int64).reshape(-1, 3)
    if len(verts) == 0 or len(faces) == 0:
        raise BackendError("shap-e produced an empty mesh (no surface in its SDF)")
    channels = getattr(decoded, "vertex_channels", None) or {}
    colours = None
    if all(c in channels for c in "RGB"):
        rgb = np.stack([channels[c].detach().float().cpu().numpy() for c in "RGB"], axis=1)
        colours = (np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8)
    return trimesh.Trimesh(
        vertices=verts @ SHAP_E_TO_CANONICAL.T, faces=faces, vertex_colors=colours, process=False
    )


class ShapEGenerator:
    """Shap-E (img2img) through diffusers.

    Args:
        model: hub id or local folder of a diffusers ``ShapEImg2ImgPipeline``.
        device: "cpu", "cuda", "cuda:N", "mps" or "auto".
        dtype: "float32" / "bfloat16" / "float16" (default float32).
        cpu_offload: keep weights in CPU memory between calls (``enable_model_cpu_offload``).
        steps: prior denoising steps (the model card uses 64).
        guidance: classifier-free guidance scale (the model card uses 3.0).
        seed: seed of the prior's noise.
        grid_size: resolution of the SDF grid the mesh is extracted from (diffusers: 128).
    """

    name = "shap-e"
    licence = "MIT (openai/shap-e code and weights)"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        steps: int = 64,
        guidance: float = 3.0,
        seed: int = 0,
        grid_size: int = 128,
    ):
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if int(grid_size) < 8:
            raise ValueError(f"grid_size must be >= 8, got {grid_size}")
        self.model = str(model or DEFAULT_MODEL)
        self.device = device
        self.dtype = dtype
        self.cpu_offload = bool(cpu_offload)
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.seed = int(seed)
        self.grid_size = int(grid_size)
        self._pipe = None
        self._device = None

    def load(self):
        """Load the pipeline now (otherwise on first use). Raises MissingWeightsError."""
        if self._pipe is not None:
            return self._pipe
        from diffusers import ShapEImg2ImgPipeline

        from ..hub import load_pretrained, parse_dtype, resolve_device

        device = resolve_device(self.device)
        dtype = parse_dtype(self.dtype)
        kwargs = {"torch_dtype": dtype} if dtype is not None else {}
        pipe = load_pretrained(ShapEImg2ImgPipeline, self.model, **kwargs)
        if self.cpu_offload and device != "cpu":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._device = pipe, device
        return pipe

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        import torch
        from PIL import Image

        image = np.asarray(amodal.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"amodal.image must be (S, S, 3) uint8, got {image.shape} {image.dtype}"
            )
        pipe = self.load()
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        latents = pipe(
            Image.fromarray(image),
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=generator,
            output_type="latent",
        ).images
        renderer = pipe.shap_e_renderer
        with torch.no_grad():
            try:
                decoded = renderer.decode_to_mesh(
                    latents[:1].to(renderer.dtype), self._device, grid_size=self.grid_size
                )
            except ValueError as exc:  # diffusers' torch.cat over zero vertices
                if "non-empty" not in str(exc):
                    raise
                raise BackendError(
                    "shap-e produced an empty mesh (no surface in its SDF)"
                ) from None
        return canonical_mesh(shap_e_mesh_to_trimesh(decoded), self.name)
