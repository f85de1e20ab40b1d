"""Metric depth estimators: Depth Anything V2 (metric), MoGe-2 and Depth Pro.

Each returns a ``PointMap``: depth (H, W) in metres at the input image's size (0 = invalid)
and intrinsics K in pixels, OpenCV convention with pixel centres at integer coordinates
(principal point of a centred camera at ((W - 1) / 2, (H - 1) / 2)). A K given by the caller
is returned unchanged and, where the model can use it, conditions the estimate.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, MissingWeightsError
from ..hub import (
    as_intrinsics,
    as_rgb,
    cpu_offload,
    load_pretrained,
    missing_weights_message,
    parse_dtype,
    place,
    resolve_device,
    to_device,
)
from .base import PointMap

DEFAULT_DEPTH_ANYTHING = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"  # Apache-2.0
DEFAULT_MOGE = "Ruicheng/moge-2-vitl-normal"  # MIT
DEFAULT_DEPTH_PRO = "apple/DepthPro-hf"  # Apple AMLR licence (research use)


def intrinsics_from_fov(width: int, height: int, fov_x_deg: float) -> np.ndarray:
    """K (pixels) of a centred pinhole camera with square pixels and horizontal fov."""
    if not 0.0 < fov_x_deg < 180.0:
        raise ValueError(f"fov_x_deg must be in (0, 180) degrees, got {fov_x_deg}")
    f = width / (2.0 * np.tan(np.radians(fov_x_deg) / 2.0))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def fov_x_from_intrinsics(K: np.ndarray, width: int) -> float:
    """Horizontal field of view (degrees) of intrinsics K for an image ``width`` pixels wide."""
    return float(np.degrees(2.0 * np.arctan(width / (2.0 * K[0, 0]))))


def _resize(values, height: int, width: int) -> np.ndarray:
    """(h, w) tensor -> (H, W) float32 numpy, bilinear (no bicubic overshoot below zero)."""
    import torch.nn.functional as F

    values = values.float().reshape(1, 1, *values.shape[-2:])
    if values.shape[-2:] != (height, width):
        values = F.interpolate(values, size=(height, width), mode="bilinear", align_corners=False)
    return values[0, 0].cpu().numpy().astype(np.float32)


class DepthAnythingDepth:
    """Depth Anything V2, metric checkpoint (transformers ``AutoModelForDepthEstimation``).

    The model predicts metric depth only, not the camera: K is the caller's when given, else
    an ASSUMED pinhole camera with a horizontal field of view of ``fov_x_deg`` degrees
    (default 60, a typical phone / webcam main camera) and the principal point at the image
    centre. The depth itself does not depend on that assumption, so points back-projected
    with the assumed K are only as right as the guess. Default checkpoint: indoor (Hypersim,
    up to 20 m), Apache-2.0; the Base / Large metric checkpoints are CC-BY-NC-4.0.
    """

    name = "depth-anything"

    def __init__(
        self,
        model: str = DEFAULT_DEPTH_ANYTHING,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        fov_x_deg: float = 60.0,
    ):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        intrinsics_from_fov(2, 2, fov_x_deg)  # validates the angle
        self.fov_x_deg = float(fov_x_deg)
        self.device, self.cpu_offload = resolve_device(device), bool(cpu_offload)
        self.model_id = str(model)
        self.processor = load_pretrained(AutoImageProcessor, model)
        net = load_pretrained(AutoModelForDepthEstimation, model)
        kind = getattr(net.config, "depth_estimation_type", None)
        if kind != "metric":
            raise ValueError(
                f"model '{model}' predicts {kind or 'relative'} depth; the depth-anything backend "
                f"needs a metric checkpoint such as '{DEFAULT_DEPTH_ANYTHING}'"
            )
        self.model = place(net, self.device, parse_dtype(dtype), self.cpu_offload)

    def estimate(self, image: np.ndarray, K: np.ndarray | None = None) -> PointMap:
        import torch

        image = as_rgb(image)
        height, width = image.shape[:2]
        K = (
            as_intrinsics(K)
            if K is not None
            else intrinsics_from_fov(width, height, self.fov_x_deg)
        )
        inputs = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode(), cpu_offload(self.model, self.device, self.cpu_offload):
            out = self.model(**to_device(inputs, self.device, self.model.dtype))
        depth = _resize(out.predicted_depth[0], height, width)
        return PointMap(np.maximum(depth, 0.0), K)


def moge_intrinsics_to_pixels(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """MoGe's normalised K (image spans [0, 1], pixel centres at (i + 0.5) / W) -> pixels.

    First row times W, second times H, then the principal point shifted by half a pixel to
    the convention of this project (pixel centres at integer coordinates).
    """
    K = np.array(intrinsics, dtype=np.float64).reshape(3, 3)
    K[0] *= width
    K[1] *= height
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    return K


class MoGeDepth:
    """MoGe-2 (``dlr-moge``): metric point map, depth and intrinsics from one image.

    Without K the camera is MoGe's own estimate (focal from the predicted point map,
    principal point at the image centre). With K, MoGe is told the horizontal fov
    2 atan(W / 2 fx) and the caller's K is returned. Pixels MoGe masks out (sky, invalid)
    get depth 0. ``num_tokens``: ViT tokens per image (None: the model's maximum; 1200-2500
    suggested; fewer is faster and coarser). On CUDA with ``dtype=None`` the forward pass runs
    under fp16 autocast as MoGe recommends. Only MoGe-2 checkpoints (``moge.model.v2``) load.
    Licence: MIT (code and weights; DINOv2 backbone Apache-2.0).
    """

    name = "moge"

    def __init__(
        self,
        model: str = DEFAULT_MOGE,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        num_tokens: int | None = None,
    ):
        try:
            from moge.model.v2 import MoGeModel
        except ImportError as err:
            raise MissingDependencyError(
                "the moge backend needs dlr-moge and dlr-utils3d: "
                "pip install --no-deps dlr-moge && pip install 'scenemaker[moge]'"
            ) from err
        if num_tokens is not None and num_tokens < 1:
            raise ValueError(f"num_tokens must be a positive integer or None, got {num_tokens}")
        self.num_tokens = num_tokens
        self.device, self.cpu_offload = resolve_device(device), bool(cpu_offload)
        torch_dtype = parse_dtype(dtype)
        self.use_fp16 = self.device.startswith("cuda") and torch_dtype is None
        self.model_id = str(model)
        source = Path(model).expanduser()
        if source.is_dir():  # MoGe's from_pretrained wants the checkpoint file itself
            if not (source / "model.pt").is_file():
                raise MissingWeightsError(missing_weights_message(str(model), "no model.pt"))
            model = str(source / "model.pt")
        net = load_pretrained(MoGeModel, model)
        self.model = place(net, self.device, torch_dtype, self.cpu_offload)

    def estimate(self, image: np.ndarray, K: np.ndarray | None = None) -> PointMap:
        import torch

        image = as_rgb(image)
        height, width = image.shape[:2]
        fov_x = None
        if K is not None:
            K = as_intrinsics(K)
            fov_x = fov_x_from_intrinsics(K, width)
        pixels = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)  # (3, H, W) in [0, 1]
        with cpu_offload(self.model, self.device, self.cpu_offload), warnings.catch_warnings():
            # MoGe post-processes under float32 autocast, which torch's CPU autocast rejects
            warnings.filterwarnings("ignore", message=".*autocast", category=UserWarning)
            out = self.model.infer(
                pixels.to(self.device),
                num_tokens=self.num_tokens,
                fov_x=fov_x,
                use_fp16=self.use_fp16,
            )
        depth = out["depth"].float().cpu().numpy()
        if "mask" in out:
            depth = np.where(out["mask"].cpu().numpy(), depth, 0.0)
        if K is None:
            K = moge_intrinsics_to_pixels(out["intrinsics"].float().cpu().numpy(), width, height)
        return PointMap(depth, K)


def depth_pro_postprocess(
    canonical_inverse_depth, fov_x_deg, height: int, width: int, K: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Depth Pro's raw output -> metric depth (H, W) and K (pixels).

    The network predicts an inverse depth normalised by the focal length relative to the
    width; metric depth = f_px / (W * canonical_inverse_depth). f_px comes from ``K`` when
    given, else from the predicted horizontal fov: f_px = W / (2 tan(fov_x / 2)). The inverse
    depth is resized to the image (bilinear) before inverting, as the reference does.
    """
    import torch

    if K is not None:
        K = as_intrinsics(K)
        focal = float(K[0, 0])
    else:
        fov = float(torch.as_tensor(fov_x_deg).float().reshape(-1)[0])
        K = intrinsics_from_fov(width, height, fov)
        focal = float(K[0, 0])
    inverse = torch.as_tensor(canonical_inverse_depth).float() * (width / focal)
    inverse = _resize(inverse, height, width)
    depth = 1.0 / np.clip(inverse, 1e-4, 1e4)
    return depth.astype(np.float32), K


