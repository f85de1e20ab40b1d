"""Scene, shape, pose and physical-plausibility metrics (PAPER.md, "Evaluation protocol").

Point sets are (N, 3) float arrays; boxes are (2, 3) arrays ``[min, max]``; poses are plain
tuples ``(R (3, 3), t (3,), s)`` meaning ``p = R (s/2 p_canonical) + t`` (canonical objects
span [-1, 1] on their longest side), so this module does not depend on the scene classes.
Formulas are in each docstring and collected in docs/DATA.md ("Metrics").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from scenemaker.geometry.icp import icp
from scenemaker.geometry.rotations import geodesic_angle

from ..geometry.solids import winding_number
from ..geometry.validation import as_points

NORMALIZED_HALF_EXTENT = 0.95
"""Scenes (and objects, for CD-O / F-O) are scaled to fit [-0.95, 0.95]^3."""


def _point_list(name: str, value) -> list[np.ndarray]:
    if isinstance(value, np.ndarray) and value.ndim == 2:
        raise ValueError(f"{name} must be a list of (N, 3) arrays, got a single array")
    items = [as_points(f"{name}[{i}]", p) for i, p in enumerate(value)]
    if not items:
        raise ValueError(f"{name} must hold at least one object")
    return items


# ----------------------------------------------------------------------------- point clouds


def normalize_scene(
    points_list: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Centre and uniformly scale a scene (a list of (N_i, 3) objects) into [-0.95, 0.95]^3.

    ``c = (min + max) / 2`` of the scene's axis-aligned box over all points and
    ``k = 0.95 / max_{i,j} |p_ij - c_j|`` (max over points and axes, i.e. 1.9 / longest box
    side), so the longest side spans exactly [-0.95, 0.95]. Each point maps to ``k (p - c)``.
    A scene with zero extent is only centred (k = 1).

    Returns:
        (normalised objects in input order, c (3,), k).
    """
    objects = _point_list("points_list", points_list)
    stacked = np.concatenate(objects)
    lo, hi = stacked.min(0), stacked.max(0)
    center = (lo + hi) / 2.0
    half = float((hi - lo).max() / 2.0)
    scale = NORMALIZED_HALF_EXTENT / half if half > 0 else 1.0
    return [(p - center) * scale for p in objects], center, scale


def _nn_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each a-point to its nearest b-point, and of each b-point to a."""
    d_ab, _ = cKDTree(b).query(a, k=1, workers=-1)
    d_ba, _ = cKDTree(a).query(b, k=1, workers=-1)
    return d_ab, d_ba


def _chamfer(d_ab: np.ndarray, d_ba: np.ndarray) -> float:
    return float(np.mean(d_ab**2) + np.mean(d_ba**2))


def _f_score(d_ab: np.ndarray, d_ba: np.ndarray, threshold: float) -> float:
    precision = float(np.mean(d_ab < threshold))
    recall = float(np.mean(d_ba < threshold))
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance with squared distances (the protocol's CD).

    ``CD(A, B) = mean_{a in A} min_{b in B} ||a - b||^2 + mean_{b in B} min_{a in A} ||b - a||^2``
    """
    return _chamfer(*_nn_distances(as_points("a", a), as_points("b", b)))


