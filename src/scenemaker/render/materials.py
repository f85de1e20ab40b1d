"""What a mesh looks like to the fast renderer: its texture, vertex colours or face colours
(trimesh visuals), as a :class:`~scenemaker.render.scene.RenderObject`.

Colours in files are sRGB (8-bit vertex / face colours, textures); the renderer shades in
linear RGB, so 8-bit colours are linearised here (``(c / 255) ** 2.2``) and textures in the
shader. A glTF ``baseColorFactor`` (linear) multiplies the texture.
"""

from __future__ import annotations

import numpy as np

from .scene import RenderObject


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    return (np.asarray(colors, dtype=np.float64)[..., :3] / 255.0) ** 2.2


def linear_to_srgb8(colors: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(np.asarray(colors, np.float64), 0, 1) ** (1 / 2.2) * 255).astype(
        np.uint8
    )


def _texture(visual) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(uv, texture (h, w, 3) uint8, linear factor (3,)) of a textured mesh, or None."""
    uv = getattr(visual, "uv", None)
    material = getattr(visual, "material", None)
    if uv is None or material is None:
        return None
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    raw = getattr(material, "baseColorFactor", None)  # glTF (PBR) only; OBJ's Kd is ignored
    factor = np.ones(3) if raw is None else np.asarray(raw, dtype=np.float64)[:3]
    if factor.max() > 1.0:  # trimesh keeps 8-bit factors
        factor = factor / 255.0
    return np.asarray(uv, dtype=np.float64), rgb, factor


def render_object(vertices, mesh, instance_id: int, color, samples=None) -> RenderObject:
    """A RenderObject of ``mesh`` whose vertices, placed in the world, are ``vertices``, with
    the mesh's own colours where it has some, else the flat ``color`` (linear RGB)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces)
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        found = _texture(visual)
        if found is not None and len(found[0]) == len(vertices):
            uv, image, factor = found
            colors = np.tile(factor, (len(vertices), 1))
            return RenderObject(vertices, faces, instance_id, color, samples, colors, uv, image)
    if kind == "vertex":
        colors = srgb_to_linear(visual.vertex_colors)
        return RenderObject(vertices, faces, instance_id, color, samples, colors)
    if kind == "face":  # one colour per face: every face gets its own three vertices
        colors = np.repeat(srgb_to_linear(visual.face_colors), 3, axis=0)
        corners = vertices[faces].reshape(-1, 3)
        unshared = np.arange(len(corners)).reshape(-1, 3)
        return RenderObject(corners, unshared, instance_id, color, samples, colors)
    return RenderObject(vertices, faces, instance_id, color, samples)
