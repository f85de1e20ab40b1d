"""Label PNGs of instance ids (0 = background): reading them as masks, and writing them.

Labels and scores travel in a PNG text chunk, so :func:`write_label_png` output reads back
with its labels.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...io_utils import atomic_write_bytes
from ..base import Masks
from .images import _fit_size, _open_decoded, _resize_nearest, _size_str

_MAX_LABELS = 1000  # more distinct ids than this: not an instance-label image
_LABEL_PNG_KEY = "scenemaker"  # PNG text chunk holding labels and scores
_LABEL_PNG_SCHEMA = "scenemaker.label_png/1"


def _label_array(path: Path, image) -> np.ndarray:
    mode = image.mode
    if mode in ("1", "L", "P", "I") or mode.startswith("I;16"):
        return np.asarray(image).astype(np.int64)
    if mode in ("LA", "La"):
        return np.asarray(image.getchannel(0)).astype(np.int64)
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image)[..., :3]
        if np.all(rgb == rgb[..., :1]):  # grey values stored as RGB
            return rgb[..., 0].astype(np.int64)
    raise InputError(
        f"{path}: label image has mode {mode}; expected an 8- or 16-bit single-channel PNG of"
        " instance ids (0 = background)"
    )


def _png_metadata(path: Path, image, notes: list[str]) -> dict[int, dict]:
    text = getattr(image, "text", {}) or {}
    if _LABEL_PNG_KEY not in text:
        return {}
    try:
        payload = json.loads(text[_LABEL_PNG_KEY])
        if payload.get("schema") != _LABEL_PNG_SCHEMA:
            raise ValueError(f"schema {payload.get('schema')!r}")
        return {int(obj["id"]): obj for obj in payload["objects"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        notes.append(f"{path}: label metadata ignored ({exc})")
        return {}


def _masks_from_label_png(path: Path, image_size, notes: list[str]) -> Masks:
    image = _open_decoded(path, "a label image")
    with image:
        labels = _label_array(path, image)
        metadata = _png_metadata(path, image, notes)
    if _fit_size(path, "label image", (labels.shape[1], labels.shape[0]), image_size):
        labels = _resize_nearest(labels.astype(np.int32), image_size).astype(np.int64)
        notes.append(f"{path}: resized to {_size_str(image_size)} (nearest)")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if len(ids) > _MAX_LABELS:
        raise InputError(
            f"{path}: {len(ids)} distinct values; expected an instance-label image"
            f" (0 = background, at most {_MAX_LABELS} objects)"
        )
    masks = labels[None] == ids[:, None, None]
    names = [str(metadata.get(int(i), {}).get("label", "object")) for i in ids]
    scores = [metadata.get(int(i), {}).get("score") for i in ids]
    return Masks(masks, names, scores)


def write_label_png(masks: Masks | np.ndarray, path: str | Path) -> list[str]:
    """Save masks as a label PNG that :func:`load_user_masks` reads back (labels, scores too).

    ``masks``: :class:`Masks`, or an (N, H, W) bool array (labels "object"). Object i gets id
    i + 1 (8-bit up to 255 objects, else 16-bit). A label image holds one id
    per pixel, so where masks overlap the later one wins; returns notes on what was lost.
    """
    from PIL import Image, PngImagePlugin

    if not isinstance(masks, Masks):
        masks = Masks(masks, ["object"] * len(masks))
    count, height, width = masks.masks.shape
    if count > 65535:
        raise InputError(f"{path}: {count} masks do not fit a 16-bit label PNG")
    dtype = np.uint8 if count <= 255 else np.uint16
    label = np.zeros((height, width), dtype=dtype)
    for index, mask in enumerate(masks.masks):
        label[mask] = index + 1
    notes = []
    overlap = int(np.count_nonzero(masks.masks.sum(axis=0) > 1)) if count else 0
    if overlap:
        notes.append(f"{path}: {overlap} pixels covered by several masks keep the last one")
    present = set(np.unique(label).tolist())
    for index in range(count):
        if masks.masks[index].any() and index + 1 not in present:
            notes.append(f"{path}: object {index} ({masks.labels[index]}) is hidden by later masks")
    objects = [
        {"id": index + 1, "label": masks.labels[index], "score": masks.scores[index]}
        for index in range(count)
    ]
    info = PngImagePlugin.PngInfo()
    info.add_text(_LABEL_PNG_KEY, json.dumps({"schema": _LABEL_PNG_SCHEMA, "objects": objects}))
    buffer = io.BytesIO()
    Image.fromarray(label).save(buffer, format="PNG", pnginfo=info, compress_level=6)
    atomic_write_bytes(path, buffer.getvalue())
    return notes
