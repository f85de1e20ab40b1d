"""De-occlusion training triplets from rendered scenes: (occluded crop, prompt, complete target).

``build_triplets(scenes, out)`` reads scene folders written by ``scenemaker data generate`` and
writes::

    OUT/triplets/<id>_input.png    the occluded crop as the pipeline makes it (``make_crop``:
                                   square around the VISIBLE mask's box, box at 70%, white
                                   where not visible)
    OUT/triplets/<id>_target.png   the complete object in the same crop box, on white
    OUT/triplets/<id>_visible.png  crop-space visible mask (0 / 255)
    OUT/triplets/<id>_amodal.png   crop-space complete (amodal) mask (0 / 255)
    OUT/manifest.jsonl             one JSON record per triplet (``Triplet.record``)
    OUT/summary.json               counts per mask type and occlusion bin, skips, settings
    OUT/contact_sheet.png          input | target pairs for a sample

Mask types: ``scene`` (real occlusion: object views with visible fraction < 0.95) and, on
fully visible object views, the paper's synthetic ``cutout`` / ``border`` / ``brush`` masks
(``masks.py``), each removing 10-70% of the object's crop pixels.

Targets: the object rendered alone (floor off, white background) with the view's camera and
the object's colour, on a frame padded around the image so that objects cut by the image
border are complete; the scene's own pixels are pasted on the visible part, so input and
target agree there up to resampling. Scenes do not store their light direction: it is
recovered from the scene's pixels (``fit_light``) unless ``scene.json`` metadata holds
``render.light_dir``; a target that still differs from the scene (mean > 3 grey levels on
the visible pixels) is skipped as ``render_mismatch``.

Balancing rule: per mask type, candidates fall in occlusion bins [0, .2), [.2, .4), [.4, .6),
[.6, .8) (>= 0.8: skipped); each bin keeps at most ``balance_factor`` x the smallest non-empty
bin (random subset). Then the mix: the scarcest type (relative to its share) is taken whole
and the others are cut to their share, evenly over bins; types with no candidates leave the
mix (``mix_unavailable``). Everything is deterministic for a seed, whatever the order of the
scene folders.

Resuming: a triplet listed in the manifest with its four files present is not redone; the
manifest is rewritten atomically after each scene; files of triplets no longer selected
(e.g. after adding scenes) are removed at the end. A rerun must use the same settings.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_bytes, atomic_write_json, read_json
from . import masks
from .base import BOX_RATIO, CROP_SIZE, make_crop
from .flux import clean_label, deocclusion_prompt
from .masks import SYNTHETIC_TYPES

SCHEMA = "scenemaker.deocclusion_triplets/1"
MASK_TYPES = ("scene", *SYNTHETIC_TYPES)
DEFAULT_MIX = {"scene": 0.4, "cutout": 0.2, "border": 0.2, "brush": 0.2}
BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8)
BIN_LABELS = tuple(
    f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(BIN_EDGES[:-1], BIN_EDGES[1:], strict=True)
)
FULLY_VISIBLE = 0.95  # visible fraction from which an object view gets synthetic masks
MIN_TARGET_PIXELS = 16
SYNTHETIC_RANGE = (0.1, 0.7)
SYNTHETIC_ATTEMPTS = 12
RENDER_TOLERANCE = 3.0  # mean |scene - re-render| on visible pixels, grey levels
FILES = ("input", "target", "visible", "amodal")


def normalise_mix(mix: dict | None) -> dict[str, float]:
    """Shares of the mask types, summing to 1 (missing types: 0)."""
    mix = DEFAULT_MIX if mix is None else mix
    if not isinstance(mix, dict) or not mix:
        raise ValueError(f"mix must be a non-empty dict of mask type -> share, got {mix!r}")
    unknown = sorted(set(mix) - set(MASK_TYPES))
    if unknown:
        raise ValueError(f"mix: unknown mask types {unknown}; expected some of {MASK_TYPES}")
    try:
        shares = {t: float(mix.get(t, 0.0)) for t in MASK_TYPES}
    except (TypeError, ValueError):
        raise ValueError(f"mix shares must be numbers, got {mix!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"mix shares must be finite, >= 0 and not all 0, got {mix!r}")
    total = sum(shares.values())
    return {t: round(v / total, 6) for t, v in shares.items()}


def parse_mix(text: str) -> dict[str, float]:
    """``"scene=0.4,cutout=0.2,border=0.2,brush=0.2"`` (or a JSON object) -> a mix dict."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return normalise_mix(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"--mix: not valid JSON ({exc})") from None
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--mix: expected TYPE=SHARE items, got {part!r}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--mix: share of {name.strip()!r} is not a number: {value!r}"
            ) from None
    return normalise_mix(mix)


