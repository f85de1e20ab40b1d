"""De-occlusion benchmark: every method completes the same occluded crops; the results are
compared with the complete objects (PSNR, SSIM, CLIP similarity, as in the paper) and their
silhouettes with the ground-truth amodal masks (IoU), with seconds per item.

Image metrics are given for three regions of the S x S crop (named in the results):
``crop``: every pixel, the white background included (the paper's setting: a method that
paints outside the object is penalised); ``amodal``: inside the ground-truth amodal mask
only; ``hidden``: inside the amodal mask but outside the visible mask, the pixels a method
had to invent (items with nothing hidden have no value there). Results are broken down by
mask type (scene / cutout / border / brush) and by occluded fraction.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import numpy as np

from .base import ObjectCrop
from .image_metrics import (
    DEFAULT_CLIP_MODEL,
    ClipSimilarity,
    lpips_note,
    mask_iou,
    psnr,
    ssim_map,
)

SCHEMA = "scenemaker.deocclusion-eval/1"
REGIONS = {
    "crop": "the whole crop, white background included",
    "amodal": "inside the ground-truth amodal mask only",
    "hidden": "inside the ground-truth amodal mask but outside the visible mask",
}
OCCLUSION_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8)
OCCLUSION_BINS = ("[0.0, 0.2)", "[0.2, 0.4)", "[0.4, 0.6)", "[0.6, 0.8]", "(0.8, 1.0]")
PSNR_CAP = 100.0  # dB: identical images (inf) count as this in means
METRICS = (
    "psnr",
    "ssim",
    "psnr_amodal",
    "ssim_amodal",
    "psnr_hidden",
    "ssim_hidden",
    "clip",
    "mask_iou",
    "seconds",
)
_PROMPT_LABEL = re.compile(r"^complete the (.+?) in the image\.")


def occlusion_bin(occlusion: float) -> str:
    """The OCCLUSION_BINS label of an occluded fraction in [0, 1]."""
    occlusion = float(occlusion)
    if not 0.0 <= occlusion <= 1.0:
        raise ValueError(f"occlusion must be in [0, 1], got {occlusion}")
    index = int(np.searchsorted(OCCLUSION_EDGES, occlusion, side="right")) - 1
    if occlusion == OCCLUSION_EDGES[-1]:
        index -= 1  # the last regular bin is closed: [0.6, 0.8]
    return OCCLUSION_BINS[index]


def item_label(item: dict) -> str:
    """The object's label: ``item["label"]``, else read back from the standard prompt."""
    label = item.get("label")
    if label:
        return str(label)
    found = _PROMPT_LABEL.match(str(item.get("prompt", "")))
    return found.group(1) if found else "object"


def item_crop(item: dict) -> ObjectCrop:
    """The occluded input of a triplet as the crop a de-occluder completes (it is already an
    S x S crop: the box is the crop itself)."""
    image = np.asarray(item["input"])
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"triplet input must be (S, S, 3) uint8, got {image.shape} {image.dtype}")
    side = image.shape[0]
    visible = np.asarray(item["visible_mask"], dtype=bool)
    if visible.shape != (side, side):
        raise ValueError(f"triplet visible_mask has shape {visible.shape}, input ({side}, {side})")
    occluders = item.get("occluder_mask")  # optional: where other objects may hide this one
    return ObjectCrop(
        image,
        visible,
        (0.0, 0.0, float(side), float(side)),
        item_label(item),
        None if occluders is None else np.asarray(occluders, dtype=bool),
    )


def item_metrics(result_image, result_mask, item: dict, clip=None) -> dict:
    """Metrics of one completed crop against the triplet's target and amodal mask."""
    target = np.asarray(item["target"])
    image = np.asarray(result_image)
    if image.shape != target.shape:
        raise ValueError(f"completed image has shape {image.shape}, target {target.shape}")
    amodal = np.asarray(item["amodal_mask"], dtype=bool)
    hidden = amodal & ~np.asarray(item["visible_mask"], dtype=bool)
    similarity = ssim_map(image, target)  # once: averaged over each region below

    def region_ssim(mask):
        return float(similarity[mask].mean()) if mask.any() else float("nan")

    metrics = {
        "psnr": psnr(image, target),
        "ssim": float(similarity.mean()),
        "psnr_amodal": psnr(image, target, amodal),
        "ssim_amodal": region_ssim(amodal),
        "psnr_hidden": psnr(image, target, hidden),
        "ssim_hidden": region_ssim(hidden),
        "clip": clip.similarity(image, target) if clip is not None else None,
        "mask_iou": mask_iou(result_mask, amodal),
    }
    return metrics


def _clip_scorer(clip) -> tuple[object | None, dict]:
    if clip is None:
        return None, {"model": None, "note": "not computed (no CLIP model given)"}
    if isinstance(clip, (str, Path)):
        clip = ClipSimilarity(clip)
    from ..errors import MissingWeightsError

    try:
        if hasattr(clip, "load"):
            clip.load()
    except MissingWeightsError as error:
        return None, {"model": getattr(clip, "model", None), "note": f"not available: {error}"}
    return clip, {"model": getattr(clip, "model", None), "note": "cosine of CLIP image embeddings"}


def _items(dataset_items, max_items: int | None):
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    if hasattr(dataset_items, "__len__") and hasattr(dataset_items, "__getitem__"):
        count = len(dataset_items) if max_items is None else min(max_items, len(dataset_items))
        return (dataset_items[i] for i in range(count))
    return itertools.islice(iter(dataset_items), max_items)


