"""Pose-estimation benchmark: every method through the same ``PoseEstimator`` interface on
held-out scenes, the scene protocol's metrics plus pose errors, bootstrap intervals and
breakdowns by occlusion and object count.

Per evaluated view: the observation is the view's depth, intrinsics and visible instance
masks; the canonical meshes are the ground-truth ones (or perturbed copies); predictions and
ground truth are compared in the camera frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scene import Pose

METRICS = (
    "iou_b",
    "size_err_m",
    "cd_s",
    "f_score_s",
    "cd_o",
    "f_score_o",
    "rot_err_deg",
    "add_s",
    "trans_err",
    "size_err",
    "seconds_per_scene",
)
OCCLUSION_BINS = {
    "visible<0.5": (0.0, 0.5),
    "visible0.5-0.8": (0.5, 0.8),
    "visible>0.8": (0.8, 1.01),
}


@dataclass
class SceneRecord:
    method: str
    scene: str
    n_objects: int
    seconds: float
    scene_metrics: dict
    objects: list[dict] = field(default_factory=list)  # per object: errors + visible fraction
    failed: int = 0  # evaluable objects the method returned no pose for


def camera_frame_pose(pose: Pose, world_to_camera: np.ndarray) -> Pose:
    R = world_to_camera[:3, :3]
    return Pose(R @ pose.R, R @ pose.t + world_to_camera[:3, 3], pose.s)


def compensate_pose(pose: Pose, T: np.ndarray) -> Pose:
    """The pose that places a mesh whose canonical frame was changed by the similarity ``T``
    (q' = T q) exactly where ``pose`` placed the original: p = R (s/2 q) + t."""
    A = T[:3, :3]
    scale = float(np.cbrt(abs(np.linalg.det(A))))
    rotation = A / scale
    new_R = pose.R @ rotation.T
    new_t = pose.t - (pose.s / 2) / scale * (new_R @ T[:3, 3])
    return Pose(new_R, new_t, pose.s / scale)


def make_perturbation(name: str):
    """None | a ``perturb(mesh, rng, object_id, source_name) -> (mesh, T)`` for ``name``."""
    from .perturb import densify, other_instance, perturb_mesh

    if name in ("none", None):
        return None
    if name in ("level1", "level2"):
        level = int(name[-1])
        return lambda mesh, rng, obj: perturb_mesh(mesh, rng, level)
    if name == "dense":  # the same shapes as dense as scans: what scoring decimates
        return lambda mesh, rng, obj: densify(mesh)
    if name == "instance":
        from ..sources import get_source

        source = get_source("procedural")

        def swap(mesh, rng, obj):
            if obj.source != "procedural":
                raise ValueError("--perturb instance needs procedural objects")
            return other_instance(obj.object_id, source)

        return swap
    raise ValueError(f"unknown perturbation {name!r}")


def generator_like(perturb: str | None) -> str:
    """The ``scenemaker run`` generator whose meshes the perturbation ``perturb`` stands for:
    ``oracle`` (none, dense: the objects' own shapes), ``retrieval`` (instance: another
    object of the category), ``external`` (level1, level2: image-to-3D's deformed meshes)."""
    if perturb in (None, "none", "dense"):
        return "oracle"
    return "retrieval" if perturb == "instance" else "external"


def build_methods(
    names: list[str],
    weights=None,
    steps: int | None = None,
    seed: int = 0,
    guidance: float | None = None,
    generator: str = "oracle",
) -> dict:
    """The named methods. ``default`` is the chain ``scenemaker run --generator GENERATOR``
    uses (:func:`generator_like`: the oracle's for the objects' own meshes; the generator
    decides whether the refiner fits proportions, ``--stretch auto``)."""
    from ..backends import build_backend
    from ..pipeline import PipelineConfig
    from ..pose.baselines import BoxFitEstimator, DiTIcpEstimator, OracleEstimator
    from ..pose.estimator import DiTPoseEstimator

    def registered(pose: str):  # built by the registry `scenemaker run` uses
        cfg = PipelineConfig(
            pose=pose, pose_weights=None if weights is None else str(weights), pose_steps=steps,
            guidance=guidance, seed=seed, pose_samples=1,
        )  # fmt: skip
        return build_backend("pose", cfg)

    methods = {}
    for name in names:
        if name in ("dit", "box_fit", "registration"):
            methods[name] = registered(name)
        elif name == "dit_icp":
            methods[name] = DiTIcpEstimator(
                DiTPoseEstimator(weights, steps=steps, seed=seed, guidance=guidance)
            )
        elif name in ("dit_fit", "dit_box_fit"):
            from ..pose.baselines import FitRefinedEstimator

            dit = DiTPoseEstimator(weights, steps=steps, seed=seed, guidance=guidance)
            methods[name] = FitRefinedEstimator(
                dit, with_box_fit=name == "dit_box_fit", seed=seed, name=name
            )
        elif name == "box_fit_fit":
            from ..pose.baselines import FitRefinedEstimator

            methods[name] = FitRefinedEstimator(BoxFitEstimator(seed=seed), seed=seed, name=name)
        elif name == "oracle":
            methods[name] = OracleEstimator()
        elif name == "default":
            methods[name] = default_chain(weights, steps, seed, guidance, generator=generator)
        else:
            raise ValueError(
                f"unknown method {name!r}; choose from default, dit, dit_icp, dit_fit, "
                "dit_box_fit, box_fit, box_fit_fit, registration, oracle"
            )
    return methods


def default_chain(weights=None, steps=None, seed: int = 0, guidance=None, **config):
    """The pose + refine chain ``scenemaker run`` uses, built the same way from a
    :class:`~scenemaker.pipeline.PipelineConfig` (``config`` overrides its fields)."""
    from ..backends import build_backend
    from ..pipeline import PipelineConfig
    from ..pose.chain import ProposeVerifyEstimator

    cfg = PipelineConfig(
        pose_weights=None if weights is None else str(weights), pose_steps=steps,
        guidance=guidance, seed=seed, **config,
    )  # fmt: skip
    return ProposeVerifyEstimator(build_backend("pose", cfg), build_backend("refiner", cfg))


def evaluate_scenes(
    roots: list[str | Path],
    methods: dict,
    max_scenes: int | None = None,
    view_index: int = 0,
    samples_per_object: int = 4096,
    perturb=None,
    progress: bool = True,
    depth_noise: int = 0,
    novel_view: int | None = None,
    physics: bool = False,
    start: int = 0,
) -> list[SceneRecord]:
    """Run every method on one view of each scene; ``perturb(mesh, rng, obj) -> (mesh, T)`` may
    replace each canonical mesh by a perturbed, re-canonicalised copy (T maps the original
    canonical frame into the new one; the ground truth follows). ``depth_noise`` (0, 1, 2)
    degrades the observed depth (:mod:`scenemaker.eval.depth_noise`); the ground truth stays
    metric, so a depth scale error shows in the absolute size error ``size_err_m``.
    ``novel_view``: also render each output (posed from ``view_index``) in that other view of
    the scene and compare every object's visible mask with the true one (``novel_mask_iou``).
    ``physics``: also the interpenetration of the placed objects and their contact gap
    (:func:`physical_plausibility`). ``start``: skip the first this many scenes (then take up
    to ``max_scenes``)."""
    import warnings

    from tqdm.auto import tqdm

    from ..eval.metrics import add_s, rotation_error_deg, scene_metrics
    from ..geometry.sampling import sample_surface
    from ..pose.estimator import Observation, prepare_objects
    from ..synth.dataset import list_scenes

    scenes = [s for root in roots for s in list_scenes(root)]
    if not scenes:
        raise FileNotFoundError(f"no scenes in {', '.join(map(str, roots))}")
    scenes = scenes[start:]
    scenes = scenes[:max_scenes] if max_scenes else scenes
    records: list[SceneRecord] = []
    for k, scene in enumerate(tqdm(scenes, desc="evaluating", unit="scene", disable=not progress)):
        view = scene.view(min(view_index, scene.num_views - 1))
        objects = scene.scene.objects
        w2c = view.camera.world_to_camera
        stats = {o["instance_id"]: o for o in view.objects}
        rng = np.random.default_rng(k)
        meshes, gt, truth_pts, truth_poses = [], [], [], []
        for j, obj in enumerate(objects):
            mesh, pose = obj.mesh, obj.pose
            # the scene metrics compare against the true surface, whatever mesh is given
            true_pose = camera_frame_pose(pose, w2c)
            truth_poses.append(true_pose)
            truth_pts.append(true_pose.apply(sample_surface(mesh, samples_per_object, seed=j)[0]))
            if perturb is not None:
                mesh, T = perturb(mesh, rng, obj)
                pose = compensate_pose(pose, T)
            meshes.append(mesh)
            gt.append(camera_frame_pose(pose, w2c))
        masks = [view.instance == o.instance_id for o in objects]
        depth = view.depth
        if depth_noise:
            from .depth_noise import degrade_depth

            depth = degrade_depth(depth, depth_noise, np.random.default_rng(10_000 + k))
        observation = Observation(depth, view.camera.K, masks)
        canon = [sample_surface(m, samples_per_object, seed=j)[0] for j, m in enumerate(meshes)]
        # every method is scored on the same objects: those with enough observed points
        # (the oracle would otherwise also score objects hidden in this view)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluable = prepare_objects(observation, meshes, num_points=64, num_canonical=8).indices
        if not evaluable:
            continue
        for name, method in methods.items():
            if hasattr(method, "set_ground_truth"):
                method.set_ground_truth(gt)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = method.estimate(observation, meshes)
            seconds = time.perf_counter() - start
            confidences = result.confidences or []
            keep = [j for j in evaluable if result.poses[j] is not None]
            placed, points = _stretched(meshes, canon, result.stretches)
            failed = len(evaluable) - len(keep)
            if len(keep) == 0:
                records.append(
                    SceneRecord(name, scene.folder.name, len(objects), seconds, {}, [], failed)
                )
                continue
            pred_pts = [result.poses[j].apply(points[j]) for j in keep]
            gt_pts = [truth_pts[j] for j in keep]
            sm = scene_metrics(
                pred_pts,
                gt_pts,
                pred_poses=[
                    (result.poses[j].R, result.poses[j].t, result.poses[j].s) for j in keep
                ],
                gt_poses=[(truth_poses[j].R, truth_poses[j].t, truth_poses[j].s) for j in keep],
            )
            allg = np.concatenate(gt_pts)
            diagonal = float(np.linalg.norm(allg.max(0) - allg.min(0)))
            per_object = []
            for j in keep:
                p, g = result.poses[j], gt[j]
                per_object.append(
                    {
                        "rot_err_deg": float(rotation_error_deg(p.R, g.R)),
                        "add_s": add_s(
                            canon[j][:1024], (p.R, p.t, p.s), (g.R, g.t, g.s), points[j][:1024]
                        ),
                        "trans_err": float(np.linalg.norm(p.t - g.t) / diagonal),
                        "size_err": float(abs(p.s / g.s - 1.0)),
                        "size_err_m": float(abs(p.s - g.s)),
                        "confidence": confidences[j] if j < len(confidences) else None,
                        "visible_fraction": float(
                            stats[objects[j].instance_id]["visible_fraction"]
                        ),
                    }
                )
            if physics:
                sm.update(
                    physical_plausibility(
                        [result.poses[j] for j in keep], [placed[j] for j in keep], w2c,
                        [truth_poses[j].s for j in keep],
                    )
                )  # fmt: skip
            if novel_view is not None and scene.num_views > novel_view:
                other = scene.view(novel_view)
                sm["novel_mask_iou"] = novel_view_mask_iou(
                    [result.poses[j] for j in keep], [placed[j] for j in keep],
                    [objects[j].instance_id for j in keep], view, other,
                )  # fmt: skip
            records.append(
                SceneRecord(name, scene.folder.name, len(objects), seconds, sm, per_object, failed)
            )
    return records


def _stretched(meshes, canon, stretches):
    """(meshes, canonical samples) as a method placed them: stretched where it fitted a
    stretch (refine/stretch.py), else as given."""
    if not stretches:
        return meshes, canon
    from ..refine.stretch import apply_stretch, stretch_points

    out_m, out_p = list(meshes), list(canon)
    for j, a in enumerate(stretches):
        if a is not None and j < len(meshes):
            verts = np.asarray(meshes[j].vertices)
            out_m[j] = apply_stretch(meshes[j], a)[0]
            out_p[j] = stretch_points(canon[j], verts.max(0) - verts.min(0), a)
    return out_m, out_p


def physical_plausibility(poses, meshes, world_to_camera, true_sizes) -> dict:
    """How physically plausible a placement is, in the synthetic scenes' world (floor y = 0):

    * ``interpenetration``: summed pairwise intersection volume of the placed meshes
      (Monte-Carlo winding numbers, seeded) over the summed volume of their convex hulls;
    * ``contact_gap``: mean over objects of the distance from the object's lowest point to
      what could hold it (the floor, or another placed object's surface) or, below the
      floor, its depth under it, in units of its true size.
    """
    from scipy.spatial import cKDTree

    from ..eval.metrics import pairwise_interpenetration

    c2w = np.linalg.inv(world_to_camera)
    placed = []
    for pose, mesh in zip(poses, meshes, strict=True):
        world = Pose(c2w[:3, :3] @ pose.R, c2w[:3, :3] @ pose.t + c2w[:3, 3], pose.s)
        m = mesh.copy()
        m.apply_transform(world.matrix)
        placed.append(m)
    total, _ = pairwise_interpenetration(placed, method="monte_carlo", samples=2000)
    hulls = sum(float(m.convex_hull.volume) for m in placed)
    surfaces = [np.asarray(m.sample(1500, seed=3)) for m in placed]
    gaps = []
    for k, m in enumerate(placed):
        v = np.asarray(m.vertices)
        lowest = v[:, 1].min()
        gap = abs(lowest)
        bottom = v[v[:, 1] <= lowest + 0.01 * true_sizes[k]]
        for j, other in enumerate(surfaces):
            if j != k:
                gap = min(gap, float(cKDTree(other).query(bottom)[0].min()))
        gaps.append(gap / true_sizes[k])
    return {
        "interpenetration": total / hulls if hulls > 0 else 0.0,
        "contact_gap": float(np.mean(gaps)),
    }


def novel_view_mask_iou(poses, meshes, instance_ids, view, other) -> float:
    """Mean IoU over objects of their visible masks when the output, posed in ``view``'s camera
    frame, is rendered from ``other``'s camera, against ``other``'s true instance masks
    (objects hidden in both count as agreeing; occlusion between objects and by the synthetic
    scenes' floor plane, y = 0, is rendered)."""
    from ..eval.rerender import mask_iou
    from ..render.scene import RenderObject, SceneRenderer

    c2w = np.linalg.inv(view.camera.world_to_camera)
    objects = []
    for pose, mesh, iid in zip(poses, meshes, instance_ids, strict=True):
        world = Pose(c2w[:3, :3] @ pose.R, c2w[:3, :3] @ pose.t + c2w[:3, 3], pose.s)
        objects.append(
            RenderObject(world.apply(np.asarray(mesh.vertices)), np.asarray(mesh.faces), iid,
                         (0.5, 0.5, 0.5))
        )  # fmt: skip
    camera = other.camera
    renderer = SceneRenderer(camera.width, camera.height, near=0.01, far=1000.0)
    try:
        renderer.set_scene(objects)  # the true floor hides what sinks into it, as in the data
        rendered = renderer.render(camera, with_amodal=False).instance
    finally:
        renderer.release()
    ious = [mask_iou(rendered == iid, other.instance == iid) for iid in instance_ids]
    return float(np.mean(ious)) if ious else float("nan")


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 1000) -> list[float]:
    if len(values) < 2:
        return [float("nan"), float("nan")]
    means = rng.choice(values, (n, len(values)), replace=True).mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def summarize(records: list[SceneRecord], seed: int = 0) -> dict:
    """{method: {metric: mean, metric_ci95: [lo, hi], by_occlusion: ..., by_objects: ...}}."""
    rng = np.random.default_rng(seed)
    out = {}
    for method in dict.fromkeys(r.method for r in records):
        all_rs = [r for r in records if r.method == method]
        rs = [r for r in all_rs if r.objects]
        per_scene = {m: [] for m in METRICS}
        optional = ("novel_mask_iou", "interpenetration", "contact_gap")
        for key in optional:
            if any(key in r.scene_metrics for r in rs):
                per_scene[key] = []
        for r in rs:
            for key in optional:
                if key in per_scene:
                    per_scene[key].append(r.scene_metrics.get(key, np.nan))
            for m in ("iou_b", "cd_s", "f_score_s", "cd_o", "f_score_o"):
                per_scene[m].append(r.scene_metrics[m])
            for m in ("rot_err_deg", "add_s", "trans_err", "size_err", "size_err_m"):
                per_scene[m].append(np.mean([o.get(m, np.nan) for o in r.objects]))
            per_scene["seconds_per_scene"].append(r.seconds)
        summary = {"scenes": len(rs), "failed_objects": sum(r.failed for r in all_rs)}
        for m, values in per_scene.items():
            arr = np.asarray(values, dtype=np.float64)
            summary[m] = float(arr.mean())
            summary[f"{m}_ci95"] = _bootstrap(arr, rng)
        objects = [o for r in rs for o in r.objects]
        summary.update(confidence_ranking(objects))
        summary["by_occlusion"] = {}
        for name, (lo, hi) in OCCLUSION_BINS.items():
            sel = [o for o in objects if lo <= o["visible_fraction"] < hi]
            summary["by_occlusion"][name] = {
                "objects": len(sel),
                **{
                    m: float(np.mean([o[m] for o in sel])) if sel else None
                    for m in ("rot_err_deg", "add_s", "trans_err", "size_err")
                },
            }
        summary["by_objects"] = {}
        for n in sorted({r.n_objects for r in rs}):
            sel = [r for r in rs if r.n_objects == n]
            summary["by_objects"][str(n)] = {
                "scenes": len(sel),
                "iou_b": float(np.mean([r.scene_metrics["iou_b"] for r in sel])),
                "add_s": float(np.mean([np.mean([o["add_s"] for o in r.objects]) for r in sel])),
            }
        out[method] = summary
    return out