def f_score(a: np.ndarray, b: np.ndarray, threshold: float = 0.1) -> float:
    """F-score in [0, 1] at a Euclidean distance threshold tau.

    ``P = |{a : min_b ||a - b|| < tau}| / |A|`` (precision, prediction ``a`` near ``b``),
    ``R = |{b : min_a ||b - a|| < tau}| / |B|`` (recall), ``F = 2 P R / (P + R)`` (0 when
    P + R = 0). The comparison is strict: a point exactly at tau does not count.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    return _f_score(*_nn_distances(as_points("a", a), as_points("b", b)), float(threshold))


# ----------------------------------------------------------------------------- boxes


def aabb(points: np.ndarray) -> np.ndarray:
    """Axis-aligned box of (N, 3) points as a (2, 3) array ``[min, max]``."""
    points = as_points("points", points)
    return np.stack([points.min(0), points.max(0)])


def box_iou_batched(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of axis-aligned boxes (..., 2, 3) vs (..., 2, 3), broadcast over leading axes.

    ``I = prod_j max(0, min(hi_a, hi_b)_j - max(lo_a, lo_b)_j)``, ``U = V_a + V_b - I``,
    ``IoU = I / U``. Boxes of zero volume (flat objects) give U = 0: IoU is then 1 for
    identical boxes and 0 otherwise. Pass ``a[:, None]`` and ``b[None]`` for a K x L matrix.
    """
    boxes_a = np.asarray(boxes_a, dtype=np.float64)
    boxes_b = np.asarray(boxes_b, dtype=np.float64)
    for name, boxes in (("boxes_a", boxes_a), ("boxes_b", boxes_b)):
        if boxes.ndim < 2 or boxes.shape[-2:] != (2, 3):
            raise ValueError(f"{name} must have shape (..., 2, 3), got {boxes.shape}")
        if not np.isfinite(boxes).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if (boxes[..., 1, :] < boxes[..., 0, :]).any():
            raise ValueError(f"{name} has a max corner below its min corner")
    lo = np.maximum(boxes_a[..., 0, :], boxes_b[..., 0, :])
    hi = np.minimum(boxes_a[..., 1, :], boxes_b[..., 1, :])
    inter = np.clip(hi - lo, 0.0, None).prod(-1)
    vol_a = (boxes_a[..., 1, :] - boxes_a[..., 0, :]).prod(-1)
    vol_b = (boxes_b[..., 1, :] - boxes_b[..., 0, :]).prod(-1)
    union = vol_a + vol_b - inter
    same = np.all(boxes_a == boxes_b, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), same.astype(float))
    return iou


