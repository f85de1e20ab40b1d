"""COCO JSON masks (RLE, compressed or not, and polygons), every value checked before decoding."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from ...errors import InputError, MissingDependencyError
from ..base import Masks
from .images import _fit_size, _resize_nearest

_MAX_MASK_PIXELS = 2 * 89_478_485  # PIL refuses to decode larger images (decompression bomb)
_POLYGON_REACH = 4  # polygon coordinates may reach this many image sides from the origin


def _coco_id(value):
    """An annotation / image / category id usable as a key (int or str), else None."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _coco_list(path: Path, payload: dict, key: str) -> list:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{path}: '{key}' must be a list of objects")
    return [item for item in value if isinstance(item, dict)]


def _coco_annotations(path: Path, payload) -> tuple[list, dict, dict]:
    if isinstance(payload, list):
        return payload, {}, {}
    if isinstance(payload, dict) and "annotations" in payload:
        categories = {
            _coco_id(c["id"]): str(c["name"])
            for c in _coco_list(path, payload, "categories")
            if _coco_id(c.get("id")) is not None and "name" in c
        }
        images = {
            _coco_id(im["id"]): im
            for im in _coco_list(path, payload, "images")
            if _coco_id(im.get("id")) is not None
        }
        return payload["annotations"], categories, images
    if isinstance(payload, dict) and "segmentation" in payload:
        return [payload], {}, {}
    raise InputError(f"{path}: expected COCO annotations (a list, or an object with 'annotations')")


def _unusable(where: str, detail: str) -> InputError:
    return InputError(f"{where}: unusable segmentation ({detail})")


def _whole(value) -> int | None:
    """``value`` as an int if it is a whole JSON number (4 or 4.0; not true/false), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def _finite_float(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return value if math.isfinite(value) else None


def _coco_size(path: Path, index: int, height, width, image_size) -> tuple[int, int]:
    """(h, w) of an annotation's mask, checked against the image before anything is decoded."""
    where = f"{path}: annotation {index}"
    h, w = _whole(height), _whole(width)
    if h is None or w is None or h < 1 or w < 1:
        raise _unusable(where, f"size {height!r}x{width!r} (height x width) is not 2 integers > 0")
    if h * w > _MAX_MASK_PIXELS:
        raise _unusable(where, f"size {h}x{w} (height x width) exceeds {_MAX_MASK_PIXELS} pixels")
    _fit_size(path, f"annotation {index}", (w, h), image_size)  # raises if the sizes disagree
    return h, w


