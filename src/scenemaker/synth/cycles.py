"""Cycles (Blender's path tracer, the paper's renderer) for ``data generate --renderer cycles``.

:class:`CyclesRenderer` has the interface the scene writer uses from the fast renderer
(:class:`~scenemaker.render.scene.SceneRenderer`): ``set_scene`` and ``render`` returning a
:class:`~scenemaker.render.scene.RenderedView`. RGB, depth and instance ids come from Cycles
(``scenemaker/blender/cycles_render.py`` in the bpy environment, one subprocess for all views
of a scene: :meth:`render_many`); the amodal masks and truncation come from the fast renderer
(depth-only passes, exact), visible pixels are counted in the Cycles instance image.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..render.scene import RenderedView, RenderObject, SceneRenderer
from ..scene import Camera

HDRI_SUFFIXES = (".exr", ".hdr")


def near_id_edge(ids: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels within one pixel of a change of instance id, where two renderers
    may fairly disagree (which object a boundary pixel's centre falls on)."""
    from scipy.ndimage import binary_dilation

    change = np.zeros(ids.shape, bool)
    dx, dy = ids[:, 1:] != ids[:, :-1], ids[1:] != ids[:-1]
    change[:, 1:] |= dx
    change[:, :-1] |= dx
    change[1:] |= dy
    change[:-1] |= dy
    return binary_dilation(change, np.ones((3, 3), bool))


def hdri_files(folder: str | Path | None) -> list[Path]:
    """The HDRIs (.exr, .hdr) in ``folder`` (a single file is a one-HDRI folder)."""
    if folder is None:
        return []
    path = Path(folder)
    if path.is_file() and path.suffix.lower() in HDRI_SUFFIXES:
        return [path.resolve()]
    if not path.is_dir():
        raise InputError(f"--hdri {folder}: no such folder")
    found = sorted(p.resolve() for p in path.iterdir() if p.suffix.lower() in HDRI_SUFFIXES)
    if not found:
        raise InputError(f"--hdri {folder}: no .exr or .hdr files in it")
    return found


