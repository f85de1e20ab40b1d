"""What one library mesh looks like from the retrieval view grid (``retrieval``'s descriptors).

Views: ``VIEW_YAWS`` x ``VIEW_ELEVATIONS``, orthographic, a camera above the object looking
down (as in photos of rooms). Per view, :func:`describe_mesh` keeps the silhouette cropped to
its box and scaled so its longest side fills a ``SIL`` x ``SIL`` raster, the box aspect ratio,
the view's projected extents (canonical units) and its *relief*: the depth extent of the
surface a depth camera would see from there, over the silhouette's longest side (flat objects
~0, deep ones ~1); plus ``SAMPLES`` surface samples with normals for the 3-D re-ranking.
"""

from __future__ import annotations

import numpy as np

from ..geometry.camera import CV_TO_GL3

VIEW_YAWS = np.radians(np.arange(0.0, 360.0, 22.5))
VIEW_ELEVATIONS = np.radians([12.0, 38.0])  # photos of rooms: cameras ~5-50 degrees up
SIL = 32  # silhouette raster side (pixels)
SAMPLES = 1024  # surface samples per mesh for re-ranking
DESCRIPTOR_FIELDS = ("silhouettes", "aspects", "extents", "reliefs", "samples", "normals")


def view_rotation(yaw: float, elevation: float) -> np.ndarray:
    """Canonical frame (+y up, +z front) -> OpenCV frame of a camera ``elevation`` radians
    above the object looking down at it, the object turned by ``yaw`` about its +y."""
    from ..geometry.rotations import yaw_matrix

    c, s = np.cos(elevation), np.sin(elevation)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return pitch @ CV_TO_GL3 @ yaw_matrix(yaw)


VIEW_ROTATIONS = np.stack([view_rotation(y, e) for y in VIEW_YAWS for e in VIEW_ELEVATIONS])


def normalised_silhouette(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """(SIL * SIL,) bool raster of ``mask`` cropped to its box, longest side filling the raster
    (centred), and the box aspect ratio width / height."""
    import cv2

    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("silhouette mask is empty")
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    h, w = y1 - y0, x1 - x0
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    oy, ox = (side - h) // 2, (side - w) // 2
    square[oy : oy + h, ox : ox + w] = mask[y0:y1, x0:x1]
    small = cv2.resize(square, (SIL, SIL), interpolation=cv2.INTER_AREA)
    return (small >= 0.5).ravel(), float(w) / float(h)


def visible_samples(view_points: np.ndarray, view_normals: np.ndarray, grid: int = 16):
    """Samples a camera looking along +z sees (orthographic): facing it and not behind nearer
    samples in a coarse ``grid`` x ``grid`` z-buffer over their extent. (N,) bool."""
    xy, depth = view_points[:, :2], view_points[:, 2]
    lo = xy.min(0)
    longest = max(float((xy.max(0) - lo).max()), 1e-9)
    cell = np.minimum(((xy - lo) / longest * grid).astype(np.int64), grid - 1)
    flat = cell[:, 1] * grid + cell[:, 0]
    facing = view_normals[:, 2] < 0
    nearest = np.full(grid * grid, np.inf)
    np.minimum.at(nearest, flat[facing], depth[facing])
    return facing & (depth <= nearest[flat] + 0.1 * longest)


def relief(view_points: np.ndarray, view_normals: np.ndarray) -> float:
    """5th-95th percentile depth extent of the seen samples over the longest projected side."""
    seen = visible_samples(view_points, view_normals)
    longest = float((view_points[:, :2].max(0) - view_points[:, :2].min(0)).max())
    if seen.sum() < 8 or longest <= 0:
        return 0.0
    low, high = np.percentile(view_points[seen, 2], [5, 95])
    return float((high - low) / longest)


def describe_mesh(mesh, seed: int = 0) -> dict[str, np.ndarray]:
    """Descriptors of one canonical ``trimesh.Trimesh`` (see the module docstring), keyed by
    ``DESCRIPTOR_FIELDS``."""
    import cv2

    from ..geometry.sampling import sample_surface

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    face_normals = np.asarray(mesh.face_normals)
    closed = bool(mesh.is_watertight)
    points, normals = sample_surface(mesh, SAMPLES, seed=seed)
    n_views = len(VIEW_ROTATIONS)
    silhouettes = np.zeros((n_views, SIL * SIL), dtype=bool)
    aspects, reliefs, extents = np.zeros(n_views), np.zeros(n_views), np.zeros((n_views, 2))
    raster = 4 * SIL
    for k, rotation in enumerate(VIEW_ROTATIONS):
        xy = vertices @ rotation[:2].T
        lo, hi = xy.min(0), xy.max(0)
        extents[k] = hi - lo
        pixels = ((xy - (lo + hi) / 2) / (hi - lo).max() * (raster - 4) + raster / 2) * 16
        # a closed surface's silhouette is the union of its camera-facing triangles
        drawn = faces[face_normals @ rotation[2] <= 0] if closed else faces
        image = np.zeros((raster, raster), dtype=np.uint8)
        for triangle in np.rint(pixels[drawn]).astype(np.int32):  # fillPoly would XOR overlaps
            cv2.fillConvexPoly(image, triangle, 1, cv2.LINE_8, 4)
        silhouettes[k], aspects[k] = normalised_silhouette(image > 0)
        reliefs[k] = relief(points @ rotation.T, normals @ rotation.T)
    return {
        "silhouettes": np.packbits(silhouettes, axis=1),
        "aspects": aspects,
        "extents": extents,
        "reliefs": reliefs,
        "samples": points.astype(np.float16),
        "normals": normals.astype(np.float16),
    }