def _json_safe(metrics: dict) -> dict:
    """nan (an empty region) -> None; inf PSNR (identical pixels) -> PSNR_CAP."""
    safe = {}
    for key, value in metrics.items():
        if value is not None and math.isnan(value):
            value = None
        elif key.startswith("psnr"):
            value = min(value, PSNR_CAP)
        safe[key] = value
    return safe


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise(records: list[dict]) -> dict:
    """Means of every metric over records (missing values, e.g. an empty region, skipped)."""
    summary = {"items": len(records)}
    for key in METRICS:
        summary[key] = _mean([r[key] for r in records])
    return summary


def evaluate_deocclusion(
    dataset_items,
    methods: dict,
    max_items: int | None = None,
    clip=DEFAULT_CLIP_MODEL,
    keep_items: bool = True,
    progress: bool = False,
) -> dict:
    """Run every de-occluder on the triplets and score it (see the module docstring).

    dataset_items: triplet items (a ``TripletDataset``, a split of one, or a list of dicts
        with ``input``, ``target``, ``visible_mask``, ``amodal_mask``, ``prompt`` (or
        ``label``), ``mask_type`` and ``occlusion``); the first ``max_items`` are used.
    methods: {name: Deoccluder}; a method with ``load()`` is loaded before timing starts.
    clip: CLIP model id / folder (local files only) or a ``ClipSimilarity``; None: skipped.
    Returns {"schema", "items", "regions", "notes", "methods": {name: {"overall",
    "by_mask_type", "by_occlusion", "items" (per-item records, when keep_items)}}}.
    """
    from tqdm.auto import tqdm

    if not methods:
        raise ValueError("methods is empty: give at least one {name: Deoccluder}")
    for name, method in methods.items():
        if not callable(getattr(method, "complete", None)):
            raise ValueError(f"method {name!r} has no complete(crop) method")
    scorer, clip_info = _clip_scorer(clip)
    for method in methods.values():
        if callable(getattr(method, "load", None)):
            method.load()
    records: dict[str, list[dict]] = {name: [] for name in methods}
    items = _items(dataset_items, max_items)
    for index, item in enumerate(tqdm(items, desc="de-occlusion eval", disable=not progress)):
        crop = item_crop(item)
        common = {
            "index": index,
            "mask_type": str(item.get("mask_type", "unknown")),
            "occlusion": float(item.get("occlusion", 0.0)),
        }
        for name, method in methods.items():
            start = time.perf_counter()
            result = method.complete(crop)
            seconds = time.perf_counter() - start
            metrics = _json_safe(item_metrics(result.image, result.mask, item, scorer))
            records[name].append({**common, **metrics, "seconds": seconds})
    if not any(records.values()):
        raise ValueError("no triplet items to evaluate")

    out = {
        "schema": SCHEMA,
        "items": len(next(iter(records.values()))),
        "regions": REGIONS,
        "notes": {
            "psnr": f"dB on 0-255 RGB; identical pixels count as {PSNR_CAP:g} dB",
            "ssim": "Gaussian window sigma 1.5, per RGB channel, averaged",
            "clip": clip_info,
            "lpips": lpips_note(),
            "seconds": "wall time of complete() per item (model loading excluded)",
        },
        "methods": {},
    }
    for name, rows in records.items():
        by_type: dict[str, list[dict]] = {}
        by_bin: dict[str, list[dict]] = {}
        for row in rows:
            by_type.setdefault(row["mask_type"], []).append(row)
            by_bin.setdefault(occlusion_bin(row["occlusion"]), []).append(row)
        out["methods"][name] = {
            "overall": summarise(rows),
            "by_mask_type": {k: summarise(v) for k, v in sorted(by_type.items())},
            "by_occlusion": {k: summarise(by_bin[k]) for k in OCCLUSION_BINS if k in by_bin},
        }
        if keep_items:
            out["methods"][name]["items"] = rows
    return out


def _cell(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


_COLUMNS = (
    ("PSNR", "psnr", 2),
    ("SSIM", "ssim", 4),
    ("PSNR amodal", "psnr_amodal", 2),
    ("SSIM amodal", "ssim_amodal", 4),
    ("PSNR hidden", "psnr_hidden", 2),
    ("CLIP", "clip", 4),
    ("mask IoU", "mask_iou", 4),
    ("s / item", "seconds", 3),
)


def _table(first: list[str], rows: list[tuple[list[str], dict]]) -> list[str]:
    header = [*first, "items", *(title for title, _, _ in _COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for keys, summary in rows:
        cells = [*keys, str(summary["items"])]
        cells += [_cell(summary[key], digits) for _, key, digits in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_table(results: dict) -> str:
    """Markdown: overall, by mask type and by occluded fraction, then the notes."""
    methods = results["methods"]
    regions = results["regions"]
    lines = [
        f"De-occlusion on {results['items']} triplets. PSNR / SSIM: {regions['crop']}; "
        f"amodal: {regions['amodal']}; hidden: {regions['hidden']}.",
        "",
        "### Overall",
        "",
    ]
    lines += _table(["method"], [([name], m["overall"]) for name, m in methods.items()])
    for title, key, first in (
        ("By mask type", "by_mask_type", "mask type"),
        ("By occluded fraction", "by_occlusion", "occlusion"),
    ):
        groups = list(dict.fromkeys(g for m in methods.values() for g in m[key]))
        rows = [
            ([group, name], m[key][group])
            for group in groups
            for name, m in methods.items()
            if group in m[key]
        ]
        lines += ["", f"### {title}", ""] + _table([first, "method"], rows)
    notes = results["notes"]
    lines += ["", f"CLIP: {notes['clip']['note']}. LPIPS: {notes['lpips']}."]
    return "\n".join(lines) + "\n"
