"""``scenemaker demo``: the main job on embedded defaults, checked against the ground truth.

1. Synthetic scenes of test-split objects (never in the retrieval library nor in the pose
   model's training data) are rendered: photo, metric depth, visible masks, intrinsics.
2. Each frame goes through :class:`SceneMakerPipeline` as a user's RGB-D frame would, from
   files (``--masks``, ``--depth-file``, ``--K``): classical de-occlusion, the chosen
   generator (retrieval by default), the shipped PoseDiT, render-and-compare refinement,
   GLB export.
3. The same frame with the ground-truth meshes (``oracle`` generator) checks placement alone.
4. A report compares each output with the ground truth (PAPER.md metrics: CD-S, F-Score-S,
   CD-O, F-Score-O, IoU-B) and re-renders each output scene from its exported camera to
   measure how well it reproduces the input masks (mean mask IoU).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .io_utils import atomic_write_json


def write_frame(view, objects, folder: Path) -> dict:
    """Save one rendered view as a user's RGB-D input; returns the paths and K string."""
    from .stage_io import write_png as _png

    folder.mkdir(parents=True, exist_ok=True)
    _png(folder / "image.png", view.rgb)
    from .geometry.camera import depth_to_uint16

    depth_mm = depth_to_uint16(view.depth)
    _png(folder / "depth.png", depth_mm)
    label = np.zeros(view.instance.shape, np.uint8)
    kept = []
    for obj in objects:
        mask = view.instance == obj.instance_id
        if mask.sum() >= 16:  # objects hidden in this view are not in the user's masks
            kept.append(obj)
            label[mask] = len(kept)
    _png(folder / "masks.png", label)
    K = view.camera.K
    return {
        "image": folder / "image.png",
        "depth": folder / "depth.png",
        "masks": folder / "masks.png",
        "K": f"{K[0, 0]:.6f},{K[1, 1]:.6f},{K[0, 2]:.6f},{K[1, 2]:.6f}",
        "objects": kept,
    }


def compare_to_truth(scene, truth_objects, w2c, samples: int = 4096) -> dict:
    """PAPER.md scene metrics of a pipeline output (``RunResult.scene``) vs the truth."""
    from .eval.metrics import scene_metrics
    from .eval.pose_benchmark import camera_frame_pose
    from .geometry.camera import CV_TO_GL3
    from .geometry.sampling import sample_surface
    from .scene import Pose

    pred_pts, gt_pts, pred_poses, gt_poses = [], [], [], []
    for placed in scene.objects:
        k = placed.instance_id - 2  # object k of the masks
        obj = truth_objects[k]
        # the scene's world is the camera's OpenGL axes: back to OpenCV camera coordinates
        pose = Pose(CV_TO_GL3 @ placed.pose.R, CV_TO_GL3 @ placed.pose.t, placed.pose.s)
        pred_pts.append(pose.apply(sample_surface(placed.mesh, samples, seed=k)[0]))
        true_pose = camera_frame_pose(obj.pose, w2c)
        gt_pts.append(true_pose.apply(sample_surface(obj.mesh, samples, seed=k)[0]))
        pred_poses.append((pose.R, pose.t, pose.s))
        gt_poses.append((true_pose.R, true_pose.t, true_pose.s))
    if not pred_pts:
        return {"placed": 0}
    metrics = scene_metrics(pred_pts, gt_pts, pred_poses=pred_poses, gt_poses=gt_poses)
    return {"placed": len(pred_pts), **metrics}


