"""Photo colours baked into a UV texture of one placed mesh.

Every texel of the mesh's atlas (:mod:`.atlas`) is a point on the surface. Placed with the
object's pose and projected with K, a texel takes the photo's colour where the camera saw it:
in front of the mesh's own surface (a depth test against the mesh rasterised from the photo's
camera) and inside the object's visible mask. Texels the photo cannot show because another
object hides them take the de-occluded crop's colour (the completed object) where its amodal
mask covers them. The rest (the back, the underside) is filled plausibly: next to the seen
part from the nearest seen texel; farther away from the texel mirrored across the object's
left-right symmetry plane (canonical x = 0) where that one was seen, else from the generator's
own colours if the mesh has vertex or face colours, else from the nearest seen texel in 3-D.
An object the photo shows nowhere on the mesh gets the mean colour of its mask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .atlas import AtlasError, build_atlas
from .raster import project, rasterize

TEXTURE_SIZE = 512  # the largest by default (dense meshes get more, see .atlas)
MIN_TEXTURE_SIZE = 256
DEPTH_TOLERANCE = 0.01  # of the placed object's size, plus DEPTH_SLACK metres
DEPTH_SLACK = 0.002
MIRROR_RADIUS = 0.03  # canonical units (the longest side spans 2): mirrored texel on surface
MAX_TREE_POINTS = 40_000  # seen texels the nearest-colour search looks among
FILL_VOXEL = 1.0 / 48  # canonical units: unseen texels closer than this share a look-up


class ColourSkip(ValueError):
    """This object cannot be coloured (the message says why); it stays grey."""


@dataclass
class Amodal:
    """The de-occluded crop of one object (``deocclusion/object_XX_*.png`` + its box)."""

    image: np.ndarray  # (S, S, 3) uint8: the completed object
    mask: np.ndarray  # (S, S) bool: the amodal silhouette
    visible: np.ndarray  # (S, S) bool: the visible part
    box: tuple[float, float, float, float]  # the square's (x0, y0, x1, y1) in image pixels


@dataclass
class PhotoObject:
    """What the photo shows of one object."""

    rgb: np.ndarray  # (H, W, 3) uint8 photo
    mask: np.ndarray  # (H, W) bool visible mask
    K: np.ndarray  # (3, 3) intrinsics
    amodal: Amodal | None = None


def has_texture(mesh) -> bool:
    """A mesh with UVs and an image to read colour from."""
    visual = getattr(mesh, "visual", None)
    if getattr(visual, "kind", None) != "texture" or getattr(visual, "uv", None) is None:
        return False
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    return image is not None


def texture_size(mask_pixels: int) -> int:
    """Texels enough for ~16 per visible pixel (front and back, with room): 256 or 512."""
    side = int(np.sqrt(16 * max(mask_pixels, 1)))
    return int(np.clip(1 << max(side - 1, 1).bit_length(), MIN_TEXTURE_SIZE, TEXTURE_SIZE))


def bake_texture(mesh, to_camera: np.ndarray, photo: PhotoObject, size: int | None = None):
    """A copy of canonical ``mesh`` with the photo's colours as its base colour texture, and
    what was done (``seen``: share of texels coloured from the photo, ``deoccluded``: from the
    de-occluded crop, ``mirrored``, ``generator``, ``nearest``: filled so).

    ``to_camera``: 4x4 canonical -> OpenCV camera; ``size``: texture side, by default from
    the mask's size (:func:`texture_size`). Raises :class:`ColourSkip`."""
    t0 = time.perf_counter()
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0 or not np.isfinite(vertices).all():
        raise ColourSkip("degenerate mesh (no faces or non-finite vertices)")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ColourSkip("degenerate mesh (face indices out of range)")
    mask = np.asarray(photo.mask, dtype=bool)
    if not mask.any():
        raise ColourSkip("no visible pixel in the photo")
    try:
        atlas = build_atlas(vertices, faces, size or texture_size(int(mask.sum())))
    except AtlasError as exc:
        raise ColourSkip(str(exc)) from None
    to_camera = np.asarray(to_camera, dtype=np.float64)
    points = np.einsum("tk,tkd->td", atlas.texel_bary, vertices[faces[atlas.texel_face]])
    camera_points = points @ to_camera[:3, :3].T + to_camera[:3, 3]
    mean = photo.rgb[mask].reshape(-1, 3).mean(0)
    view = _view(vertices, faces, to_camera, camera_points, photo)
    colours = np.zeros((len(points), 3))
    n = len(points)
    seen = _photo_colours(view, photo, colours)
    deoccluded = np.zeros(n, bool)
    if photo.amodal is not None:
        deoccluded = _deoccluded_colours(view, photo, ~seen, colours)
    stats = {"seen": float(seen.sum() / n), "deoccluded": float(deoccluded.sum() / n)}
    known = seen | deoccluded
    if not known.any():
        colours[:] = mean
        stats["note"] = "the photo shows none of the placed mesh: mean colour of the mask"
    else:
        stats.update(_fill(points, known, colours, mesh, atlas, faces))
    texture = np.empty((atlas.size, atlas.size, 3), np.uint8)
    texture[:] = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    texture[atlas.texel_xy[:, 1], atlas.texel_xy[:, 0]] = np.clip(np.rint(colours), 0, 255)
    baked = _textured_mesh(vertices, faces, atlas, texture, trimesh)
    stats.update(texture_px=atlas.size, seconds=round(time.perf_counter() - t0, 3))
    return baked, stats


