"""Optional image conditions of PoseDiT: frozen DINOv2-with-registers tokens of each object's
crop, of the whole scene image and of the scene image masked to each object (PAPER.md).

Weights load through transformers from the Hugging Face hub or a local folder
(``facebook/dinov2-with-registers-large`` in the paper preset); tests build a tiny random
model in code. Crops follow the project convention: a square around the visible mask's box,
the box filling 70% of the side, pixels outside the mask white.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DEFAULT_MODEL = "facebook/dinov2-with-registers-large"


def square_crop(rgb: np.ndarray, mask: np.ndarray, box_fraction: float = 0.7) -> np.ndarray:
    """Square crop around the mask's box (box = ``box_fraction`` of the side), outside white."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("cannot crop around an empty mask")
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = int(np.ceil(max(y1 - y0, x1 - x0) / box_fraction))
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top, left = cy - side // 2, cx - side // 2
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    white = np.where(mask[..., None], rgb, 255).astype(np.uint8)
    sy0, sx0 = max(top, 0), max(left, 0)
    sy1, sx1 = min(top + side, rgb.shape[0]), min(left + side, rgb.shape[1])
    canvas[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = white[sy0:sy1, sx0:sx1]
    return canvas


class ImageEncoder:
    """Frozen DINOv2 (with registers): images -> (B, 1 + registers + patches, C) tokens."""

    def __init__(
        self,
        model=None,
        model_name_or_path: str = DEFAULT_MODEL,
        image_size: int = 224,
        device: str = "cpu",
    ):
        if model is None:
            try:
                from transformers import Dinov2WithRegistersModel
            except ImportError:
                raise ImportError(
                    "image conditions need transformers (pip install transformers)"
                ) from None
            model = Dinov2WithRegistersModel.from_pretrained(model_name_or_path)
        self.model = model.to(device).eval().requires_grad_(False)
        self.image_size, self.device = image_size, device

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, images: list[np.ndarray]):
        """uint8 (H, W, 3) images of any size -> float tensor (B, L, C)."""
        import torch
        from PIL import Image

        size = self.image_size
        arrays = [
            np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC), np.float32) / 255.0
            for im in images
        ]
        pixels = (np.stack(arrays) - IMAGENET_MEAN) / IMAGENET_STD
        pixels = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            return self.model(pixel_values=pixels).last_hidden_state.float().cpu()

    def scene_tokens(self, rgb: np.ndarray, masks: list[np.ndarray]) -> dict:
        """``crop_tokens`` (N, L, C), ``scene_tokens`` (L, C), ``masked_tokens`` (N, L, C)."""
        crops = [square_crop(rgb, m) for m in masks]
        masked = [np.where(m[..., None], rgb, 255).astype(np.uint8) for m in masks]
        tokens = self.encode([*crops, rgb, *masked])
        n = len(masks)
        return {
            "crop_tokens": tokens[:n],
            "scene_tokens": tokens[n],
            "masked_tokens": tokens[n + 1 :],
        }