@dataclass
class Triplet:
    """One planned triplet (a manifest record without its file names)."""

    scene: str  # unique key: "<dataset folder name>-<scene folder name>"
    scene_dir: str
    source_split: str
    view: int
    instance_id: int
    mask_type: str
    occlusion: float  # 1 - visible / amodal pixels in the crop
    label: str  # cleaned
    label_cleaned: bool
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """The crop square (x0, y0, x1, y1) in image pixels (``ObjectCrop.box``)."""

    @property
    def id(self) -> str:
        return f"{self.scene}-v{self.view:03d}-i{self.instance_id:03d}-{self.mask_type}"

    @property
    def bin(self) -> int:
        return min(int(self.occlusion / 0.2), len(BIN_LABELS) - 1)

    def record(self) -> dict:
        files = {k: f"triplets/{self.id}_{k}.png" for k in FILES}
        return {
            "id": self.id,
            "input": files["input"],
            "target": files["target"],
            "visible_mask": files["visible"],
            "amodal_mask": files["amodal"],
            "prompt": deocclusion_prompt(self.label),
            "label": self.label,
            "mask_type": self.mask_type,
            "occlusion": round(self.occlusion, 5),
            "box": [round(b, 4) for b in self.box],
            "scene": self.scene,
            "scene_dir": self.scene_dir,
            "view": self.view,
            "instance_id": self.instance_id,
            "source_split": self.source_split,
        }


class _Renderers:
    """The one live SceneRenderer, re-created when the image size changes: each renderer owns
    an OpenGL context, and moderngl draws into whichever context was made current last."""

    def __init__(self):
        self._size, self._renderer = None, None

    def get(self, width: int, height: int):
        from ..render.scene import SceneRenderer

        if self._size != (width, height):
            self.release()
            self._size, self._renderer = (width, height), SceneRenderer(width, height)
        return self._renderer

    def release(self) -> None:
        if self._renderer is not None:
            self._renderer.release()
        self._size, self._renderer = None, None


class _Scene:
    """One scene folder, with the masks and renders its triplets need (cached)."""

    def __init__(self, folder: Path, key: str, renderers: _Renderers):
        from ..synth.dataset import DatasetScene

        self.key, self.folder, self.renderers = key, folder, renderers
        self.data = DatasetScene(folder)
        self.payload = self.data.payload
        self.objects = self.payload["objects"]
        camera = self.payload["views"][0]["camera"]
        self.width, self.height = int(camera["width"]), int(camera["height"])
        # the crop box overhangs the image by at most half its side (a thin object at the edge)
        self.pad = math.ceil(max(self.width, self.height) / (2 * BOX_RATIO)) + 2
        self.stored_amodal = self.data.amodal_masks()  # (views, objects, H, W)
        self._views, self._padded = {}, {}

    def view(self, index: int):
        if index not in self._views:
            self._views[index] = self.data.view(index)
        return self._views[index]

    def padded_camera(self, index: int):
        from ..scene import Camera

        camera = self.view(index).camera
        K = camera.K.copy()
        K[0, 2] += self.pad
        K[1, 2] += self.pad
        size = (self.width + 2 * self.pad, self.height + 2 * self.pad)
        return Camera(K, camera.world_to_camera, *size)

    def render_objects(self, only: int | None = None, grey: bool = False):
        from ..render.scene import RenderObject

        found = []
        for k, obj in enumerate(self.data.scene.objects):
            if only is not None and k != only:
                continue
            if obj.color is None and not grey:
                raise ValueError(f"{self.folder}: object {obj.instance_id} has no colour")
            vertices = obj.pose.apply(np.asarray(obj.mesh.vertices))
            color = (0.5, 0.5, 0.5) if grey else tuple(obj.color)
            found.append(RenderObject(vertices, np.asarray(obj.mesh.faces), obj.instance_id, color))
        return found

    def amodal(self, view: int, k: int) -> np.ndarray:
        """Object k's complete mask in the padded frame: the stored mask, or a padded render
        when the object reaches the image border (the stored mask stops there)."""
        stored = self.stored_amodal[view, k]
        if not (stored[0].any() or stored[-1].any() or stored[:, 0].any() or stored[:, -1].any()):
            return np.pad(stored, self.pad)
        if view not in self._padded:
            camera = self.padded_camera(view)
            renderer = self.renderers.get(camera.width, camera.height)
            renderer.set_scene(self.render_objects(grey=True), floor=False)
            self._padded[view] = renderer.render(camera).amodal
        return self._padded[view][k]

    def silhouettes(self) -> list[np.ndarray]:
        """Cut-out shapes: every object's complete mask in every view of this scene (so a
        scene's triplets depend on that scene alone, whatever else is in the run)."""
        shapes = [
            masks.silhouette(m) for m in self.stored_amodal.reshape(-1, self.height, self.width)
        ]
        return [s for s in shapes if s is not None and s.sum() >= MIN_TARGET_PIXELS]


