"""Pieces shared by the training loops (pose model, de-occlusion LoRA)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """The global batch of a step: consecutive slices of per-epoch seeded permutations, so a
    resumed run draws exactly the batches the uninterrupted run would have."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return np.asarray(out)


def out_of_time(start_time: float, max_minutes: float, accelerator) -> bool:
    """Rank 0 decides and tells the others: a process that stopped alone would leave the rest
    waiting in the next gradient all-reduce."""
    import torch

    late = time.perf_counter() - start_time > 60 * max_minutes
    stop = torch.tensor([float(late)], device=accelerator.device)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast

        stop = broadcast(stop, from_process=0)
    return bool(stop.item() > 0)


def append_jsonl(path: Path, record: dict) -> None:
    """One line of a training log."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