def _rle_counts_from_string(where: str, text: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string, decoded here so no library sees bad input.

    Each count is stored in 5-bit groups (least significant first) as characters '0' + value,
    bit 0x20 meaning "another group follows" and bit 0x10 of the last group the sign; from the
    fourth count on, the stored value is the difference to the count two places before.
    """
    counts: list[int] = []
    position, length = 0, len(text)
    while position < length:
        value, shift, more = 0, 0, True
        while more:
            if position >= length:
                raise _unusable(where, "compressed RLE 'counts' ends inside a number")
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                raise _unusable(
                    where,
                    f"compressed RLE 'counts' holds {text[position]!r}; expected '0' to 'o'",
                )
            if shift > 60:
                raise _unusable(where, "compressed RLE 'counts' holds a number too large")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift  # negative: sign-extend the last group
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle_counts(where: str, counts, h: int, w: int) -> list[int]:
    """The run lengths of an RLE (a list, or a compressed string), summing to h * w."""
    if isinstance(counts, str):
        values = _rle_counts_from_string(where, counts)
    elif isinstance(counts, list):
        values = [_whole(v) for v in counts]
        if any(v is None for v in values):
            raise _unusable(where, "RLE 'counts' must hold whole numbers")
    else:
        raise _unusable(
            where,
            "RLE 'counts' must be a list of run lengths or a compressed string, got"
            f" {type(counts).__name__}",
        )
    if any(v < 0 for v in values):
        raise _unusable(where, "RLE 'counts' holds a negative run length")
    if sum(values) != h * w:
        raise _unusable(
            where,
            f"RLE run lengths sum to {sum(values)}; expected {h * w} = height {h} x width {w}",
        )
    return values


def _decode_rle(values: list[int], h: int, w: int) -> np.ndarray:
    """(h, w) bool mask of checked run lengths (column-major, starting with background)."""
    flat = np.repeat(np.arange(len(values)) % 2 == 1, np.asarray(values, dtype=np.int64))
    return np.ascontiguousarray(flat.reshape(w, h).T)


def _polygons(where: str, seg: list, h: int, w: int) -> list[list[float]]:
    """Polygons [x0, y0, x1, y1, ...] of finite numbers near the image (|x| <= 4 w, |y| <= 4 h)."""
    polygons = []
    limit_x, limit_y = _POLYGON_REACH * w, _POLYGON_REACH * h
    for number, poly in enumerate(seg):
        if not isinstance(poly, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
        ):
            raise _unusable(where, f"polygon {number} must be a list of numbers x0, y0, x1, ...")
        if len(poly) < 6 or len(poly) % 2:
            raise _unusable(
                where, f"polygon {number} has {len(poly)} numbers; expected 3 or more x, y pairs"
            )
        try:
            coords = np.asarray(poly, dtype=np.float64)
        except OverflowError:  # an integer beyond the float range
            coords = np.array([np.inf])
        if not np.isfinite(coords).all():
            raise _unusable(where, f"polygon {number} holds NaN or infinite coordinates")
        if np.abs(coords[0::2]).max() > limit_x or np.abs(coords[1::2]).max() > limit_y:
            raise _unusable(
                where,
                f"polygon {number} has coordinates beyond |x| <= {limit_x}, |y| <= {limit_y}:"
                f" {_POLYGON_REACH} times the {w}x{h} image",
            )
        polygons.append(coords.tolist())
    return polygons


def _coco_mask(path: Path, index: int, ann: dict, images: dict, image_size) -> np.ndarray:
    """The (h, w) mask of one annotation; every value is checked before pycocotools sees it."""
    where = f"{path}: annotation {index}"
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        size = seg.get("size")
        if not isinstance(size, list) or len(size) != 2:
            raise _unusable(where, "RLE 'size' must be [height, width]")
        h, w = _coco_size(path, index, size[0], size[1], image_size)
        if "counts" not in seg:
            raise _unusable(where, "RLE without 'counts'")
        return _decode_rle(_rle_counts(where, seg["counts"], h, w), h, w)
    if not (isinstance(seg, list) and seg):
        raise _unusable(where, "'segmentation' must be an RLE object or a list of polygons")
    image_info = images.get(_coco_id(ann.get("image_id")), {})
    h, w = _coco_size(
        path,
        index,
        image_info.get("height", image_size[1]),
        image_info.get("width", image_size[0]),
        image_size,
    )
    polygons = _polygons(where, seg, h, w)
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading COCO polygons needs pycocotools (pip install pycocotools)"
        ) from None
    with warnings.catch_warnings():  # pycocotools' numpy 2 copy= notice
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
        return mask_utils.decode(rle).astype(bool)


def _masks_from_coco(path: Path, image_size, notes: list[str]) -> Masks:
    try:
        payload = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge integers, deep nesting
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    annotations, categories, images = _coco_annotations(path, payload)
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise InputError(f"{path}: 'annotations' must be a list of objects")
    for index, ann in enumerate(annotations):
        if "image_id" in ann and _coco_id(ann["image_id"]) is None:
            raise InputError(f"{path}: annotation {index}: 'image_id' must be an integer or text")
    image_ids = {a["image_id"] for a in annotations if "image_id" in a}
    if len(image_ids) > 1:
        raise InputError(
            f"{path}: annotations of {len(image_ids)} images; expected those of one image only"
        )
    w, h = image_size
    masks, labels, scores = [], [], []
    for index, ann in enumerate(annotations):
        mask = _coco_mask(path, index, ann, images, image_size)
        if (mask.shape[1], mask.shape[0]) != (w, h):  # the image's original size (checked)
            mask = _resize_nearest(mask, image_size)
        label = ann.get("label")
        if not isinstance(label, str):
            label = categories.get(_coco_id(ann.get("category_id")), "object")
        if not mask.any():
            notes.append(f"{path}: annotation {index} ({label}): empty mask, dropped")
            continue
        masks.append(mask)
        labels.append(label)
        scores.append(_finite_float(ann.get("score")))
    if not masks:
        return Masks.empty(h, w)
    return Masks(np.stack(masks), labels, scores)