def run_demo(
    out: str | Path,
    scenes: int = 3,
    resolution: int = 384,
    generator: str = "retrieval",
    seed: int = 0,
    progress: bool = True,
    deocclusion: str = "classical",
) -> dict:
    from rich.console import Console
    from rich.table import Table

    from .eval.rerender import rerender_mask_iou
    from .pipeline import PipelineConfig, SceneMakerPipeline
    from .synth.cameras import ViewConfig
    from .synth.dataset import list_scenes
    from .synth.generate import GenerateConfig, generate_dataset

    console = Console(stderr=True, highlight=False, quiet=not progress)
    out = Path(out)
    data = out / "data"
    config = GenerateConfig(
        objects="procedural", split="test", seed=seed,
        views=ViewConfig(views=1, width=resolution, height=resolution),
    )  # fmt: skip
    settings = out / "demo_settings.json"
    wanted = {"scenes": scenes, "resolution": resolution, "seed": seed}
    if settings.is_file() and __import__("json").loads(settings.read_text()) != wanted:
        shutil.rmtree(data, ignore_errors=True)  # a previous demo with other settings
    console.print(f"[bold]demo[/bold]: {scenes} synthetic scenes of test-split objects")
    generate_dataset(data, scenes, config, workers=1, progress=progress)
    atomic_write_json(settings, wanted)

    rows, report = [], {"schema": "scenemaker.demo/1", "generator": generator, "scenes": []}
    for k, scene in enumerate(list_scenes(data)):
        view = scene.view(0)
        frame = write_frame(view, scene.scene.objects, out / f"scene_{k:02d}" / "input")
        truth = frame["objects"]
        entry = {"scene": scene.folder.name, "objects": len(truth)}
        for name, gen in (("pipeline", generator), ("oracle", "oracle")):
            cfg = PipelineConfig(
                masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
                generator=gen, seed=seed, deocclusion=deocclusion,
            )  # fmt: skip
            result = out / f"scene_{k:02d}" / name
            console.print(f"scene {k} ({len(truth)} objects), {gen} meshes:")
            extra = [{"gt_mesh": obj.mesh} for obj in truth]
            run = SceneMakerPipeline(cfg, progress=progress).run(
                frame["image"], result, extra=extra
            )
            metrics = compare_to_truth(run.scene, truth, view.camera.world_to_camera)
            masks = {j + 2: view.instance == obj.instance_id for j, obj in enumerate(truth)}
            ious = rerender_mask_iou(run.scene, masks)
            metrics["mask_iou"] = float(np.mean(list(ious.values()))) if ious else None
            metrics["seconds"] = run.report["seconds"]
            metrics["peak_rss_mb"] = run.report["peak_rss_mb"]
            entry[name] = metrics
            rows.append((k, gen, metrics))
        report["scenes"].append(entry)

    def mean(key, gen):
        vals = [m[key] for _, g, m in rows if g == gen and m.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    keys = ("cd_s", "f_score_s", "cd_o", "f_score_o", "iou_b", "mask_iou")
    report["mean"] = {
        g: {key: mean(key, g) for key in keys} for g in dict.fromkeys((generator, "oracle"))
    }
    atomic_write_json(out / "demo_report.json", report)
    from .report_page import write_report_page

    for k in range(len(report["scenes"])):  # the pages again, now with their metrics
        for name in ("pipeline", "oracle"):
            write_report_page(out / f"scene_{k:02d}" / name)  # reads demo_report.json

    table = Table(title="demo: output scenes vs ground truth (objects unseen in training)")
    for col in ("scene", "meshes", "placed", *keys, "seconds"):
        table.add_column(col, justify="right")
    for k, gen, m in rows:
        table.add_row(
            str(k), gen, str(m.get("placed", 0)),
            *(f"{m[c]:.3f}" if m.get(c) is not None else "-" for c in keys),
            f"{m['seconds']['total']:.1f}",
        )  # fmt: skip
    for gen, m in report["mean"].items():
        table.add_row(
            "mean", gen, "", *(f"{m[c]:.3f}" if m[c] is not None else "-" for c in keys), ""
        )
    Console(width=140).print(table)
    print(
        f"scenes: {out}/scene_XX/pipeline/scene.glb (and scene.json, report.json); "
        f"report: {out / 'demo_report.json'}"
    )
    return report
