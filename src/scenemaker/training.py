"""The skeleton both training loops share (pose model, de-occlusion LoRA).

A run folder ``out`` holds ``train_config.json`` (the run's settings), ``log.jsonl`` (one JSON
record per logged step and per validation) and ``checkpoint/``: the model's weights, written by
the loop's own ``write_weights``, plus ``trainer_state.pt`` (optimizer state, step and any
extra numbers), written atomically. :class:`Trainer` sets up Accelerate, resumes from that
checkpoint (or starts the folder), and runs the step / time budget loop: learning rate,
batches, backward, gradient clipping, logging, validation and periodic checkpoints, then the
final checkpoint. What is particular to a model (its batches and loss, its validation, how its
weights are written and read back) stays in its own module and is passed in as functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io_utils import (
    atomic_folder,
    atomic_write_json,
    load_trainer_state,
    read_json,
    recover_folder,
)

STATE_FILE = "trainer_state.pt"
"""The checkpoint's trainer state: ``{"optimizer": ..., "step": ..., **extra}``."""


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


def run_folder(out: str | Path) -> Path:
    """``out`` as a Path; refused when it is a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path is a file, expected a folder")
    return out


def save_checkpoint(
    folder: Path,
    write_weights: Callable[[Path], None],
    optimizer,
    step: int,
    extra: dict | None = None,
) -> None:
    """Write a checkpoint folder atomically (a kill at any instant leaves the newest complete
    checkpoint for ``recover_folder``): the weights (``write_weights(tmp)``), then the trainer
    state."""
    import torch

    with atomic_folder(folder) as tmp:
        write_weights(tmp)
        state = {"optimizer": optimizer.state_dict(), "step": step, **(extra or {})}
        torch.save(state, tmp / STATE_FILE)


class Trainer:
    """One training run in the folder ``out`` on an Accelerator (one CPU process without a
    GPU, else what ``accelerate launch`` / ``torchrun`` started).

    Used in this order: :meth:`resuming` (before the model is loaded), then, when resuming,
    :meth:`load_state` once the optimizer exists; :meth:`write_settings`; :meth:`fit`."""

    def __init__(self, out: str | Path, mixed_precision: str = "no"):
        import torch

        self.out = run_folder(out)
        self.checkpoint = self.out / "checkpoint"
        self.log_path = self.out / "log.jsonl"
        try:
            from accelerate import Accelerator
        except ImportError:  # a bare GPU machine (train pose-pack): one process, one device
            from .portable import SingleDevice

            self.accelerator = SingleDevice(mixed_precision)
            return
        self.accelerator = Accelerator(
            cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision
        )

    def resuming(self, record: dict, comparable: Callable[[dict], dict] | None = None) -> bool:
        """Whether ``checkpoint/`` holds a run to resume (after restoring the newest complete
        checkpoint, had a save been killed). A folder whose saved settings differ from
        ``record`` (compared as ``comparable(settings)``: the settings a resumed run must
        keep) is refused."""
        accelerator = self.accelerator
        if accelerator.is_main_process:
            recover_folder(self.checkpoint)
        accelerator.wait_for_everyone()
        if not (self.checkpoint / STATE_FILE).is_file():
            return False
        saved = read_json(self.out / "train_config.json")
        comparable = comparable or (lambda settings: settings)
        if comparable(saved) != comparable(record):
            changed = sorted(
                k for k in record.keys() | saved.keys() if saved.get(k) != record.get(k)
            )
            raise ValueError(
                f"{self.out}: holds a run with other settings ({', '.join(changed)}); "
                "use a new out folder"
            )
        return True

    def load_state(self, optimizer) -> dict:
        """The checkpoint's trainer state, its optimizer state loaded into ``optimizer``."""
        state = load_trainer_state(self.checkpoint / STATE_FILE, optimizer)
        self.accelerator.print(f"resuming from step {state['step']}")
        return state

    def write_settings(self, record: dict) -> None:
        """``train_config.json`` (by the main process)."""
        if self.accelerator.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "train_config.json", record)

    def fit(
        self,
        step: int,
        config,
        optimizer,
        params: list,
        loss_fn: Callable,
        save: Callable[[int], None],
        *,
        lr: Callable[[int], float],
        n_items: int,
        grad_clip: float,
        log_every: int,
        evaluate: Callable[[], dict] | None = None,
        desc: str = "training",
        progress: bool = True,
        rate_digits: int = 3,
    ) -> dict:
        """Train from ``step`` to ``config.max_steps`` (or until ``config.max_minutes``);
        returns the last logged metrics.

        config: settings with ``batch_size``, ``seed``, ``max_steps``, ``max_minutes``,
            ``eval_every`` and ``checkpoint_every``.
        loss_fn(step, indices, offset, generator) -> (loss, {name: float}): the loss of this
            process's share of the step's global batch (``indices``, starting at position
            ``offset`` of it), with ``generator`` seeded by (seed, step, rank).
        save(step): writes the checkpoint (main process only), every ``checkpoint_every``
            steps and at the end.
        evaluate() -> {name: float}: validation metrics (main process only), every
            ``eval_every`` steps and at the last step; logged with the step.
        lr(step): the learning rate of a step; ``n_items``: the size of the training set.
        """
        import torch
        from tqdm.auto import tqdm

        accelerator = self.accelerator
        world, rank = accelerator.num_processes, accelerator.process_index
        per_rank = max(1, config.batch_size // world)
        start_time, start_step = time.perf_counter(), step
        bar = tqdm(
            total=config.max_steps,
            initial=step,
            desc=desc,
            unit="step",
            disable=not (progress and accelerator.is_main_process),
        )
        last: dict = {"step": step}
        while step < config.max_steps:
            if config.max_minutes and out_of_time(start_time, config.max_minutes, accelerator):
                break
            for group in optimizer.param_groups:
                group["lr"] = lr(step)
            indices = batch_indices(step, n_items, config.batch_size, config.seed)
            indices = indices[rank * per_rank : (rank + 1) * per_rank]
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * world + rank)
            loss, terms = loss_fn(step, indices, rank * per_rank, generator)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)
            logged = loss.detach()
            if world > 1:  # the global batch's loss: the mean of the processes' shares
                logged = accelerator.reduce(logged, reduction="mean")
            if accelerator.is_main_process:
                rate = (step - start_step) / (time.perf_counter() - start_time)
                last = {
                    "step": step,
                    "loss": float(logged),
                    **terms,
                    "lr": lr(step - 1),
                    "steps_per_s": round(rate, rate_digits),
                }
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                if step % log_every == 0 or step == config.max_steps:
                    append_jsonl(self.log_path, last)
                at_eval = step % config.eval_every == 0 or step == config.max_steps
                if evaluate is not None and at_eval:
                    metrics = evaluate()
                    last.update(metrics)
                    append_jsonl(self.log_path, {"step": step, **metrics})
                if step % config.checkpoint_every == 0 or step == config.max_steps:
                    save(step)
            accelerator.wait_for_everyone()
        bar.close()
        if accelerator.is_main_process:
            save(step)
        return last
