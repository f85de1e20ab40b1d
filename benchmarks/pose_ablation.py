"""Pose model at an equal, reduced training budget: attention ablation and open-set transfer.

Four runs of the ``cpu`` preset, all with the same number of steps, seed and schedule:

- ``full``, ``global_local``, ``global``: the three attention designs, trained on
  ``procedural`` + ``pybullet`` (train splits), validated on both val splits;
- ``transfer``: the full design trained on ``procedural`` only (validated on procedural val,
  so nothing from pybullet is seen), tested on ``pybullet`` test scenes beside ``full``.

    python benchmarks/pose_ablation.py train [--steps 700] [--lanes 2]   # resumable
    python benchmarks/pose_ablation.py eval  [--scenes 30]               # writes RESULTS.md

``train`` prepares the training samples once per data mix and runs the four trainings in
``--lanes`` parallel processes (one thread each); rerunning it resumes unfinished runs.
``eval`` ships each run's best checkpoint into its run folder (guidance chosen on its own
validation data, as for the shipped model) and evaluates DiT and DiT+ICP on the test scenes
of bench_pose.py (generated if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("out/pose_ablation")
VIEWS = 10
BOTH = (
    ["data/procedural_train", "data/pybullet_train"],
    ["data/procedural_val", "data/pybullet_val"],
)
PROC = (["data/procedural_train"], ["data/procedural_val"])
RUNS = {  # name: (attention, (train roots, val roots))
    "full": ("full", BOTH),
    "global_local": ("global_local", BOTH),
    "global": ("global", BOTH),
    "transfer": ("full", PROC),
}
DATA_SEED = (
    0  # scenes of all four folders: `scenemaker data generate ... --seed 0` (docs/MODELS.md)
)


def _prepare(roots: list[str], out: Path) -> str:
    from scenemaker.pose.data import prepare_pose_data

    if not out.is_file():
        prepare_pose_data([Path(r) for r in roots], out, VIEWS, seed=0, progress=False)
    return str(out)


def _train(name: str, steps: int, log: Path) -> int:
    attention, (train, val) = RUNS[name]
    cmd = [
        sys.executable, "-m", "scenemaker.cli", "train", "pose", "--preset", "cpu",
        "--attention", attention, "--max-steps", str(steps), "--max-minutes", "600",
        "--views-per-scene", str(VIEWS), "--out", str(OUT / name),
        "--data", *train, "--val", *val,
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def train(args) -> None:
    os.chdir(ROOT)
    cache = OUT / "prepared"
    cache.mkdir(parents=True, exist_ok=True)
    mixes = {"both": BOTH, "procedural": PROC}
    with ProcessPoolExecutor(2) as pool:  # the four NPZs, two at a time
        jobs = [
            pool.submit(_prepare, roots, cache / f"{mix}_{part}.npz")
            for mix, (tr, va) in mixes.items()
            for part, roots in (("train", tr), ("val", va))
        ]
        for j in jobs:
            print("prepared", j.result(), flush=True)
    for name, (_, data) in RUNS.items():
        mix = "both" if data is BOTH else "procedural"
        prepared = OUT / name / "prepared"
        prepared.mkdir(parents=True, exist_ok=True)
        for part in ("train", "val"):
            if not (prepared / f"{part}.npz").exists():
                os.link(cache / f"{mix}_{part}.npz", prepared / f"{part}.npz")
    t0 = time.time()
    with ProcessPoolExecutor(args.lanes) as pool:
        jobs = {name: pool.submit(_train, name, args.steps, OUT / f"{name}.log") for name in RUNS}
        for name, job in jobs.items():
            print(f"{name}: exit {job.result()} ({(time.time() - t0) / 60:.1f} min)", flush=True)


def _run_summary(run: Path) -> dict:
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    rates = [r["steps_per_s"] for r in log if r.get("steps_per_s")]
    return {
        "steps": max((r["step"] for r in log), default=0),
        "seconds_per_step": 1.0 / rates[-1] if rates else None,  # the last session's mean
    }


def evaluate(args) -> None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _results import write_section
    from bench_pose import ensure_data

    saved = ROOT / "benchmarks" / "pose" / "ablation" / "metrics.json"
    if args.format_only:
        write_section("pose_ablation", _format(json.loads(saved.read_text()), args))
        return

    from scenemaker.eval.pose_benchmark import build_methods, evaluate_scenes, summarize
    from scenemaker.io_utils import atomic_write_json
    from scenemaker.pose.train import ship_weights

    proc = ensure_data("procedural_test_2to5")
    pyb = ensure_data("pybullet_test_2to5")
    results: dict = {}
    for name in RUNS:
        run = OUT / name
        weights = run / "shipped"
        if not (weights / "TRAINING.json").is_file():
            ship_weights(run, weights, "best", force=True)
        training = json.loads((weights / "TRAINING.json").read_text())
        entry = {"training": _run_summary(run), "sampling": training["sampling"]}
        entry["val_add_s"] = training["sampling"]["val_add_s_by_guidance"][
            f"{float(training['sampling']['guidance'])}"
        ]
        tests = {"pybullet": pyb} if name == "transfer" else {"procedural": proc, "pybullet": pyb}
        for test, data in tests.items():
            methods = build_methods(["dit", "dit_icp"], weights)
            summary = summarize(
                evaluate_scenes([data], methods, max_scenes=args.scenes, progress=False)
            )
            entry[test] = {
                m: {k: s[k] for k in ("iou_b", "iou_b_ci95", "add_s", "add_s_ci95", "rot_err_deg",
                                      "trans_err", "size_err", "seconds_per_scene") if k in s}
                for m, s in summary.items()
            }  # fmt: skip
            print(name, test, json.dumps(entry[test]), flush=True)
        results[name] = entry
    # the shipped model (longer budget) on pybullet, for the transfer table
    shipped = summarize(
        evaluate_scenes(
            [pyb], build_methods(["dit", "dit_icp"]), max_scenes=args.scenes, progress=False
        )
    )
    results["shipped"] = {"pybullet": shipped}
    atomic_write_json(ROOT / "benchmarks" / "pose" / "ablation" / "metrics.json", results)
    write_section("pose_ablation", _format(results, args))


def _ci(s: dict, key: str) -> str:
    ci = s.get(f"{key}_ci95")
    return f"{s[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _format(results: dict, args) -> str:
    steps = results["full"]["training"]["steps"]
    lines = [
        f"## Pose model at an equal reduced budget ({steps} steps each, cpu preset, seed 0)",
        "",
        f"`python benchmarks/pose_ablation.py train --steps {steps}` then "
        f"`python benchmarks/pose_ablation.py eval --scenes {args.scenes}`. Each run's best",
        "validation checkpoint, guidance chosen on its own validation data; "
        f"{args.scenes} test scenes per set (unseen objects), mean with bootstrap 95% intervals.",
        "",
        "### Attention ablation (trained on procedural + pybullet)",
        "",
        "s / step: one thread per run, two runs at a time on 2 cores, other work on the machine"
        " at times: a rough cost, not a clean comparison of the designs' speed.",
        "",
        "| attention | val ADD-S | test | DiT IoU-B | DiT ADD-S | DiT rot (deg) | DiT+ICP ADD-S "
        "| s / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("full", "global_local", "global"):
        e = results[name]
        for test in ("procedural", "pybullet"):
            d, di = e[test]["dit"], e[test]["dit_icp"]
            sps = e["training"]["seconds_per_step"]
            lines.append(
                f"| {name} | {e['val_add_s']:.3f} | {test} | {_ci(d, 'iou_b')} | {_ci(d, 'add_s')} "
                f"| {d['rot_err_deg']:.1f} | {di['add_s']:.3f} | "
                f"{'' if sps is None else f'{sps:.2f}'} |"
            )
    lines += [
        "",
        "### Open-set transfer: tested on pybullet test scenes",
        "",
        "| model | trained on | DiT IoU-B | DiT ADD-S | DiT rot (deg) | DiT+ICP ADD-S |",
        "|---|---|---|---|---|---|",
    ]
    rows = (
        ("transfer", "procedural only", results["transfer"]["pybullet"]),
        ("full", "procedural + pybullet", results["full"]["pybullet"]),
        ("shipped", "procedural + pybullet, 2,000 steps", results["shipped"]["pybullet"]),
    )
    for name, data, s in rows:
        d, di = s["dit"], s["dit_icp"]
        lines.append(
            f"| {name} | {data} | {_ci(d, 'iou_b')} | {_ci(d, 'add_s')} | {d['rot_err_deg']:.1f} "
            f"| {di['add_s']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train")
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--lanes", type=int, default=2)
    p.set_defaults(func=train)
    p = sub.add_parser("eval")
    p.add_argument("--scenes", type=int, default=30)
    p.add_argument("--format-only", action="store_true",
                   help="rewrite the RESULTS.md section from the saved metrics.json")  # fmt: skip
    p.set_defaults(func=evaluate)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
