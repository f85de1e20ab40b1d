"""Image metrics for de-occlusion: PSNR, SSIM, mask IoU and (optionally) CLIP similarity.

PSNR and SSIM compare uint8 RGB images on the 0-255 scale, optionally inside a mask only.
SSIM is Wang et al.'s (2004): Gaussian window of sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03,
computed per colour channel and averaged over channels; local statistics near the image
border use a reflected image (scipy's "reflect" mode), and the SSIM of an image (or a mask)
is the mean of the SSIM map over all its pixels (or the mask's). CLIP similarity is the
cosine of CLIP image embeddings, computed only when CLIP weights are available locally.
LPIPS needs the ``lpips`` package and its weights; it is not computed here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"  # MIT licence
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # Gaussian radius int(3.5 * 1.5 + 0.5) = 5 px: the 11 x 11 window
SSIM_K1, SSIM_K2 = 0.01, 0.03
# OpenAI CLIP's input normalisation (every openai/clip-* checkpoint uses it)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise ValueError(f"images must be (H, W) or (H, W, 3), got {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def _mask(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}, images {shape[:2]}")
    return mask


def psnr(a, b, mask=None, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (or the ``mask``'s);
    inf for identical images, nan for an empty mask."""
    a, b = _pair(a, b)
    mask = _mask(mask, a.shape)
    squared = (a - b) ** 2
    if mask is not None:
        if not mask.any():
            return float("nan")
        squared = squared[mask]
    mse = float(squared.mean())
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim_map(a, b, data_range: float = 255.0) -> np.ndarray:
    """(H, W) SSIM map, averaged over channels (see the module docstring)."""
    from scipy.ndimage import gaussian_filter

    a, b = _pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    maps = []
    for channel in range(a.shape[2]):
        x, y = a[..., channel], b[..., channel]

        def blur(image):
            return gaussian_filter(image, SSIM_SIGMA, mode="reflect", truncate=SSIM_TRUNCATE)

        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x**2
        var_y = blur(y * y) - mu_y**2
        cov = blur(x * y) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        maps.append(numerator / denominator)
    return np.mean(maps, axis=0)


def ssim(a, b, mask=None, data_range: float = 255.0) -> float:
    """Mean SSIM over the image (or over the ``mask``'s pixels; nan for an empty mask)."""
    values = ssim_map(a, b, data_range)
    mask = _mask(mask, values.shape)
    if mask is None:
        return float(values.mean())
    return float(values[mask].mean()) if mask.any() else float("nan")


def mask_iou(a, b) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape, got {a.shape} and {b.shape}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def lpips_note() -> str | None:
    """None when LPIPS could be computed; else why not (shown in evaluation results)."""
    if importlib.util.find_spec("lpips") is None:
        return "not available: the lpips package is not installed (pip install lpips)"
    return "not computed: lpips is installed, but not wired into this evaluation yet"


class ClipSimilarity:
    """Cosine similarity of CLIP image embeddings (transformers' CLIP vision tower).

    model: hub id (loaded from the local cache only: never downloaded here) or a local
        folder of a CLIP checkpoint (``CLIPModel`` or ``CLIPVisionModelWithProjection``).
    Images are resized (bicubic) to the model's input side and normalised with OpenAI CLIP's
    mean and std; square crops are not centre-cropped, so nothing is cut away.
    """

    name = "clip"

    def __init__(self, model: str | Path = DEFAULT_CLIP_MODEL, device: str = "cpu"):
        self.model = str(model)
        self.device = str(device)
        self._vision = None

    def load(self):
        """Load the weights now; MissingWeightsError when they are not available locally."""
        if self._vision is not None:
            return self._vision
        from transformers import CLIPVisionModelWithProjection

        from ..errors import MissingWeightsError

        local = Path(self.model).expanduser()
        source = str(local) if local.is_dir() else self.model
        try:
            vision = CLIPVisionModelWithProjection.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as error:
            raise MissingWeightsError(
                f"CLIP model {self.model!r} is not available locally: run `huggingface-cli "
                f"download {self.model}` on a machine with network, or pass a local folder"
            ) from error
        self._vision = vision.eval().to(self.device)
        return self._vision

    def embed(self, images) -> np.ndarray:
        """(N, D) unit-length embeddings of (N, H, W, 3) uint8 images (or a list of them)."""
        import torch
        from PIL import Image

        vision = self.load()
        side = vision.config.image_size
        batch = []
        for image in images:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            resized = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
            batch.append(np.asarray(resized, dtype=np.float32) / 255.0)
        pixels = (np.stack(batch) - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(
            CLIP_STD, np.float32
        )
        tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(self.device, vision.dtype)
        with torch.inference_mode():
            embeds = vision(pixel_values=tensor).image_embeds.float()
        embeds = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return embeds.cpu().numpy()

    def similarity(self, a, b) -> float:
        """Cosine similarity in [-1, 1] of two (H, W, 3) uint8 images."""
        first, second = self.embed([a, b])
        return float(np.dot(first, second))