def _crop_occlusion(visible: np.ndarray, amodal_padded: np.ndarray, pad: int, size: int):
    """(1 - visible / amodal pixels in the crop, crop box) for a visible mask (image frame)."""
    box = masks.crop_box(visible)
    visible_crop = masks.warp_mask(visible, box, size)
    amodal_crop = masks.warp_mask(amodal_padded, masks.shift_box(box, pad), size) | visible_crop
    return float(1.0 - visible_crop.sum() / amodal_crop.sum()), box


def _rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng(
        [seed, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys)]
    )


def _draw_synthetic(scene: _Scene, kind, view, k, visible, size, seed, silhouettes):
    """(occluder, crop occlusion) for one synthetic mask, or None after SYNTHETIC_ATTEMPTS.
    Deterministic for (seed, scene, view, object, kind): the writer redraws the planner's."""
    rng = _rng(seed, scene.key, view, k, kind)
    amodal = scene.amodal(view, k)
    lo, hi = SYNTHETIC_RANGE
    for _ in range(SYNTHETIC_ATTEMPTS):
        target_bin = int(rng.integers(len(BIN_LABELS)))  # aim at every bin alike
        share = rng.uniform(max(lo, BIN_EDGES[target_bin]), min(hi, BIN_EDGES[target_bin + 1]))
        occluder = masks.synthetic_occluder(kind, visible, share, rng, silhouettes)
        remaining = visible & ~occluder
        if not remaining.any():
            continue
        occlusion, box = _crop_occlusion(remaining, amodal, scene.pad, size)
        if lo <= occlusion <= hi:
            return occluder, occlusion, box
    return None


def _plan_scene(scene: _Scene, mix: dict, size: int, seed: int) -> tuple[list[Triplet], Counter]:
    found, skipped = [], Counter()
    synthetic = [t for t in SYNTHETIC_TYPES if mix[t] > 0]
    silhouettes = scene.silhouettes() if "cutout" in synthetic else []
    split = str(scene.payload.get("metadata", {}).get("split", ""))
    for v in range(scene.data.num_views):
        instance = scene.view(v).instance
        for k, obj in enumerate(scene.objects):
            iid = int(obj["instance_id"])
            visible = instance == iid
            if not visible.any():
                skipped["empty_visible"] += 1
                continue
            amodal = scene.amodal(v, k)
            if amodal.sum() < MIN_TARGET_PIXELS:
                skipped["target_too_small"] += 1
                continue
            if (
                visible[0].any()
                and visible[-1].any()
                and visible[:, 0].any()
                and visible[:, -1].any()
            ):
                skipped["touches_all_borders"] += 1
                continue
            label = clean_label(obj.get("label"))
            common = dict(scene=scene.key, scene_dir=str(scene.folder), source_split=split, view=v)
            common.update(instance_id=iid, label=label, label_cleaned=label != obj.get("label"))
            full = amodal.copy()
            full[scene.pad : scene.pad + scene.height, scene.pad : scene.pad + scene.width] |= (
                visible
            )
            if visible.sum() / full.sum() < FULLY_VISIBLE:
                if mix["scene"] <= 0:
                    continue
                occlusion, box = _crop_occlusion(visible, amodal, scene.pad, size)
                if occlusion >= BIN_EDGES[-1]:
                    skipped["occlusion_over_0.8"] += 1
                    continue
                found.append(Triplet(mask_type="scene", occlusion=occlusion, box=box, **common))
                continue
            for kind in synthetic:
                drawn = _draw_synthetic(scene, kind, v, k, visible, size, seed, silhouettes)
                if drawn is None:
                    skipped["synthetic_failed"] += 1
                    continue
                found.append(Triplet(mask_type=kind, occlusion=drawn[1], box=drawn[2], **common))
    return found, skipped