class CyclesRenderer:
    """Renders one scene at a time with Cycles; same calls as :class:`SceneRenderer`.

    ``fast`` is the fast renderer holding the same scene: the writer picks views with it (every
    object visible) and then renders the chosen ones with :meth:`finish` in one Blender call.
    """

    def __init__(
        self,
        width: int = 256,
        height: int = 256,
        samples: int = 16,
        hdri: str | Path | None = None,
        near: float = 0.05,
        far: float = 100.0,
        denoise: bool = True,
        threads: int = 0,
        timeout_per_view: float = 60.0,
    ):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.fast = SceneRenderer(width, height, near, far)
        self.width, self.height, self.near, self.far = self.fast.width, self.fast.height, near, far
        self.samples, self.denoise, self.threads = int(samples), bool(denoise), int(threads)
        self.hdris = hdri_files(hdri)
        self.timeout_per_view = float(timeout_per_view)
        self._scene: dict | None = None
        self._used: dict = {}  # what the last Blender call used (HDRI file, denoiser)

    # -- the SceneRenderer interface -----------------------------------------------------------

    def set_scene(self, objects: list[RenderObject], *args, **kwargs) -> None:
        """As :meth:`SceneRenderer.set_scene` (same arguments and defaults)."""
        import inspect

        self.fast.set_scene(objects, *args, **kwargs)
        style = inspect.signature(SceneRenderer.set_scene).bind(self.fast, objects, *args, **kwargs)
        style.apply_defaults()
        a = style.arguments
        self._scene = {
            "objects": list(objects),
            "floor": {"size": float(a["floor_size"]), "color": [float(c) for c in a["floor_color"]]}
            if a["floor"]
            else None,
            "light_dir": [float(c) for c in a["light_dir"]],
            "background": [float(c) for c in a["background"]],
        }

    def render(self, camera: Camera, with_amodal: bool = True) -> RenderedView:
        return self.render_many([camera], with_amodal)[0]

    def render_many(self, cameras: list[Camera], with_amodal: bool = True) -> list[RenderedView]:
        """Every camera's view, Cycles' images from one Blender process."""
        return self.finish(cameras, [self.fast.render(c, with_amodal) for c in cameras])

    def finish(self, cameras: list[Camera], fast_views: list[RenderedView]) -> list[RenderedView]:
        """``fast_views`` (the fast renderer's, of the same cameras) with Cycles' RGB, depth and
        instance ids; visible pixels and fractions recounted in Cycles' instance image."""
        if self._scene is None:
            raise RuntimeError("call set_scene() before render()")
        for camera in cameras:
            if (camera.width, camera.height) != (self.width, self.height):
                raise ValueError(
                    f"camera is {camera.width}x{camera.height}, renderer {self.width}x{self.height}"
                )
        images = self._cycles(cameras)
        ids = np.array([o.instance_id for o in self._scene["objects"]], dtype=np.int64)
        views = []
        for (rgb, depth, instance), fast in zip(images, fast_views, strict=True):
            visible = np.bincount(instance.ravel(), minlength=256)[ids]
            amodal_px = fast.amodal_pixels
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(amodal_px > 0, visible / np.maximum(amodal_px, 1), 0.0)
            views.append(
                RenderedView(
                    rgb=rgb,
                    depth=depth,
                    instance=instance,
                    amodal=fast.amodal,
                    visible_pixels=visible.astype(np.int64),
                    amodal_pixels=amodal_px,
                    visible_fraction=np.clip(frac, 0.0, 1.0),
                    truncation=fast.truncation,
                )
            )
        return views

    def metadata(self) -> dict:
        """Settings for scene.json's ``render`` record."""
        env = self._environment()
        return {
            "renderer": "cycles",
            "samples": self.samples,
            "denoise": self._used.get("denoise", self.denoise),
            "hdri": self._used.get("hdri", env["hdri"] and Path(env["hdri"]).name),
            "hdri_rotation": round(env["rotation"], 6),
        }

    def release_scene(self) -> None:
        self.fast.release_scene()
        self._scene = None

    def release(self) -> None:
        self.fast.release()
        self._scene = None

    # -- Blender ---------------------------------------------------------------------------------

    def _environment(self) -> dict:
        """The scene's HDRI and its rotation, drawn from the scene's own settings (so the same
        scene always gets the same environment, without touching the writer's random stream)."""
        assert self._scene is not None
        key = repr((self._scene["light_dir"], self._scene["background"])).encode()
        digest = hashlib.sha1(key).digest()
        pick = int.from_bytes(digest[:4], "little") / 2**32
        rotation = int.from_bytes(digest[4:8], "little") / 2**32 * 2 * math.pi
        hdri = str(self.hdris[int(pick * len(self.hdris))]) if self.hdris else None
        return {
            "hdri": hdri,
            "bundled": pick,
            "rotation": rotation,
            "brightness": 0.25,
            "background": self._scene["background"],
        }

    def _cycles(self, cameras: list[Camera]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        from ..blender import run_script
        from .images import encode_png

        assert self._scene is not None
        with tempfile.TemporaryDirectory(prefix="scenemaker-cycles-") as tmp:
            tmp = Path(tmp)
            objects = []
            for k, obj in enumerate(self._scene["objects"]):
                arrays = {"vertices": np.asarray(obj.vertices, np.float64),
                          "faces": np.asarray(obj.faces, np.int64)}  # fmt: skip
                if obj.vertex_colors is not None:
                    arrays["vertex_colors"] = np.asarray(obj.vertex_colors, np.float32)
                texture = None
                if obj.texture is not None:
                    arrays["uv"] = np.asarray(obj.uv, np.float64)
                    texture = tmp / f"object_{k}.png"
                    texture.write_bytes(encode_png(np.asarray(obj.texture, np.uint8)[..., :3]))
                np.savez(tmp / f"object_{k}.npz", **arrays)
                objects.append({
                    "npz": str(tmp / f"object_{k}.npz"),
                    "texture": str(texture) if texture else None,
                    "pass_index": int(obj.instance_id),
                    "color": [float(c) for c in obj.color],
                })  # fmt: skip
            job = {
                "out": str(tmp / "out"),
                "width": self.width,
                "height": self.height,
                "samples": self.samples,
                "denoise": self.denoise,
                "seed": 0,
                "near": self.near,
                "far": self.far,
                "threads": self.threads,
                "objects": objects,
                "floor": self._scene["floor"],
                "light_dir": self._scene["light_dir"],
                "sun": 2.0,
                "environment": self._environment(),
                "cameras": [
                    {
                        "K": np.asarray(c.K).tolist(),
                        "world_to_camera": np.asarray(c.world_to_camera).tolist(),
                    }
                    for c in cameras
                ],  # fmt: skip
            }
            run_script("cycles_render.py", job, timeout=30.0 + self.timeout_per_view * len(cameras))
            out = tmp / "out"
            self._used = json.loads((out / "done.json").read_text())
            return [
                tuple(np.load(out / f"{i:03d}_{name}.npy") for name in ("rgb", "depth", "instance"))
                for i in range(len(cameras))
            ]
