"""De-occlusion LoRA training on 1 process vs 2 processes under torchrun (CPU, gloo), same
global batch: steps/s of each and how far the 2-process loss curve and weights are from the
single process (they should agree to float rounding).

The model is the tiny random FLUX.1-Kontext built in code (``deocclusion.tiny``), so this
measures the distributed plumbing on this machine, not FLUX's speed on GPUs.

    python benchmarks/bench_lora_ddp.py [--steps 20] [--batch 8] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_section

SCRIPT = r"""
import os, sys
import numpy as np
import torch

torch.set_num_threads(1)
import scenemaker.deocclusion.train as train
from scenemaker.deocclusion.train_config import preset

data, out, model, steps, batch, size = sys.argv[1:7]
arrays = np.load(data)
items = [{"input": arrays["inputs"][i], "target": arrays["targets"][i], "prompt": "a ball"}
         for i in range(len(arrays["inputs"]))]
captured = []
real = train.ModelParts
train.ModelParts = lambda *a, **k: captured.append(real(*a, **k)) or captured[-1]
config = preset("tiny", batch_size=int(batch), max_steps=int(steps), size=int(size),
                log_every=1, checkpoint_every=10_000)
train.train_deocclusion_lora(items, out, config, pipeline=model, progress=False)
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

state = get_peft_model_state_dict(captured[-1].transformer)
save_file({k: v.detach().float().contiguous() for k, v in state.items()},
          os.path.join(out, f"rank{os.environ.get('RANK', '0')}.safetensors"))
"""


def _run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - start


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    from safetensors.torch import load_file

    from scenemaker.deocclusion.tiny import build_tiny_flux_kontext

    with tempfile.TemporaryDirectory(prefix="bench-lora-ddp-") as tmp:
        root = Path(tmp)
        build_tiny_flux_kontext(root / "model", seed=0)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (32, args.size, args.size, 3), dtype=np.uint8)
        np.savez(root / "items.npz", inputs=images, targets=images[::-1].copy())
        (root / "train.py").write_text(SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        tail = [str(root / "model"), str(args.steps), str(args.batch), str(args.size)]
        one = _run([sys.executable, str(root / "train.py"), str(root / "items.npz"),
                    str(root / "one"), *tail], env)  # fmt: skip
        torchrun = Path(sys.executable).with_name("torchrun")
        two = _run([str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                    "--master_port", "29531", str(root / "train.py"), str(root / "items.npz"),
                    str(root / "two"), *tail], env)  # fmt: skip
        log1, log2 = _log(root / "one"), _log(root / "two")
        loss_gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(log1, log2, strict=True))
        w1 = load_file(root / "one" / "rank0.safetensors")
        w2 = [load_file(root / "two" / f"rank{r}.safetensors") for r in (0, 1)]
        weight_gap = max(float((w1[k] - w2[0][k]).abs().max()) for k in w1)
        ranks_equal = all(bool((w2[0][k] == w2[1][k]).all()) for k in w1)
        rates = (log1[-1]["steps_per_s"], log2[-1]["steps_per_s"])
    command = (
        f"python benchmarks/bench_lora_ddp.py --steps {args.steps} --batch {args.batch} "
        f"--size {args.size}"
    )
    lines = [
        "## De-occlusion LoRA on 2 processes (torchrun, gloo, CPU)",
        "",
        f"`{command}`: the tiny random FLUX.1-Kontext built in code, global batch "
        f"{args.batch}, {args.steps} steps, one process vs `torchrun --nproc_per_node 2` "
        "(each takes half of every batch). Steps/s are the training loop's own (after start-up); "
        "wall seconds include start-up and model loading. The plumbing, not FLUX's speed: on "
        "GPUs the same command runs one process per GPU.",
        "",
        "| processes | steps/s | wall s | max loss gap to 1 process | max weight gap | ranks "
        "identical |",
        "|---|---|---|---|---|---|",
        f"| 1 | {rates[0]:.2f} | {one:.1f} | - | - | - |",
        f"| 2 | {rates[1]:.2f} | {two:.1f} | {loss_gap:.2e} | {weight_gap:.2e} | "
        f"{'yes' if ranks_equal else 'NO'} |",
    ]
    write_section("bench_lora_ddp", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