def select_triplets(
    candidates: list[Triplet], mix: dict, balance_factor: float | None, seed: int
) -> tuple[list[Triplet], Counter, list[str]]:
    """Balance by occlusion bin per type, then apply the mix (module docstring).

    Returns (selected sorted by id, dropped counts {"balance", "mix"}, types missing from
    the mix for want of candidates)."""
    rng = np.random.default_rng([seed, 7])
    dropped = Counter()
    pools = {}
    for kind in MASK_TYPES:
        bins = [[] for _ in BIN_LABELS]
        for c in sorted((c for c in candidates if c.mask_type == kind), key=lambda c: c.id):
            bins[c.bin].append(c)
        for b in bins:
            rng.shuffle(b)
        sizes = [len(b) for b in bins if b]
        if balance_factor and sizes:
            cap = int(balance_factor * min(sizes))
            dropped["balance"] += sum(max(0, len(b) - cap) for b in bins)
            bins = [b[:cap] for b in bins]
        pools[kind] = bins
    available = {t: sum(map(len, pools[t])) for t in MASK_TYPES if mix[t] > 0}
    unavailable = [t for t, n in available.items() if n == 0]
    usable = {t: n for t, n in available.items() if n > 0}
    total_share = sum(mix[t] for t in usable)
    budget = min((n / (mix[t] / total_share) for t, n in usable.items()), default=0.0)
    selected = []
    for kind in MASK_TYPES:
        pool = pools[kind]
        wanted = min(usable.get(kind, 0), int(budget * mix[kind] / total_share + 1e-6))
        dropped["mix"] += sum(map(len, pool)) - wanted
        order = rng.permutation(len(pool))
        taken = []
        for level in range(max(map(len, pool), default=0)):  # evenly over bins
            taken += [pool[b][level] for b in order if level < len(pool[b])]
        selected += taken[:wanted]
    return sorted(selected, key=lambda c: c.id), dropped, unavailable


# -- targets -----------------------------------------------------------------------------------

# Axis lights giving each normal component from two renders of a grey scene (the shader adds
# a fill light from normalize(-lx, 0.6, -lz): far-away x / z lights put it opposite).
_AXIS_LIGHTS = {
    "+x": (1e4, 0.0, 0.0),
    "-x": (-1e4, 0.0, 0.0),
    "+y": (0.0, 1e4, 0.0),
    "-y": (0.0, -1e4, 0.0),
    "+z": (0.0, 0.0, 1e4),
    "-z": (0.0, 0.0, -1e4),
}


def _shading(normals: np.ndarray, light) -> np.ndarray:
    """The renderer's shading factor (render.py's fragment shader) for unit normals (N, 3)."""
    lx, ly, lz = light
    key = np.array([lx, ly, lz]) / math.sqrt(lx * lx + ly * ly + lz * lz)
    fill = np.array([-lx, 0.6, -lz]) / math.sqrt(lx * lx + 0.36 + lz * lz)
    return 0.25 + 0.75 * np.maximum(normals @ key, 0) + 0.35 * np.maximum(normals @ fill, 0)


