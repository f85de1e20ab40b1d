"""Writing one scene's de-occlusion triplets: the input is the occluded crop as the pipeline
makes it (``make_crop``); the target is the object rendered alone (floor off, white
background) with the view's camera, the scene's stored light and the object's colour, in
the padded frame, with the scene's own pixels pasted on the visible part, so input and
target agree there up to resampling. A view whose re-render differs from the scene (mean >
3 grey levels on the visible pixels) is not written (``render_mismatch``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_bytes
from . import masks
from .base import make_crop
from .triplet_candidates import SourceScene, draw_synthetic
from .triplets import Triplet

RENDER_TOLERANCE = 3.0  # mean |scene - re-render| on visible pixels, grey levels


def write_scene_triplets(
    scene: SourceScene, todo: list[Triplet], out: Path, size: int, seed: int, bar
) -> dict:
    """Render and write one scene's triplets; returns {id: failure reason} for those not written."""
    from ..synth.images import encode_png

    failed = {}
    index = {int(o["instance_id"]): k for k, o in enumerate(scene.objects)}
    silhouettes = scene.silhouettes() if any(t.mask_type == "cutout" for t in todo) else []
    p, h, w = scene.pad, scene.height, scene.width
    by_object = defaultdict(list)
    for t in todo:
        by_object[t.instance_id].append(t)
    # before the object-alone renders below: a padded amodal render replaces the renderer's scene
    amodals = {
        (t.view, index[t.instance_id]): scene.amodal(t.view, index[t.instance_id]) for t in todo
    }
    for iid, group in sorted(by_object.items()):
        k = index[iid]
        renderer = scene.renderers.get(w + 2 * p, h + 2 * p)
        renderer.set_scene(
            scene.render_objects(only=k),
            floor=False,
            light_dir=scene.light,
            background=(1.0, 1.0, 1.0),
        )
        for v in sorted({t.view for t in group}):
            view = scene.view(v)
            alone = renderer.render(scene.padded_camera(v), with_amodal=False)
            visible = view.instance == iid
            rendered = alone.instance[p : p + h, p : p + w] == iid
            both = visible & rendered
            diff = np.abs(alone.rgb[p : p + h, p : p + w][both].astype(int) - view.rgb[both])
            mismatch = not both.any() or diff.mean() > RENDER_TOLERANCE
            amodal = amodals[v, k].copy()
            amodal[p : p + h, p : p + w] |= visible
            canvas = np.where((alone.instance == iid)[..., None], alone.rgb, 255).astype(np.uint8)
            canvas[p : p + h, p : p + w][visible] = view.rgb[visible]
            canvas[~amodal] = 255
            for t in (t for t in group if t.view == v):
                bar.update(1)
                if mismatch:
                    failed[t.id] = "render_mismatch"
                    continue
                shown = visible
                if t.mask_type != "scene":
                    drawn = draw_synthetic(
                        scene, t.mask_type, v, k, visible, size, seed, silhouettes
                    )
                    if drawn is None:  # cannot happen for the planner's own draw; be safe
                        failed[t.id] = "synthetic_failed"
                        continue
                    shown = visible & ~drawn[0]
                crop = make_crop(view.rgb, shown, t.label, size)
                box = masks.shift_box(crop.box, p)
                amodal_crop = masks.warp_mask(amodal, box, size) | crop.visible_mask
                target = masks.warp_image(canvas, box, size)
                target[~amodal_crop] = 255
                images = {
                    "input": crop.image,
                    "target": target,
                    "visible": crop.visible_mask.astype(np.uint8) * 255,
                    "amodal": amodal_crop.astype(np.uint8) * 255,
                }
                for name, image in images.items():
                    atomic_write_bytes(out / "triplets" / f"{t.id}_{name}.png", encode_png(image))
    return failed