class DepthProDepth:
    """Apple Depth Pro (transformers ``DepthProForDepthEstimation``): metric depth + fov.

    K is the caller's when given (its fx scales the depth), else derived from the predicted
    horizontal fov with the principal point at the image centre; checkpoints without the
    fov head fall back to an assumed ``fov_x_deg``. Depth Pro's image processor needs
    torchvision. Licence: Apple AMLR (research use).
    """

    name = "depth-pro"

    def __init__(
        self,
        model: str = DEFAULT_DEPTH_PRO,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        fov_x_deg: float = 60.0,
    ):
        from transformers.utils import is_torchvision_available

        missing = MissingDependencyError(
            "depth-pro needs torchvision: pip install torchvision matching your torch"
        )
        if not is_torchvision_available():
            raise missing
        from transformers import DepthProForDepthEstimation

        try:
            from transformers import DepthProImageProcessor as processor_cls
        except ImportError:
            try:
                from transformers import DepthProImageProcessorFast as processor_cls
            except ImportError as err:
                raise missing from err
        intrinsics_from_fov(2, 2, fov_x_deg)
        self.fov_x_deg = float(fov_x_deg)
        self.device, self.cpu_offload = resolve_device(device), bool(cpu_offload)
        self.model_id = str(model)
        try:
            self.processor = load_pretrained(processor_cls, model)
        except ImportError as err:
            raise missing from err
        net = load_pretrained(DepthProForDepthEstimation, model)
        self.model = place(net, self.device, parse_dtype(dtype), self.cpu_offload)

    def estimate(self, image: np.ndarray, K: np.ndarray | None = None) -> PointMap:
        import torch

        image = as_rgb(image)
        height, width = image.shape[:2]
        inputs = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode(), cpu_offload(self.model, self.device, self.cpu_offload):
            out = self.model(**to_device(inputs, self.device, self.model.dtype))
        fov = out.field_of_view[0] if out.field_of_view is not None else self.fov_x_deg
        depth, K = depth_pro_postprocess(out.predicted_depth[0], fov, height, width, K)
        return PointMap(depth, K)