def fit_light(renderer, objects, views) -> tuple[float, float, float]:
    """The light direction a scene was rendered with, from its pixels.

    ``objects``: the scene's RenderObjects (true colours); ``views``: (camera, rgb, instance)
    triples. Per-pixel normals come from six renders under axis lights; the direction is the
    least-squares fit of the shader's model to the observed linear colours.
    """
    from scipy.optimize import least_squares

    from ..render.scene import RenderObject

    grey = [RenderObject(o.vertices, o.faces, o.instance_id, (0.5, 0.5, 0.5)) for o in objects]
    colours = np.zeros((256, 3))
    for o in objects:
        colours[o.instance_id] = o.color
    shading, rendered = {name: [] for name in _AXIS_LIGHTS}, []
    for name, light in _AXIS_LIGHTS.items():
        renderer.set_scene(grey, floor=False, light_dir=light, background=(1.0, 1.0, 1.0))
        for camera, _, _ in views:
            view = renderer.render(camera, with_amodal=False)
            shading[name].append(view.rgb[..., 0] / 255.0)
            if name == "+x":
                rendered.append(view.instance)
    normals, observed, base = [], [], []
    for j, (_, rgb, instance) in enumerate(views):
        s = {name: (shading[name][j] ** 2.2) / 0.5 for name in _AXIS_LIGHTS}
        up = s["+y"] - 0.25
        n = np.stack(
            [
                (s["+x"] - s["-x"]) / 0.4,
                np.where(up > 0.01, up / 1.1, -(s["-y"] - 0.25) / 0.75),
                (s["+z"] - s["-z"]) / 0.4,
            ],
            axis=-1,
        )
        mask = (instance >= 2) & (rendered[j] == instance) & (np.linalg.norm(n, axis=-1) > 0.5)
        normals.append(n[mask] / np.linalg.norm(n[mask], axis=-1, keepdims=True))
        observed.append((rgb[mask] / 255.0) ** 2.2)
        base.append(colours[instance[mask]])
    normals, observed, base = map(np.concatenate, (normals, observed, base))
    if len(normals) > 2000:
        keep = np.random.default_rng(0).choice(len(normals), 2000, replace=False)
        normals, observed, base = normals[keep], observed[keep], base[keep]
    if len(normals) == 0:
        raise ValueError("no object pixels to fit the light to")

    def residual(light):
        return (np.minimum(base * _shading(normals, light)[:, None], 1.0) - observed).ravel()

    # the cost has flat parts and local minima (max(), clipping): start from the best points
    # of a dense grid over the generator's range (writer.py: x, z in [-1, 1], y in [0.6, 1.5])
    axis = np.linspace(-1.2, 1.2, 13)
    grid = np.stack(np.meshgrid(axis, np.linspace(0.5, 1.6, 8), axis, indexing="ij"), -1)
    grid = grid.reshape(-1, 3)
    keys = grid / np.linalg.norm(grid, axis=1, keepdims=True)
    fills = np.stack([-grid[:, 0], np.full(len(grid), 0.6), -grid[:, 2]], 1)
    fills /= np.linalg.norm(fills, axis=1, keepdims=True)
    shade = 0.25 + 0.75 * np.maximum(normals @ keys.T, 0) + 0.35 * np.maximum(normals @ fills.T, 0)
    costs = sum(
        np.square(np.minimum(base[:, c, None] * shade, 1.0) - observed[:, c, None]).sum(0)
        for c in range(3)
    )
    starts = grid[np.argsort(costs)[:3]]
    fits = [least_squares(residual, s, bounds=([-1.2, 0.5, -1.2], [1.2, 1.6, 1.2])) for s in starts]
    return tuple(float(v) for v in min(fits, key=lambda f: f.cost).x)


def _scene_light(scene: _Scene):
    stored = (scene.payload.get("metadata", {}).get("render") or {}).get("light_dir")
    if stored is not None:
        return tuple(float(v) for v in stored)
    p = scene.pad
    views = [
        (scene.padded_camera(v), np.pad(scene.view(v).rgb, ((p, p), (p, p), (0, 0))),
         np.pad(scene.view(v).instance, p))
        for v in sorted(set(np.linspace(0, scene.data.num_views - 1, 4).round().astype(int)))
    ]  # fmt: skip
    renderer = scene.renderers.get(scene.width + 2 * p, scene.height + 2 * p)
    return fit_light(renderer, scene.render_objects(), views)