def _textured_mesh(vertices, faces, atlas, texture, trimesh):
    from PIL import Image

    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(texture), metallicFactor=0.0, roughnessFactor=0.9
    )
    visual = trimesh.visual.TextureVisuals(uv=atlas.uv(), material=material)
    corners = vertices[faces].reshape(-1, 3)  # each face its own corners: UVs differ per face
    return trimesh.Trimesh(
        corners, np.arange(len(corners)).reshape(-1, 3), visual=visual, process=False
    )


@dataclass
class _View:
    """Texels seen from the photo's camera: pixel coordinates, depth, and whether they face
    it (no part of the mesh itself lies in front of them)."""

    uv: np.ndarray  # (T, 2) pixel coordinates
    col: np.ndarray  # (T,) int nearest pixel column (-1 outside the image)
    row: np.ndarray  # (T,) int
    front: np.ndarray  # (T,) bool: in the image, in front of the camera, not self-occluded


def _view(vertices, faces, to_camera, camera_points, photo) -> _View:
    import cv2

    h, w = photo.mask.shape
    placed = vertices @ to_camera[:3, :3].T + to_camera[:3, 3]
    xy, z = project(placed, photo.K)
    own = rasterize(xy, z, faces, w, h).depth  # the mesh's own surface nearest the camera
    # the farthest of the 3 x 3 pixels around: texels on steep surfaces pass between pixels
    reach = cv2.dilate(np.where(np.isfinite(own), own, 0.0).astype(np.float32), np.ones((3, 3)))
    tol = DEPTH_TOLERANCE * float(np.ptp(placed, axis=0).max()) + DEPTH_SLACK
    uv, tz = project(camera_points, photo.K)
    col, row = np.rint(uv[:, 0]), np.rint(uv[:, 1])
    inside = np.isfinite(uv).all(1) & (col >= 0) & (col < w) & (row >= 0) & (row < h) & (tz > 0)
    col = np.where(inside, col, -1).astype(np.int64)
    row = np.where(inside, row, -1).astype(np.int64)
    front = inside.copy()
    front[inside] = tz[inside] <= reach[row[inside], col[inside]] + tol
    return _View(uv, col, row, front)


def _photo_colours(view: _View, photo: PhotoObject, colours) -> np.ndarray:
    """Texels the camera saw inside the visible mask: their (bilinear) photo colour."""
    mask = _sampling_mask(photo.mask)
    idx = np.nonzero(view.front)[0]
    idx = idx[mask[view.row[idx], view.col[idx]]]
    values, weight = _bilinear(photo.rgb, mask, view.uv[idx])
    good = weight > 1e-6
    colours[idx[good]] = values[good]
    seen = np.zeros(len(colours), bool)
    seen[idx[good]] = True
    return seen


def _sampling_mask(mask: np.ndarray) -> np.ndarray:
    """The mask less its one-pixel rim (mixed with the background in real photos), unless
    that would take most of it."""
    import cv2

    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return eroded if eroded.sum() >= 0.5 * mask.sum() else mask


