"""The pipeline's hook: colour every mesh of the output scene before it is exported."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .bake import Amodal, ColourSkip, PhotoObject, bake_texture, has_texture


def colour_scene(scene, rgb: np.ndarray, out: str | Path | None = None, masks=None) -> dict:
    """Give every untextured mesh of ``scene`` the photo's colours as a baked texture.

    Objects are pipeline outputs: ``instance_id - 2`` is their index in the masks. Their
    meshes are replaced in ``scene`` (``scene.glb`` / ``scene.usda`` carry the colours; the
    canonical meshes in ``object3d/`` stay as generated). Masks come from ``masks`` or
    ``out/perception/masks.npy``, de-occluded crops from ``out/deocclusion`` when there.
    Never raises: what could not be coloured, and why, is in the returned record, which is
    also ``scene.metadata["colour"]`` (``notes``: one line per object left as it was or
    coloured with its mask's mean colour alone)."""
    t0 = time.perf_counter()
    record = {"method": "photo projection baked into a UV texture", "objects": {}, "notes": []}
    try:
        camera = scene.cameras[0]
        rgb = np.asarray(rgb)[..., :3]
        if masks is None:
            masks = load_masks(Path(out), rgb.shape[0], rgb.shape[1])
    except Exception as exc:  # noqa: BLE001 - colour never fails a run
        record["notes"].append(f"colour: skipped for every object ({_why(exc)})")
        scene.metadata["colour"] = record
        return record
    crops = _load_crops(Path(out)) if out is not None else {}
    for obj in scene.objects:
        k = obj.instance_id - 2
        try:
            if has_texture(obj.mesh):
                record["objects"][str(k)] = {"status": "kept its texture"}
                continue
            if obj.color is not None:  # the export paints it this one colour
                record["objects"][str(k)] = {"status": "kept its colour"}
                continue
            if not 0 <= k < len(masks):
                raise ColourSkip("no mask")
            photo = PhotoObject(rgb, masks[k], camera.K, crops.get(k))
            to_camera = camera.world_to_camera @ obj.pose.matrix
            obj.mesh, stats = bake_texture(obj.mesh, to_camera, photo)
            record["objects"][str(k)] = {"status": "baked", **stats}
            if "note" in stats:
                record["notes"].append(f"object {k}: {stats['note']}")
        except Exception as exc:  # noqa: BLE001 - colour never fails a run
            why = _why(exc)
            record["objects"][str(k)] = {"status": "skipped", "why": why}
            record["notes"].append(f"object {k}: not coloured ({why})")
    record["seconds"] = round(time.perf_counter() - t0, 3)
    scene.metadata["colour"] = record
    return record


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, ColourSkip) else f"{type(exc).__name__}: {text}"


def load_masks(out: Path, height: int, width: int) -> list[np.ndarray]:
    """The visible masks the perception stage saved (lossless, overlaps kept)."""
    packed = np.load(out / "perception" / "masks.npy", allow_pickle=False)
    if packed.ndim != 3 or packed.shape[1] != height or packed.shape[2] * 8 < width:
        raise ValueError(f"perception/masks.npy has shape {packed.shape}, image {width}x{height}")
    return list(np.unpackbits(packed, axis=-1, count=width).astype(bool))


def _load_crops(out: Path) -> dict[int, Amodal]:
    """The de-occluded crops, by object; any that cannot be read is left out."""
    from PIL import Image

    folder = out / "deocclusion"
    try:
        records = json.loads((folder / "crops.json").read_text())["crops"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    crops = {}
    for k, rec in enumerate(records):
        try:
            box = tuple(float(v) for v in rec["box"])
            with Image.open(folder / f"object_{k:02d}_amodal.png") as im:
                image = np.asarray(im.convert("RGB"))
            with Image.open(folder / f"object_{k:02d}_mask.png") as im:
                mask = np.asarray(im.convert("L")) > 127
            with Image.open(folder / f"object_{k:02d}_visible.png") as im:
                visible = np.asarray(im.convert("L")) > 127
            side = image.shape[0]
            if len(box) != 4 or image.shape[:2] != (side, side) or mask.shape != (side, side):
                continue
            if visible.shape != (side, side):
                continue
            crops[k] = Amodal(image, mask, visible, box)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return crops