def _write_scene(scene: _Scene, todo: list[Triplet], out: Path, size: int, seed: int, bar) -> dict:
    """Render and write one scene's triplets; returns {id: failure reason} for those not written."""
    from ..synth.images import encode_png

    failed = {}
    light = _scene_light(scene)
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
            scene.render_objects(only=k), floor=False, light_dir=light, background=(1.0, 1.0, 1.0)
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
                    drawn = _draw_synthetic(
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


# -- driver ------------------------------------------------------------------------------------


def _find_scenes(paths) -> list[tuple[str, Path]]:
    """(key, folder) of every scene under the given dataset folders or scene folders."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found = {}
    for root in map(Path, paths):
        if (root / "scene.json").is_file():
            folders = [root]
        elif root.is_dir():
            folders = [p for p in sorted(root.glob("scene_*")) if (p / "scene.json").is_file()]
            if not folders:
                raise ValueError(f"{root}: no scenes (scene_*/scene.json) in this folder")
        else:
            raise FileNotFoundError(f"{root}: scenes folder not found")
        for folder in folders:
            parent = re.sub(r"[^A-Za-z0-9_.]+", "_", folder.resolve().parent.name) or "scenes"
            key = f"{parent}-{folder.name}"
            if key in found and found[key].resolve() != folder.resolve():
                raise ValueError(
                    f"scenes {found[key]} and {folder} would share the triplet id prefix {key!r}: "
                    "rename one of their dataset folders"
                )
            found[key] = folder
    return sorted(found.items())


def _read_manifest(out: Path) -> dict[str, dict]:
    path = out / "manifest.jsonl"
    records = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                records[record["id"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a hand-edited line: its triplet is redone
    return records


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data)


def _manifest_bytes(lines: dict[str, str], done: set[str]) -> bytes:
    """The manifest: one JSON line per finished triplet, in selection (id) order."""
    return "".join(line for key, line in lines.items() if key in done).encode()


def build_triplets(
    scenes: list[Path] | Path,
    out: Path,
    mix: dict | None = None,
    size: int = CROP_SIZE,
    seed: int = 0,
    max_per_scene: int | None = None,
    progress: bool = True,
    balance_factor: float | None = 2.0,
) -> dict:
    """Build (or resume) de-occlusion triplets from scene folders; returns the summary.

    ``scenes``: dataset folders (holding ``scene_*/``) or scene folders. ``mix``: share per
    mask type (default ``DEFAULT_MIX``). ``max_per_scene``: at most this many candidates per
    scene (random subset) before balancing. ``balance_factor``: bin cap as a multiple of the
    smallest non-empty bin (None: no balancing). See the module docstring for the rest.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    mix = normalise_mix(mix)
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if max_per_scene is not None and (not isinstance(max_per_scene, int) or max_per_scene < 1):
        raise ValueError(f"max_per_scene must be None or an integer >= 1, got {max_per_scene!r}")
    if balance_factor is not None and not balance_factor >= 1:
        raise ValueError(f"balance_factor must be None or >= 1, got {balance_factor!r}")
    folders = _find_scenes(scenes)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path is a file, expected a folder")
    settings = {
        "mix": mix,
        "size": size,
        "seed": seed,
        "max_per_scene": max_per_scene,
        "balance_factor": balance_factor,
        "box_ratio": BOX_RATIO,
        "fully_visible": FULLY_VISIBLE,
        "min_target_pixels": MIN_TARGET_PIXELS,
        "synthetic_range": list(SYNTHETIC_RANGE),
    }
    summary_path = out / "summary.json"
    failed = {}
    if summary_path.is_file():
        previous = read_json(summary_path, SCHEMA)
        if previous.get("settings") != settings:
            raise ValueError(
                f"{out}: holds triplets made with other settings ({summary_path}); use the "
                "same settings to resume, or a new --out"
            )
        failed = dict(previous.get("failed", {}))
    else:
        atomic_write_json(summary_path, {"schema": SCHEMA, "settings": settings, "seed": seed})
    (out / "triplets").mkdir(parents=True, exist_ok=True)

    renderers = _Renderers()
    candidates, skipped, dropped = [], Counter(), Counter()
    try:
        for key, folder in tqdm(folders, desc="planning", unit="scene", disable=not progress):
            try:
                found, reasons = _plan_scene(_Scene(folder, key, renderers), mix, size, seed)
            except (OSError, ValueError, KeyError, IndexError) as exc:
                warnings.warn(f"skipping scene {folder}: {exc}", stacklevel=2)
                skipped["scene_unreadable"] += 1
                continue
            skipped.update(reasons)
            if max_per_scene is not None and len(found) > max_per_scene:
                keep = _rng(seed, key, "max_per_scene").permutation(len(found))[:max_per_scene]
                dropped["max_per_scene"] += len(found) - max_per_scene
                found = [found[i] for i in sorted(keep)]
            candidates += found
        selected, selection_dropped, unavailable = select_triplets(
            candidates, mix, balance_factor, seed
        )
        dropped.update(selection_dropped)
        selected_ids = {t.id for t in selected}
        failed = {i: r for i, r in failed.items() if i in selected_ids}
        previous = _read_manifest(out)
        done = {
            t.id
            for t in selected
            if t.id in previous
            and all((out / "triplets" / f"{t.id}_{k}.png").is_file() for k in FILES)
        }
        lines = {t.id: json.dumps(t.record()) + "\n" for t in selected}
        written = 0
        bar = tqdm(
            total=len(selected), initial=len(done) + len(failed), desc="triplets", unit="triplet",
            disable=not progress,
        )  # fmt: skip
        by_scene = defaultdict(list)
        for t in selected:
            by_scene[t.scene].append(t)
        folder_of = dict(folders)
        for key, triplets in sorted(by_scene.items()):
            todo = [t for t in triplets if t.id not in done and t.id not in failed]
            if todo:
                try:
                    new_failures = _write_scene(
                        _Scene(folder_of[key], key, renderers), todo, out, size, seed, bar
                    )
                except (OSError, ValueError) as exc:
                    warnings.warn(f"skipping scene {folder_of[key]}: {exc}", stacklevel=2)
                    new_failures = {t.id: "scene_unreadable" for t in todo}
                failed.update(new_failures)
                finished = [t.id for t in todo if t.id not in new_failures]
                done.update(finished)
                written += len(finished)
            _write_if_changed(out / "manifest.jsonl", _manifest_bytes(lines, done))
        bar.close()
    finally:
        renderers.release()

    records = [t.record() for t in selected if t.id in done]
    _write_if_changed(out / "manifest.jsonl", _manifest_bytes(lines, done))
    removed = _remove_orphans(out, {r["id"] for r in records})
    skipped.update(Counter(failed.values()))
    kept = [t for t in selected if t.id in done]
    summary = {
        "schema": SCHEMA,
        "triplets": len(kept),
        "scenes": len(folders),
        "mask_types": {k: sum(t.mask_type == k for t in kept) for k in MASK_TYPES},
        "occlusion_bins": {b: sum(t.bin == i for t in kept) for i, b in enumerate(BIN_LABELS)},
        "occlusion_bins_by_type": {
            k: {
                b: sum(t.bin == i and t.mask_type == k for t in kept)
                for i, b in enumerate(BIN_LABELS)
            }
            for k in MASK_TYPES
        },
        "candidates": {k: sum(c.mask_type == k for c in candidates) for k in MASK_TYPES},
        "skipped": dict(sorted(skipped.items())),
        "dropped": dict(sorted(dropped.items())),
        "handled": {"label_cleaned": sum(t.label_cleaned for t in kept)},
        "mix_unavailable": unavailable,
        "failed": dict(sorted(failed.items())),
        "settings": settings,
        "seed": seed,
    }
    _write_if_changed(summary_path, json.dumps(summary, indent=1).encode())
    sheet = out / "contact_sheet.png"
    if records and (written or removed or not sheet.is_file()):
        contact_sheet(out, records, sheet, seed=seed)
    elif not records:
        sheet.unlink(missing_ok=True)
    run = {
        "written": written,
        "kept": len(kept) - written,
        "removed": removed,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return {**summary, "run": run}


def _remove_orphans(out: Path, keep: set[str]) -> int:
    """Delete triplet files not in ``keep`` (no longer selected) and stale temporary files."""
    removed = 0
    for path in (out / "triplets").iterdir():
        name = path.name
        stem, _, kind = (
            name[: -len(".png")].rpartition("_") if name.endswith(".png") else ("", "", "")
        )
        stale_tmp = name.startswith(".") and name.endswith(".tmp")
        if stale_tmp or (kind in FILES and stem not in keep):
            path.unlink(missing_ok=True)
            removed += not stale_tmp
    return removed


def contact_sheet(
    out: Path, records: list[dict], path: Path, seed: int = 0, pairs: int = 16
) -> Path:
    """Input | target pairs for a random sample of triplets (tiles at most 128 px)."""
    from PIL import Image

    from ..synth.images import encode_png

    rng = np.random.default_rng(seed)
    sample = [records[i] for i in sorted(rng.permutation(len(records))[:pairs])]
    tiles = []
    for record in sample:
        pair = []
        for key in ("input", "target"):
            with Image.open(out / record[key]) as image:
                side = min(128, image.width)
                pair.append(np.asarray(image.convert("RGB").resize((side, side))))
        tiles.append(np.concatenate([pair[0], np.full((side, 2, 3), 128, np.uint8), pair[1]], 1))
    columns = min(4, len(tiles))
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (h + 6), columns * (w + 6), 3), 60, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * (h + 6) + 3 : r * (h + 6) + 3 + h, c * (w + 6) + 3 : c * (w + 6) + 3 + w] = tile
    atomic_write_bytes(path, encode_png(sheet, compress_level=6))
    return path