def _bilinear(image: np.ndarray, valid: np.ndarray, uv: np.ndarray):
    """Colours at pixel coordinates ``uv`` (n, 2) from the ``valid`` pixels around each, and
    their total bilinear weight (0: none valid)."""
    h, w = valid.shape
    x0, y0 = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    fx, fy = uv[:, 0] - x0, uv[:, 1] - y0
    total = np.zeros(len(uv))
    acc = np.zeros((len(uv), 3))
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                       (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        x, y = x0 + dx, y0 + dy
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        ok[ok] = valid[y[ok], x[ok]]
        wt = np.where(ok, wt, 0.0)
        acc[ok] += wt[ok, None] * image[y[ok], x[ok]]
        total += wt
    return acc / np.maximum(total, 1e-12)[:, None], total


def _deoccluded_colours(view: _View, photo: PhotoObject, candidates, colours) -> np.ndarray:
    """Texels facing the camera but hidden by another object: the de-occluded crop's colour
    where its amodal mask (less the visible part) covers them."""
    amodal = photo.amodal
    side = amodal.image.shape[0]
    x0, y0, x1, _ = amodal.box
    scale = (x1 - x0) / side
    if not (np.isfinite(scale) and scale > 0):
        return np.zeros(len(colours), bool)
    idx = np.nonzero(candidates & view.front)[0]
    ax = np.rint((view.uv[idx, 0] + 0.5 - x0) / scale - 0.5).astype(np.int64)
    ay = np.rint((view.uv[idx, 1] + 0.5 - y0) / scale - 0.5).astype(np.int64)
    ok = (ax >= 0) & (ax < side) & (ay >= 0) & (ay < side)
    idx, ax, ay = idx[ok], ax[ok], ay[ok]
    hidden = amodal.mask[ay, ax] & ~amodal.visible[ay, ax]
    hidden &= ~photo.mask[view.row[idx], view.col[idx]]
    idx, ax, ay = idx[hidden], ax[hidden], ay[hidden]
    colours[idx] = amodal.image[ay, ax, :3]
    found = np.zeros(len(colours), bool)
    found[idx] = True
    return found


def _fill(points, known, colours, mesh, atlas, faces) -> dict:
    """Colour the texels the photo did not show (see the module docstring). Texels next to
    the seen part take their nearest seen texel's colour; farther ones are looked up by voxel
    (FILL_VOXEL canonical units): the texels of one voxel share a source."""
    from scipy.spatial import cKDTree

    stats = {"nearest": 0.0, "mirrored": 0.0, "generator": 0.0}
    source = np.nonzero(known)[0]
    if len(source) > MAX_TREE_POINTS:
        source = source[np.linspace(0, len(source) - 1, MAX_TREE_POINTS).astype(np.int64)]
    tree = cKDTree(points[source], balanced_tree=False, compact_nodes=False)
    todo = np.nonzero(~known)[0]
    dist, near = tree.query(points[todo], k=1, distance_upper_bound=2 * FILL_VOXEL)
    close = np.isfinite(dist)
    colours[todo[close]] = colours[source[near[close]]]
    nearest = int(close.sum())
    todo = todo[~close]
    if len(todo):
        cells = np.floor(points[todo] / FILL_VOXEL).astype(np.int64)
        cells -= cells.min(0)
        key = (cells[:, 0] * (cells[:, 1].max() + 1) + cells[:, 1]) * (cells[:, 2].max() + 1)
        _, first, member = np.unique(key + cells[:, 2], return_index=True, return_inverse=True)
        member = member.ravel()
        query = points[todo[first]]
        dist_m, near_m = tree.query(query * np.array([-1.0, 1.0, 1.0]), k=1,
                                    distance_upper_bound=MIRROR_RADIUS)  # fmt: skip
        mirror = np.isfinite(dist_m)[member]  # its mirror image lies on the seen part
        colours[todo[mirror]] = colours[source[near_m[member[mirror]]]]
        stats["mirrored"] = float(mirror.sum() / len(points))
        rest = todo[~mirror]
        own = _generator_colours(mesh, atlas, faces, rest)
        if own is not None:
            colours[rest] = own
            stats["generator"] = float(len(rest) / len(points))
        elif len(rest):
            # far from the seen part every point is nearly as close: an approximate nearest
            # (within 1.5x the distance) is as plausible and much faster
            voxels = np.unique(member[~mirror])
            _, near_v = tree.query(query[voxels], k=1, eps=0.5)
            lookup = np.zeros(len(query), np.int64)
            lookup[voxels] = near_v
            colours[rest] = colours[source[lookup[member[~mirror]]]]
            nearest += len(rest)
    stats["nearest"] = float(nearest / len(points))
    return stats


def _generator_colours(mesh, atlas, faces, texels):
    """The mesh's own vertex or face colours at ``texels``, or None if it has none."""
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    try:
        if kind == "vertex":
            vc = np.asarray(visual.vertex_colors, np.float64)[:, :3]
            corner = vc[faces[atlas.texel_face[texels]]]
            return np.einsum("tk,tkd->td", atlas.texel_bary[texels], corner)
        if kind == "face":
            fc = np.asarray(visual.face_colors, np.float64)[:, :3]
            return fc[atlas.texel_face[texels]]
    except (IndexError, ValueError):  # colours that do not match the mesh: ignore them
        return None
    return None
