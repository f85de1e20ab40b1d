"""``scenemaker data inspect``: statistics of a generated dataset and a contact sheet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..io_utils import read_json
from ..scene import SCENE_SCHEMA, resolve_scene_file

OCCLUSION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def load_scene_payloads(root: Path) -> list[tuple[Path, dict]]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    scenes = []
    for p in sorted(root.glob("scene_*")):
        if not (p / "scene.json").is_file():
            continue
        payload = read_json(p / "scene.json", SCENE_SCHEMA)
        for key in ("objects", "views"):
            if not isinstance(payload.get(key), list):
                raise ValueError(f"{p / 'scene.json'}: missing or malformed {key!r} list")
        for v in payload["views"]:
            if not {"rgb", "instance", "objects", "index"} <= set(v):
                raise ValueError(f"{p / 'scene.json'}: a view lacks rgb/instance/objects/index")
        scenes.append((p, payload))
    if not scenes:
        raise FileNotFoundError(f"{root}: no scenes (scene_*/scene.json) in this folder")
    return scenes


def dataset_statistics(scenes: list[tuple[Path, dict]]) -> dict:
    objects_per_scene = Counter(len(p["objects"]) for _, p in scenes)
    labels = Counter(o["label"] for _, p in scenes for o in p["objects"])
    sources = Counter(o["source"] for _, p in scenes for o in p["objects"])
    occlusion = np.array(
        [o["occlusion"] for _, p in scenes for v in p["views"] for o in v["objects"]]
    )
    truncation = np.array(
        [o["truncation"] for _, p in scenes for v in p["views"] for o in v["objects"]]
    )
    strong_views = [
        max((o["occlusion"] for o in v["objects"]), default=0.0) > 0.5
        for _, p in scenes
        for v in p["views"]
    ]
    hist, _ = np.histogram(occlusion, bins=OCCLUSION_BINS)
    return {
        "scenes": len(scenes),
        "views": sum(len(p["views"]) for _, p in scenes),
        "objects_per_scene": dict(sorted(objects_per_scene.items())),
        "categories": dict(labels.most_common()),
        "sources": dict(sources),
        "occlusion_histogram": {
            f"{lo:.1f}-{min(hi, 1.0):.1f}": int(c)
            for lo, hi, c in zip(OCCLUSION_BINS[:-1], OCCLUSION_BINS[1:], hist, strict=True)
        },
        "mean_occlusion": float(occlusion.mean()) if occlusion.size else 0.0,
        "share_occluded_over_half": float((occlusion > 0.5).mean()) if occlusion.size else 0.0,
        "share_views_with_object_occluded_over_half": float(np.mean(strong_views))
        if strong_views
        else 0.0,
        "share_truncated": float((truncation > 0.01).mean()) if truncation.size else 0.0,
    }


def _palette(n: int) -> np.ndarray:
    import colorsys

    return np.array([colorsys.hsv_to_rgb((k * 0.618) % 1.0, 0.9, 1.0) for k in range(n)]) * 255


def contact_sheet(
    scenes: list[tuple[Path, dict]], out_path: Path, max_tiles: int = 24, columns: int = 6
) -> Path:
    """Grid of views (spread over scenes) with visible masks tinted and amodal outlines drawn."""
    from ..io_utils import atomic_write_bytes
    from .dataset import load_amodal_masks
    from .images import encode_png, read_image

    tiles = []
    per_scene = max(1, max_tiles // len(scenes))
    for path, payload in scenes:
        amodal = load_amodal_masks(path) if (path / "amodal.npz").is_file() else None
        for number, view in enumerate(payload["views"][:per_scene]):
            rgb_file, instance_file = (
                resolve_scene_file(path / "scene.json", view[key], f"views[{number}].{key}")
                for key in ("rgb", "instance")
            )
            rgb = read_image(rgb_file).astype(np.float64)
            instance = read_image(instance_file)
            colors = _palette(len(payload["objects"]) + 2)
            out = rgb.copy()
            for k, obj in enumerate(payload["objects"]):
                color = colors[k + 2]
                visible = instance == obj["instance_id"]
                out[visible] = 0.55 * out[visible] + 0.45 * color
                if amodal is not None:
                    mask = amodal[view["index"], k]
                    edge = mask & ~_erode(mask)
                    out[edge] = color
            tiles.append(out.astype(np.uint8))
            if len(tiles) >= max_tiles:
                break
        if len(tiles) >= max_tiles:
            break
    if not tiles:
        raise ValueError("no views to draw in the contact sheet")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * h, min(columns, len(tiles)) * w, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    out_path = Path(out_path)
    atomic_write_bytes(out_path, encode_png(sheet, compress_level=6))
    return out_path


def _erode(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return binary_erosion(mask, iterations=1)
