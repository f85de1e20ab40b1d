"""De-occlusion benchmark: the methods that run here, on held-out triplets.

Triplets are built from the test-split scenes of bench_pose.py (objects never used for
training anything), then every method completes each occluded crop and is scored against
the complete object (PSNR, SSIM; CLIP similarity where its weights are local) and its
amodal mask (IoU), by mask type and occlusion bin. FLUX.1-Kontext (base and + our LoRA)
joins with ``--flux MODEL [--lora RUN]`` on a machine that has the weights.

    python benchmarks/bench_deocclusion.py [--max-items 300] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _results import write_section
from bench_pose import ensure_data

from scenemaker.deocclusion.classical import ClassicalDeoccluder, NoDeocclusion
from scenemaker.deocclusion.data import build_triplets
from scenemaker.deocclusion.evaluate import evaluate_deocclusion, format_table
from scenemaker.deocclusion.triplet_dataset import TripletDataset
from scenemaker.io_utils import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-items", type=int, default=300)
    parser.add_argument("--size", type=int, default=256, help="crop side (the paper: 512)")
    parser.add_argument("--flux", default=None, help="FLUX.1-Kontext id or folder (GPU)")
    parser.add_argument("--lora", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    scenes = [ensure_data("procedural_test_2to5"), ensure_data("pybullet_test_2to5")]
    out = ROOT / "out" / "bench_deocclusion" / f"triplets_{args.size}"
    summary = build_triplets(scenes, out, size=args.size, seed=0, progress=False)
    items = TripletDataset(out)
    methods = {"none": NoDeocclusion(), "classical": ClassicalDeoccluder()}
    if args.flux:
        from scenemaker.deocclusion.flux import FluxKontextDeoccluder

        methods["flux-kontext"] = FluxKontextDeoccluder(model=args.flux, device=args.device)
        if args.lora:
            methods["flux-kontext+lora"] = FluxKontextDeoccluder(
                model=args.flux, lora=args.lora, device=args.device
            )
    results = evaluate_deocclusion(items, methods, max_items=args.max_items, keep_items=False)
    atomic_write_json(ROOT / "benchmarks" / "deocclusion" / "metrics.json", results)
    n = min(len(items), args.max_items)
    command = (
        f"python benchmarks/bench_deocclusion.py --max-items {args.max_items} --size {args.size}"
    )
    if args.flux:
        command += f" --flux {args.flux}" + (f" --lora {args.lora}" if args.lora else "")
    text = "\n".join(
        [
            f"## De-occlusion ({n} held-out triplets, {args.size} px crops)",
            "",
            f"`{command}`. Triplets from the test-split scenes (seed 7) of bench_pose.py: "
            f"{summary['triplets']} built (mask types {summary['mask_types']}); the first "
            f"{n} scored. FLUX.1-Kontext rows need its weights and a GPU: "
            "`--flux black-forest-labs/FLUX.1-Kontext-dev [--lora RUN]`.",
            "",
            format_table(results),
        ]
    )
    write_section("bench_deocclusion", text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