def box_iou(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """IoU of two axis-aligned boxes given as (2, 3) ``[min, max]`` (see box_iou_batched)."""
    box_a, box_b = np.asarray(box_a, dtype=np.float64), np.asarray(box_b, dtype=np.float64)
    if box_a.shape != (2, 3) or box_b.shape != (2, 3):
        raise ValueError(
            f"box_a and box_b must have shape (2, 3), got {box_a.shape}, {box_b.shape}"
        )
    return float(box_iou_batched(box_a, box_b))


# ----------------------------------------------------------------------------- scene protocol


def scene_metrics(
    pred_objects: Sequence[np.ndarray],
    gt_objects: Sequence[np.ndarray],
    align: bool = False,
    icp_iterations: int = 50,
    f_threshold: float = 0.1,
    pred_poses: Sequence | None = None,
    gt_poses: Sequence | None = None,
) -> dict[str, float]:
    """The MIDI / SceneMaker scene metrics for one scene; objects are matched by index.

    1. Normalise the predicted and the ground-truth scene separately (``normalize_scene``).
    2. If ``align``: rigid ICP (``icp_iterations`` rounds) moves the normalised predicted scene
       onto the normalised ground-truth scene; the same matrix moves every predicted object.
    3. ``cd_s`` / ``f_score_s``: chamfer_distance / f_score of the union of all objects.
    4. ``cd_o`` / ``f_score_o``: each predicted and ground-truth object normalised on its own,
       then CD / F, averaged over objects: a shape measure. With ``pred_poses`` / ``gt_poses``
       ((R, t, s) per object) each object is first taken back to its canonical frame,
       p -> R^T (p - t) / (s / 2), so ground-truth meshes score ~0 whatever the pose, as the
       protocol intends; without poses the objects are compared in the scene's axes and a
       rotation error also counts.
    5. ``iou_b``: box_iou of each object's AABB in the (aligned) normalised scene frames,
       averaged over objects.

    F-scores are in [0, 1] (the paper prints them x100).
    """
    pred = _point_list("pred_objects", pred_objects)
    gt = _point_list("gt_objects", gt_objects)
    if len(pred) != len(gt):
        raise ValueError(
            f"pred_objects and gt_objects must hold the same number of objects, "
            f"got {len(pred)} and {len(gt)}"
        )
    if not f_threshold > 0:
        raise ValueError(f"f_threshold must be positive, got {f_threshold}")
    pred_n, _, _ = normalize_scene(pred)
    gt_n, _, _ = normalize_scene(gt)
    gt_union = np.concatenate(gt_n)
    if align:
        m = icp(np.concatenate(pred_n), gt_union, iterations=icp_iterations).matrix
        pred_n = [p @ m[:3, :3].T + m[:3, 3] for p in pred_n]
    d_ab, d_ba = _nn_distances(np.concatenate(pred_n), gt_union)
    cd_o, f_o = [], []
    if (pred_poses is None) != (gt_poses is None):
        raise ValueError("give both pred_poses and gt_poses, or neither")
    if pred_poses is not None:
        if not len(pred_poses) == len(gt_poses) == len(pred):
            raise ValueError("pred_poses and gt_poses need one pose per object")
        pred = [
            _to_canonical(p, _pose("pred_poses", q)) for p, q in zip(pred, pred_poses, strict=True)
        ]
        gt = [_to_canonical(g, _pose("gt_poses", q)) for g, q in zip(gt, gt_poses, strict=True)]
    for p, g in zip(pred, gt, strict=True):
        (p_obj,), _, _ = normalize_scene([p])
        (g_obj,), _, _ = normalize_scene([g])
        d_pg, d_gp = _nn_distances(p_obj, g_obj)
        cd_o.append(_chamfer(d_pg, d_gp))
        f_o.append(_f_score(d_pg, d_gp, f_threshold))
    boxes_pred = np.stack([aabb(p) for p in pred_n])
    boxes_gt = np.stack([aabb(g) for g in gt_n])
    return {
        "cd_s": _chamfer(d_ab, d_ba),
        "f_score_s": _f_score(d_ab, d_ba, f_threshold),
        "cd_o": float(np.mean(cd_o)),
        "f_score_o": float(np.mean(f_o)),
        "iou_b": float(np.mean(box_iou_batched(boxes_pred, boxes_gt))),
    }


# ----------------------------------------------------------------------------- pose errors


def _pose(name: str, pose) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        rotation, translation, size = pose
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tuple (R (3, 3), t (3,), s)") from None
    rotation = np.asarray(rotation, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    size = float(size)
    if rotation.shape != (3, 3) or translation.shape != (3,):
        raise ValueError(
            f"{name} must be (R (3, 3), t (3,), s), got R {rotation.shape}, t {translation.shape}"
        )
    if not (np.isfinite(rotation).all() and np.isfinite(translation).all() and size > 0):
        raise ValueError(f"{name} must be finite with a positive size, got s={size}")
    return rotation, translation, size


def _to_canonical(points: np.ndarray, pose) -> np.ndarray:
    rotation, translation, size = pose
    return (points - translation) @ rotation / (size / 2.0)


def rotation_error_deg(r_pred: np.ndarray, r_gt: np.ndarray) -> float | np.ndarray:
    """Geodesic angle in degrees, ``arccos((trace(R_pred^T R_gt) - 1) / 2)``, in [0, 180].

    Takes (3, 3) or batched (..., 3, 3) rotations (broadcast); returns a float or an array.
    """
    r_pred, r_gt = np.asarray(r_pred, dtype=np.float64), np.asarray(r_gt, dtype=np.float64)
    for name, r in (("r_pred", r_pred), ("r_gt", r_gt)):
        if r.ndim < 2 or r.shape[-2:] != (3, 3):
            raise ValueError(f"{name} must have shape (..., 3, 3), got {r.shape}")
    deg = np.degrees(geodesic_angle(r_pred, r_gt))
    return float(deg) if np.ndim(deg) == 0 else deg


def add_s(canonical_points: np.ndarray, pose_pred, pose_gt, pred_points=None) -> float:
    """Symmetry-aware average distance (ADD-S), relative to the ground-truth size.

    With ``X_gt = {R_gt (s_gt/2 x) + t_gt}`` and ``X_pred = {R_pred (s_pred/2 x) + t_pred}``
    over the canonical points x: ``ADD-S = mean_{p in X_gt} min_{q in X_pred} ||p - q|| / s_gt``.
    Poses that differ by a symmetry of the object score ~0. ``pred_points``: the prediction's
    own canonical points when its mesh differs (a stretched copy), else ``canonical_points``.
    """
    points = as_points("canonical_points", canonical_points)
    mine = points if pred_points is None else as_points("pred_points", pred_points)
    r_p, t_p, s_p = _pose("pose_pred", pose_pred)
    r_g, t_g, s_g = _pose("pose_gt", pose_gt)
    posed_pred = mine @ (r_p * (s_p / 2.0)).T + t_p
    posed_gt = points @ (r_g * (s_g / 2.0)).T + t_g
    dist, _ = cKDTree(posed_pred).query(posed_gt, k=1, workers=-1)
    return float(dist.mean() / s_g)


def translation_error(
    t_pred: np.ndarray, t_gt: np.ndarray, scene_diagonal: float
) -> float | np.ndarray:
    """``||t_pred - t_gt|| / d`` with d the diagonal of the ground-truth scene box.

    Takes (3,) or batched (..., 3) translations; returns a float or an array.
    """
    t_pred, t_gt = np.asarray(t_pred, dtype=np.float64), np.asarray(t_gt, dtype=np.float64)
    for name, t in (("t_pred", t_pred), ("t_gt", t_gt)):
        if t.ndim < 1 or t.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (..., 3), got {t.shape}")
    if not scene_diagonal > 0:
        raise ValueError(f"scene_diagonal must be positive, got {scene_diagonal}")
    err = np.linalg.norm(t_pred - t_gt, axis=-1) / float(scene_diagonal)
    return float(err) if np.ndim(err) == 0 else err


def size_error(s_pred, s_gt) -> float | np.ndarray:
    """Relative size error ``|s_pred / s_gt - 1|`` (scalars or arrays, broadcast)."""
    s_pred, s_gt = np.asarray(s_pred, dtype=np.float64), np.asarray(s_gt, dtype=np.float64)
    if not (s_gt > 0).all():
        raise ValueError("s_gt must be positive")
    err = np.abs(s_pred / s_gt - 1.0)
    return float(err) if np.ndim(err) == 0 else err


# ----------------------------------------------------------------------------- interpenetration

INTERPENETRATION_METHODS = ("auto", "exact", "monte_carlo")


def _check_mesh(name: str, mesh) -> None:
    faces = getattr(mesh, "faces", None)
    vertices = getattr(mesh, "vertices", None)
    if faces is None or vertices is None:
        raise ValueError(f"{name} must be a trimesh.Trimesh, got {type(mesh).__name__}")
    if len(faces) == 0:
        raise ValueError(f"{name} has no faces")
    if not np.isfinite(np.asarray(vertices)).all():
        raise ValueError(f"{name} has NaN or infinite vertices")


def _manifold(mesh):
    """manifold3d solid of a watertight trimesh, or None when it is not a closed manifold."""
    import manifold3d

    if not mesh.is_watertight:
        return None
    faces = np.asarray(mesh.faces)
    if mesh.volume < 0:  # inward-facing winding: flip so the solid is the inside, not the outside
        faces = faces[:, ::-1]
    solid = manifold3d.Manifold(
        manifold3d.Mesh(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float32),
            tri_verts=np.ascontiguousarray(faces, dtype=np.uint32),
        )
    )
    return solid if solid.status() == manifold3d.Error.NoError else None


def _monte_carlo_intersection(mesh_a, mesh_b, samples: int, seed: int) -> float:
    """Seeded Monte-Carlo estimate of vol(A ∩ B) inside the intersection of their boxes."""
    lo = np.maximum(mesh_a.bounds[0], mesh_b.bounds[0])
    hi = np.minimum(mesh_a.bounds[1], mesh_b.bounds[1])
    if (hi <= lo).any():
        return 0.0
    points = np.random.default_rng(seed).uniform(lo, hi, size=(samples, 3))
    tri_a = np.asarray(mesh_a.triangles, dtype=np.float64)
    tri_b = np.asarray(mesh_b.triangles, dtype=np.float64)
    in_a = np.abs(winding_number(points, tri_a)) > 0.5
    in_both = np.abs(winding_number(points[in_a], tri_b)) > 0.5
    return float(np.prod(hi - lo) * in_both.sum() / samples)


def _pair_volume(mesh_a, mesh_b, solid_a, solid_b, method: str, samples: int, seed: int) -> float:
    have_solids = solid_a is not None and solid_b is not None
    if method == "exact" and not have_solids:
        raise ValueError("method='exact' needs two watertight, manifold meshes")
    lo = np.maximum(mesh_a.bounds[0], mesh_b.bounds[0])
    hi = np.minimum(mesh_a.bounds[1], mesh_b.bounds[1])
    if (hi <= lo).any():
        return 0.0
    if method != "monte_carlo" and have_solids:
        return float((solid_a ^ solid_b).volume())
    return _monte_carlo_intersection(mesh_a, mesh_b, samples, seed)


def _check_method(method: str, samples: int) -> None:
    if method not in INTERPENETRATION_METHODS:
        raise ValueError(f"method must be one of {INTERPENETRATION_METHODS}, got {method!r}")
    if int(samples) < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")


def interpenetration_volume(
    mesh_a, mesh_b, method: str = "auto", samples: int = 10_000, seed: int = 0
) -> float:
    """Volume of the intersection of two posed trimesh meshes (same frame and units).

    ``method="exact"``: manifold3d boolean ``vol(A ∩ B)``; both meshes must be watertight
    manifolds (ValueError otherwise). ``"monte_carlo"``: draw ``samples`` seeded uniform
    points in the intersection B of the two bounding boxes and return
    ``vol(B) * #{x inside A and inside B} / samples``, where "inside" is |generalised winding
    number| > 0.5 (valid for open or self-intersecting meshes; cost ~ samples x faces, and
    standard error ``vol(B) sqrt(q (1 - q) / samples)`` for hit rate q). ``"auto"``: exact
    when both meshes are watertight manifolds, Monte-Carlo otherwise. Disjoint boxes give 0.
    """
    _check_method(method, samples)
    _check_mesh("mesh_a", mesh_a)
    _check_mesh("mesh_b", mesh_b)
    exact = method != "monte_carlo"
    solid_a = _manifold(mesh_a) if exact else None
    solid_b = _manifold(mesh_b) if exact else None
    return _pair_volume(mesh_a, mesh_b, solid_a, solid_b, method, int(samples), seed)


def pairwise_interpenetration(
    meshes: Sequence, method: str = "auto", samples: int = 10_000, seed: int = 0
) -> tuple[float, np.ndarray]:
    """Intersection volumes of every pair of posed meshes (see interpenetration_volume).

    Returns ``(sum_{i<j} V_ij, V)`` with V a symmetric (K, K) matrix, zero diagonal.
    """
    _check_method(method, samples)
    meshes = list(meshes)
    for i, mesh in enumerate(meshes):
        _check_mesh(f"meshes[{i}]", mesh)
    exact = method != "monte_carlo"
    solids = [_manifold(m) if exact else None for m in meshes]
    volumes = np.zeros((len(meshes), len(meshes)))
    for i in range(len(meshes)):
        for j in range(i + 1, len(meshes)):
            v = _pair_volume(meshes[i], meshes[j], solids[i], solids[j], method, int(samples), seed)
            volumes[i, j] = volumes[j, i] = v
    return float(np.triu(volumes, 1).sum()), volumes
