"""Validation runs of the whole pipeline (never the test scenes): what chose ``--stretch auto``
and ``--mesh-candidates``.

The pipeline runs on 8 RGB-D frames of val-split procedural objects (seed 3, 384 px; the
frames' true masks and depth, classical de-occlusion) with some ``PipelineConfig`` fields
changed, is compared with the true scene, and appends one line to
``benchmarks/pipeline/validation.jsonl`` (mean IoU-B, CD-S, F-Score-S, re-rendered mask IoU,
refine seconds; per-scene IoU-B; which candidate mesh each object took).

    python benchmarks/pipeline_validation.py '{"mesh_candidates": 1}'
    python benchmarks/pipeline_validation.py '{"mesh_candidates": 2}'
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "pipeline_val"
SCENES, RESOLUTION = 8, 384


def ensure_frames() -> Path:
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    if not (DATA / "manifest.json").is_file():
        views = ViewConfig(views=1, width=RESOLUTION, height=RESOLUTION)
        config = GenerateConfig(objects="procedural", split="val", seed=3, views=views)
        generate_dataset(DATA, SCENES, config, workers=1, progress=False)
    return DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="?", default="{}", help="JSON: PipelineConfig fields")
    args = parser.parse_args()
    from scenemaker.demo import compare_to_truth, write_frame
    from scenemaker.eval.rerender import rerender_mask_iou
    from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline
    from scenemaker.synth.dataset import list_scenes

    try:
        settings = json.loads(args.settings)
        PipelineConfig(**settings).validate()
    except (ValueError, TypeError) as exc:
        parser.error(f"settings {args.settings!r}: {exc}")
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    rows, choices = [], []
    for k, scene in enumerate(list_scenes(ensure_frames())):
        view = scene.view(0)
        folder = ROOT / "out" / "pipeline_val" / f"scene_{k:02d}"
        frame = write_frame(view, scene.scene.objects, folder / "input")
        truth = frame["objects"]
        config = PipelineConfig(**{"masks": str(frame["masks"]), "depth_file": str(frame["depth"]),
                                   "K": frame["K"], **settings})  # fmt: skip
        out = folder / tag
        run = SceneMakerPipeline(config, progress=False).run(
            frame["image"], out, extra=[{"gt_mesh": o.mesh} for o in truth]
        )
        metrics = compare_to_truth(run.scene, truth, view.camera.world_to_camera)
        masks = {j + 2: view.instance == o.instance_id for j, o in enumerate(truth)}
        metrics["mask_iou"] = float(np.mean(list(rerender_mask_iou(run.scene, masks).values())))
        metrics["refine_s"] = run.report["seconds"].get("refine")
        rows.append(metrics)
        records = json.loads((out / "refine" / "poses.json").read_text())["objects"]
        choices.append([r.get("mesh_choice") if r else None for r in records])
        print(f"scene {k}: IoU-B {metrics['iou_b']:.3f}", flush=True)
    keys = ("iou_b", "cd_s", "f_score_s", "mask_iou", "refine_s")
    line = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "settings": settings,
        **{key: float(np.mean([r[key] for r in rows])) for key in keys},
        "per_scene_iou_b": [round(r["iou_b"], 3) for r in rows],
        "mesh_choice": choices,
    }
    path = ROOT / "benchmarks" / "pipeline" / "validation.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
