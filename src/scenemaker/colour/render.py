"""Unlit renders of a scene's colours from its camera (no OpenGL): the baked textures as an
engine shows them with lighting off, to compare with the photo."""

from __future__ import annotations

import numpy as np

from .raster import project, rasterize

GREY = (128, 128, 128)


def texture_image(mesh) -> np.ndarray | None:
    """The mesh's base colour texture as (h, w, 3) uint8, or None."""
    visual = getattr(mesh, "visual", None)
    if getattr(visual, "kind", None) != "texture" or getattr(visual, "uv", None) is None:
        return None
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    return np.asarray(image.convert("RGB"))


def render_colours(scene, camera_index: int = 0, textures: bool = True, grey=GREY):
    """(rgb (H, W, 3) uint8, instance (H, W) int: 0 background, else the object's id) of the
    scene from ``scene.cameras[camera_index]``. Textured meshes show their texture (bilinear,
    unlit) unless ``textures=False``; the others, and all with ``textures=False``, ``grey``."""
    camera = scene.cameras[camera_index]
    h, w = camera.height, camera.width
    xy_all, z_all, faces_all, owner = [], [], [], []
    offset = 0
    for j, obj in enumerate(scene.objects):
        mesh = obj.mesh
        placed = np.asarray(mesh.vertices, np.float64) @ obj.pose.matrix[:3, :3].T
        placed = placed + obj.pose.matrix[:3, 3]
        cam = placed @ camera.world_to_camera[:3, :3].T + camera.world_to_camera[:3, 3]
        xy, z = project(cam, camera.K)
        faces = np.asarray(mesh.faces, np.int64)
        xy_all.append(xy)
        z_all.append(z)
        faces_all.append(faces + offset)
        owner.append(np.full(len(faces), j))
        offset += len(xy)
    rgb = np.zeros((h, w, 3), np.uint8)
    instance = np.zeros((h, w), np.int64)
    if not faces_all:
        return rgb, instance
    raster = rasterize(np.concatenate(xy_all), np.concatenate(z_all),
                       np.concatenate(faces_all), w, h)  # fmt: skip
    owner = np.concatenate(owner)
    first_face = np.cumsum([0] + [len(f) for f in faces_all])
    hit = raster.face >= 0
    ids = np.array([obj.instance_id for obj in scene.objects])
    instance[hit] = ids[owner[raster.face[hit]]]
    rgb[hit] = grey
    if not textures:
        return rgb, instance
    for j, obj in enumerate(scene.objects):
        image = texture_image(obj.mesh)
        if image is None:
            continue
        pix = hit & (instance == obj.instance_id)
        face = raster.face[pix] - first_face[j]
        uv = np.asarray(obj.mesh.visual.uv, np.float64)[np.asarray(obj.mesh.faces)[face]]
        uv = np.einsum("nk,nkd->nd", raster.bary[pix], uv)
        th, tw = image.shape[:2]
        x = np.mod(uv[:, 0], 1.0) * tw - 0.5  # glTF's default sampler repeats
        y = (1.0 - np.mod(uv[:, 1], 1.0)) * th - 0.5
        rgb[pix] = _bilinear_clamped(image, x, y)
    return rgb, instance


def _bilinear_clamped(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0c, x1c = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    y0c, y1c = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    img = image.astype(np.float64)
    top = img[y0c, x0c] * (1 - fx) + img[y0c, x1c] * fx
    bottom = img[y1c, x0c] * (1 - fx) + img[y1c, x1c] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR (dB, 8-bit) of ``image`` vs ``reference`` over ``mask``; None if it is empty."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return None
    diff = image[mask].astype(np.float64) - reference[mask].astype(np.float64)
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))
