"""Training loop of the pose model (one readable loop, resumable exactly).

Batches are a pure function of (seed, step, rank): the view order of each epoch is a seeded
permutation, every item's augmentation has its own seed, and so does the noise. A checkpoint
(model safetensors + optimizer state + step) therefore resumes to the very same run.
Accelerate runs it on one CPU process by default, or on many GPUs / nodes with
``accelerate launch`` / ``torchrun`` (each process takes its share of every batch).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import training
from ..io_utils import atomic_folder, atomic_write_json
from ..training import Trainer
from .config import TrainConfig
from .data import PoseDataset, collate
from .encoding import decode_pose
from .flow import flow_matching_loss

STATE_FILE = training.STATE_FILE


def get_lr(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    )
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_batch(dataset: PoseDataset, indices, step: int, seed: int, device) -> dict:
    items = []
    for k, index in enumerate(indices):
        items.append(dataset.item(int(index), np.random.default_rng([seed, step, k])))
    batch = collate(items)
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model, dataset: PoseDataset, config: TrainConfig, device) -> dict:
    """Pose errors on a fixed subset of validation views (sampling as at inference)."""
    from ..eval.metrics import add_s, rotation_error_deg
    from .estimator import sample_poses

    model.eval()
    n = min(config.val_views, len(dataset))
    chosen = np.random.default_rng(1234).choice(len(dataset), n, replace=False)
    rot, adds, trans, size = [], [], [], []
    for start in range(0, n, 16):
        idx = chosen[start : start + 16]
        batch = make_batch(dataset, idx, 0, 1234, device)
        x = (
            sample_poses(
                model,
                batch,
                config.sampling_steps,
                config.guidance,
                torch.Generator().manual_seed(config.seed),
            )
            .float()
            .cpu()
            .numpy()
        )
        target = batch["target"].cpu().numpy()
        mask = batch["object_mask"].cpu().numpy()
        center, scale = batch["center"].cpu().numpy(), batch["scale"].cpu().numpy()
        canon = batch["canonical"].cpu().numpy()
        for b in range(len(idx)):
            m = mask[b]
            Rp, tp, sp = decode_pose(x[b][m], center[b], scale[b])
            Rg, tg, sg = decode_pose(target[b][m], center[b], scale[b])
            rot.extend(np.atleast_1d(rotation_error_deg(Rp, Rg)).tolist())
            trans.extend((np.linalg.norm(tp - tg, axis=1) / (2 * scale[b])).tolist())
            size.extend(np.abs(sp / sg - 1).tolist())
            for j in range(int(m.sum())):
                pts = canon[b, j, :, :3]
                adds.append(add_s(pts, (Rp[j], tp[j], sp[j]), (Rg[j], tg[j], sg[j])))
    model.train()
    return {
        "val_rot_err_deg_median": float(np.median(rot)),
        "val_rot_err_deg_mean": float(np.mean(rot)),
        "val_add_s": float(np.mean(adds)),
        "val_trans_err": float(np.mean(trans)),
        "val_size_err": float(np.mean(size)),
    }


def save_checkpoint(folder: Path, model, optimizer, step: int, extra: dict) -> None:
    """Write a checkpoint folder atomically (a kill at any instant leaves the newest complete
    checkpoint for ``recover_folder``)."""
    training.save_checkpoint(
        folder,
        lambda tmp: model.save_pretrained(tmp, safe_serialization=True),
        optimizer,
        step,
        extra,
    )


def train_pose(
    train_data: str | Path,
    out: str | Path,
    config: TrainConfig,
    val_data: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) a PoseDiT; returns the last logged metrics."""
    from .estimator import load_pose_model
    from .model import PoseDiT

    config.validate()
    trainer = Trainer(out, config.mixed_precision)
    accelerator, out = trainer.accelerator, trainer.out
    torch.manual_seed(config.seed)
    mc = config.model
    from .encoding import STORED_CANONICAL, STORED_POINTS

    if mc.num_points > STORED_POINTS or mc.num_canonical > STORED_CANONICAL:
        raise ValueError(
            f"the model wants {mc.num_points} observed / {mc.num_canonical} canonical points per "
            f"object; prepared data stores {STORED_POINTS} / {STORED_CANONICAL}"
        )
    train_set = PoseDataset(train_data, mc.num_points, mc.num_canonical, augment=True)
    val_set = (
        PoseDataset(val_data, mc.num_points, mc.num_canonical, augment=False) if val_data else None
    )
    model = PoseDiT(**mc.model_kwargs())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    step, best = 0, math.inf
    record = _jsonable(asdict(config))
    if trainer.resuming(record):
        model = load_pose_model(trainer.checkpoint)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        state = trainer.load_state(optimizer)
        step, best = int(state["step"]), float(state.get("best", math.inf))
    else:
        trainer.write_settings(record)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    def loss_fn(step, indices, offset, generator):
        batch = make_batch(train_set, indices, step, config.seed, accelerator.device)
        with accelerator.autocast():
            return flow_matching_loss(model, batch, config.condition_dropout, generator)

    def evaluate_and_keep_best() -> dict:
        nonlocal best
        metrics = evaluate(accelerator.unwrap_model(model), val_set, config, accelerator.device)
        if metrics["val_add_s"] < best:
            best = metrics["val_add_s"]
            with atomic_folder(out / "best") as tmp:
                accelerator.unwrap_model(model).save_pretrained(tmp)
        return metrics

    def save(step: int) -> None:
        unwrapped = accelerator.unwrap_model(model)
        save_checkpoint(trainer.checkpoint, unwrapped, optimizer, step, {"best": best})

    return trainer.fit(
        step,
        config,
        optimizer,
        list(model.parameters()),
        loss_fn,
        save,
        lr=lambda step: get_lr(step, config),
        n_items=len(train_set),
        grad_clip=1.0,
        log_every=10,
        evaluate=evaluate_and_keep_best if val_set is not None else None,
        progress=progress,
    )


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))