# -- loading -----------------------------------------------------------------------------------


class TripletDataset:
    """The triplets of one ``build_triplets`` output folder, for training and evaluation.

    ``dataset[i]``: dict(input=(S, S, 3) uint8, target=(S, S, 3) uint8, visible_mask=(S, S)
    bool, amodal_mask=(S, S) bool, prompt, mask_type, occlusion, label, id, scene).
    """

    def __init__(self, out: str | Path, records: list[dict] | None = None):
        self.root = Path(out)
        if records is None:
            if not (self.root / "manifest.jsonl").is_file():
                raise FileNotFoundError(
                    f"{self.root}: no manifest.jsonl (make it with `scenemaker data deocclusion`)"
                )
            read_json(self.root / "summary.json", SCHEMA)
            records = list(_read_manifest(self.root).values())
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        from PIL import Image

        record = self.records[index]

        def load(key: str, mode: str) -> np.ndarray:
            path = self.root / record[key]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: triplet file listed in the manifest is missing")
            with Image.open(path) as image:
                return np.asarray(image.convert(mode))

        return {
            "input": load("input", "RGB"),
            "target": load("target", "RGB"),
            "visible_mask": load("visible_mask", "L") > 127,
            "amodal_mask": load("amodal_mask", "L") > 127,
            "prompt": record["prompt"],
            "mask_type": record["mask_type"],
            "occlusion": float(record["occlusion"]),
            "label": record["label"],
            "id": record["id"],
            "scene": record["scene"],
        }

    @property
    def scenes(self) -> list[str]:
        return sorted({r["scene"] for r in self.records})

    def split(
        self, fraction_val: float = 0.1, seed: int = 0
    ) -> tuple[TripletDataset, TripletDataset]:
        """(train, val) by scene: no scene in both; val gets round(fraction x scenes) scenes,
        at least one when ``fraction_val`` > 0 and there are two or more scenes."""
        if not 0.0 <= fraction_val < 1.0:
            raise ValueError(f"fraction_val must be in [0, 1), got {fraction_val!r}")
        scenes = self.scenes
        n_val = round(fraction_val * len(scenes))
        if fraction_val > 0 and len(scenes) >= 2:
            n_val = min(max(n_val, 1), len(scenes) - 1)
        order = np.random.default_rng(seed).permutation(len(scenes))
        val_scenes = {scenes[i] for i in order[:n_val]}
        train = [r for r in self.records if r["scene"] not in val_scenes]
        val = [r for r in self.records if r["scene"] in val_scenes]
        return TripletDataset(self.root, train), TripletDataset(self.root, val)


__all__ = [
    "DEFAULT_MIX",
    "MASK_TYPES",
    "SCHEMA",
    "Triplet",
    "TripletDataset",
    "build_triplets",
    "contact_sheet",
    "fit_light",
    "normalise_mix",
    "parse_mix",
    "select_triplets",
]
