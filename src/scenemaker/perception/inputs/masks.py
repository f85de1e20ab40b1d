"""User instance masks: a label PNG, a folder of per-object PNGs or COCO JSON."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ...errors import InputError
from ..base import Masks
from .coco import _masks_from_coco
from .images import _check_file, _fit_size, _open_decoded, _resize_nearest
from .label_png import _masks_from_label_png


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _label_from_stem(stem: str) -> str:
    label = re.sub(r"^\d+[_-]", "", stem).replace("_", " ").strip()
    return "object" if not label or label.isdigit() else label


def _mask_from_image(path: Path, image) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        if rgba[..., 3].min() < 255:  # a cut-out: the alpha channel is the mask
            return rgba[..., 3] > 0
        return np.any(rgba[..., :3] > 0, axis=-1)
    values = np.asarray(image)
    return np.any(values > 0, axis=-1) if values.ndim == 3 else values > 0


def _masks_from_folder(folder: Path, image_size, notes: list[str]) -> Masks:
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise InputError(f"{folder}: no .png mask files in this folder")
    masks, labels = [], []
    for file in files:
        image = _open_decoded(file, "a mask image")
        with image:
            mask = _mask_from_image(file, image)
        if _fit_size(file, "mask", (mask.shape[1], mask.shape[0]), image_size):
            mask = _resize_nearest(mask, image_size)
        if not mask.any():
            notes.append(f"{file}: empty mask, dropped")
            continue
        masks.append(mask)
        labels.append(_label_from_stem(file.stem))
    if not masks:
        return Masks.empty(image_size[1], image_size[0])
    return Masks(np.stack(masks), labels)


def read_user_masks(path: str | Path, image_size: tuple[int, int]) -> tuple[Masks, list[str]]:
    """As :func:`load_user_masks`, returning the notes instead of warning them."""
    path = Path(path)
    image_size = (int(image_size[0]), int(image_size[1]))
    notes: list[str] = []
    if not path.exists():
        raise InputError(f"{path}: masks not found (expected a label PNG, a folder or COCO JSON)")
    if path.is_dir():
        masks = _masks_from_folder(path, image_size, notes)
    elif path.suffix.lower() == ".json":
        _check_file(path, "a COCO JSON")
        masks = _masks_from_coco(path, image_size, notes)
    else:
        masks = _masks_from_label_png(path, image_size, notes)
    if not len(masks):
        notes.append(f"{path}: no object masks found")
    return masks, notes


def load_user_masks(path: str | Path, image_size: tuple[int, int]) -> Masks:
    """Instance masks for an image of ``image_size`` (w, h) from a user file or folder.

    - a label PNG (8- or 16-bit): 0 = background, each other value one object, in
      increasing value order; labels from :func:`write_label_png` metadata, else "object";
    - a folder of per-object PNGs, natural name order, non-zero (or alpha > 0 for cut-outs)
      = mask; label from the stem without an "NN_" prefix ("00_dining_table" -> "dining
      table"), "object" when nothing is left;
    - COCO JSON (a list of annotations or {"annotations", "categories"}): RLE (compressed or
      not) or polygons; label from a "label" key or the category name; "score" kept.

    Masks may overlap. Empty masks are dropped with a warning; other notes (resizing from the
    image's original size) are warned too (use :func:`read_user_masks` to collect them).
    """
    masks, notes = read_user_masks(path, image_size)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return masks