def choose_guidance(model, run: Path, candidates=(1.0, 2.0, 3.0), steps: int = 10) -> dict:
    """Pick the classifier-free guidance scale with the lowest validation ADD-S (validation
    data of the run, never test scenes); returns the sampling defaults to ship."""
    from dataclasses import replace

    val = run / "prepared" / "val.npz"
    saved = json.loads((run / "train_config.json").read_text())
    config = TrainConfig(val_views=saved["val_views"], seed=saved["seed"])
    if not val.is_file():
        return {"steps": steps, "guidance": config.guidance, "chosen_by": "default (no val data)"}
    mc = saved["model"]
    dataset = PoseDataset(val, mc["num_points"], mc["num_canonical"], augment=False)
    scores = {}
    for g in candidates:
        metrics = evaluate(
            model, dataset, replace(config, guidance=g, sampling_steps=steps), torch.device("cpu")
        )
        scores[str(g)] = metrics["val_add_s"]
    best = min(scores, key=scores.get)
    return {
        "steps": steps,
        "guidance": float(best),
        "val_add_s_by_guidance": scores,
        "chosen_by": "lowest validation ADD-S",
    }


def ship_weights(
    run: str | Path, dest: str | Path, which: str = "best", force: bool = False
) -> dict:
    """Copy a run's weights as fp16 safetensors + config into ``dest`` (the package's
    ``pose/weights``), with ``TRAINING.json``: the run's settings and validation figures.

    Refuses (unless ``force``) when the weights already there have a better validation ADD-S
    on the same validation data: shipped weights only ever improve."""
    from .estimator import load_pose_model

    run, dest = Path(run), Path(dest)
    source = run / which
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source}: no weights to ship (train first)")
    model = load_pose_model(source)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    sampling = choose_guidance(model, run)
    evals = [r for r in log if "val_add_s" in r]
    best = min(evals, key=lambda r: r["val_add_s"]) if evals else {}
    current = dest / "TRAINING.json"
    if current.is_file() and not force:
        shipped = json.loads(current.read_text())
        same_val = shipped.get("validation_data") == str(run / "prepared" / "val.npz")
        old_score = shipped.get("validation", {}).get("val_add_s")
        if same_val and old_score is not None and best.get("val_add_s", math.inf) >= old_score:
            raise ValueError(
                f"{dest}: the shipped weights validate better (ADD-S {old_score:.4f} vs "
                f"{best.get('val_add_s', math.inf):.4f}); use force to replace them anyway"
            )
    provenance = {
        "schema": "scenemaker.weights/1",
        "source_run": str(run),
        "checkpoint": which,
        "train_config": json.loads((run / "train_config.json").read_text()),
        "validation": best,
        "validation_data": str(run / "prepared" / "val.npz"),
        "sampling": sampling,
        "steps_trained": best.get("step", max((r["step"] for r in log), default=0)),
        "run_steps_so_far": max((r["step"] for r in log), default=0),
    }
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its fp16-cast notice does not apply (no fp32-only modules)
    try:
        with atomic_folder(dest) as tmp:
            model.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
            atomic_write_json(tmp / "TRAINING.json", provenance)
    finally:
        diffusers_logging.set_verbosity(level)
    return provenance