def confidence_ranking(objects: list[dict], threshold: float = 0.1) -> dict:
    """How well per-object confidences rank errors: AUROC of (1 - confidence) for detecting
    objects with ADD-S > ``threshold``, and the Spearman correlation of confidence with ADD-S
    (negative is good). Empty when the method gives no confidences."""
    pairs = [(o["confidence"], o["add_s"]) for o in objects if o.get("confidence") is not None]
    if len(pairs) < 3:
        return {}
    from scipy.stats import mannwhitneyu, spearmanr

    conf, err = np.array(pairs, dtype=np.float64).T
    bad = err > threshold
    out = {"confidence_objects": len(pairs), "confidence_bad_objects": int(bad.sum())}
    if bad.any() and (~bad).any():
        # AUROC = P(a bad object gets a lower confidence than a good one), ties count half
        u = mannwhitneyu(conf[~bad], conf[bad], alternative="two-sided").statistic
        out["confidence_auroc"] = float(u / (bad.sum() * (~bad).sum()))
    rho = spearmanr(conf, err).statistic
    out["confidence_spearman"] = float(rho) if np.isfinite(rho) else None
    return out


def format_table(summary: dict) -> str:
    cols = (
        "iou_b",
        "size_err_m",
        "cd_s",
        "f_score_s",
        "cd_o",
        "rot_err_deg",
        "add_s",
        "trans_err",
        "size_err",
        "seconds_per_scene",
    )
    lines = ["| method | scenes | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for method, s in summary.items():
        cells = []
        for c in cols:
            lo, hi = s[f"{c}_ci95"]
            cells.append(f"{s[c]:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{s[c]:.3f}")
        lines.append(f"| {method} | {s['scenes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
