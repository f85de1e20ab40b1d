"""Train the pose model on a bare GPU machine: pack here, train there, unpack here.

A GPU machine lent for a short time may have nothing but a stock PyTorch (e.g. Python 3.12,
torch 2.11; no diffusers, accelerate, safetensors, scipy; no network), and only a small
folder travels there and back. So:

1. **pack** (here, ``scenemaker train pose-pack``): the training arrays prepared as for
   ``train pose`` and trimmed to what the preset reads (its observed and canonical point
   counts, fp16), this package's Python sources, pure-Python wheels of what a stock PyTorch
   lacks (tqdm), ``pack.json`` (the settings) and ``train.py``: all within 64 MiB.
2. **train** (there): ``python PACK/train.py --out RESULTS`` trains with the usual loop (the
   ``portable`` stand-ins replace diffusers' mixins, Accelerate and safetensors where they are
   missing; bf16 autocast on CUDA) and writes ``RESULTS/weights/``: ``config.json``, the
   weights in safetensors shards of at most 16 MiB and ``shards.json``, plus the log and a
   summary with the device and steps/s.
3. **unpack** (here, ``scenemaker train pose-unpack``): checks and joins the shards into a run
   folder that ``train ship-pose`` reads (``best/``, ``log.jsonl``, ``train_config.json``),
   evaluates it on validation scenes and compares it with the shipped weights on the same
   scenes: ship only if it validates better.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

PACK_SCHEMA = "scenemaker.pose-pack/1"
SHARDS_SCHEMA = "scenemaker.pose-shards/1"
MAX_PACK_MIB = 64
MAX_SHARD_MIB = 16
WHEELS = ("tqdm",)  # pure-Python packages the training loop imports beyond torch and numpy

ENTRY = '''"""Train SceneMaker's pose model here: python train.py --out RESULTS [--max-steps N]
(needs only PyTorch and numpy; this folder was made by `scenemaker train pose-pack`)."""
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
for wheel in sorted((here / "wheels").glob("*.whl")):  # pure-Python wheels import as zips
    sys.path.insert(0, str(wheel))
sys.path.insert(0, str(here / "src"))
from scenemaker.pose.train_gpu import train_there  # noqa: E402

sys.exit(train_there(here, sys.argv[1:]))
'''


def _size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def trim_prepared(source: Path, dest: Path, num_points: int, num_canonical: int) -> None:
    """Keep what a model of ``num_points`` observed / ``num_canonical`` canonical points per
    object reads (observed points are farthest-point ordered: the first k are a k-sample),
    in fp16."""
    from ..io_utils import atomic_write_bytes

    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["points"] = arrays["points"][:, :num_points].astype(np.float16)
    arrays["count"] = np.minimum(arrays["count"], num_points).astype(np.int32)
    pick = np.random.default_rng(0).permutation(arrays["canon_points"].shape[1])[:num_canonical]
    arrays["canon_points"] = arrays["canon_points"][:, np.sort(pick)].astype(np.float16)
    arrays["canon_normals"] = arrays["canon_normals"][:, np.sort(pick)].astype(np.float16)
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(dest, buf.getvalue())


def _wheels(folder: Path) -> list[str]:
    """Pure-Python wheels of :data:`WHEELS` from the package registry (any Python 3)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "py",
               "--abi", "none", "--platform", "any", "--dest", str(folder), *WHEELS]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        from ..errors import InputError

        why = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise InputError(f"pose-pack: could not fetch the wheels of {', '.join(WHEELS)} ({why})")
    return sorted(p.name for p in folder.glob("*.whl"))


def pack_pose_training(data, out, preset_name: str = "cpu", views_per_scene=None,
                       depth_noise: int = 0, seed: int = 0, overrides: dict | None = None,
                       progress: bool = True) -> dict:  # fmt: skip
    """Write the folder to carry to a GPU machine (see the module docstring); returns its
    ``pack.json``."""
    from ..errors import InputError
    from ..io_utils import atomic_folder, atomic_write_json
    from .config import preset
    from .data import prepare_pose_data

    config = preset(preset_name, seed=seed)
    config = replace(config, **{k: v for k, v in (overrides or {}).items() if v is not None})
    config.validate()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty folder (expected a new pack folder)")
    mc = config.model
    with atomic_folder(out) as tmp:
        (tmp / "data").mkdir()
        full = tmp / "prepared_full.npz"
        summary = prepare_pose_data(data, full, views_per_scene, seed, progress, depth_noise)
        trim_prepared(full, tmp / "data" / "train.npz", mc.num_points, mc.num_canonical)
        full.unlink()
        package = Path(__file__).resolve().parents[1]
        shutil.copytree(package, tmp / "src" / "scenemaker",
                        ignore=lambda d, names: [n for n in names if n == "__pycache__" or (
                            Path(d, n).is_file() and not n.endswith(".py"))])  # fmt: skip
        wheels = _wheels(tmp / "wheels")
        (tmp / "train.py").write_text(ENTRY)
        record = {
            "schema": PACK_SCHEMA,
            "preset": preset_name,
            "train_config": json.loads(json.dumps(asdict(config), default=list)),
            "data": {"roots": [str(d) for d in data], **summary},
            "depth_noise": depth_noise,
            "wheels": wheels,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command_there": "python train.py --out RESULTS",
        }
        atomic_write_json(tmp / "pack.json", record)
        size = _size_mib(tmp)
        if size > MAX_PACK_MIB:
            raise InputError(
                f"{out}: the pack would be {size:.1f} MiB (at most {MAX_PACK_MIB}); use fewer "
                "scenes or --views-per-scene"
            )
    return {**record, "size_mib": round(_size_mib(out), 2)}


def _save_tensors(tensors: dict, path: Path) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:  # a stock PyTorch: the same format, written by hand
        from ..portable import save_tensors as save_file
    save_file(tensors, str(path))


def write_shards(state: dict, folder: Path, max_mib: float = MAX_SHARD_MIB) -> list[str]:
    """``state`` as safetensors shards of at most ``max_mib`` each + ``shards.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    limit = int(max_mib * 2**20) - 64 * 1024  # room for the header
    groups, current, size = [], {}, 0
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > limit:
            raise ValueError(f"tensor {name} ({nbytes / 2**20:.1f} MiB) exceeds a shard")
        if current and size + nbytes > limit:
            groups.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    if current:
        groups.append(current)
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    index = {}
    for name, group in zip(names, groups, strict=True):
        _save_tensors(group, folder / name)
        index.update({key: name for key in group})
    (folder / "shards.json").write_text(
        json.dumps({"schema": SHARDS_SCHEMA, "files": names, "tensors": index}, indent=1)
    )
    return names


def train_there(pack: Path, argv: list[str]) -> int:
    """``train.py`` in the pack: train, then write the weights as shards (see module doc)."""
    import torch

    from .config import PoseDiTConfig, TrainConfig
    from .train import train_pose

    parser = argparse.ArgumentParser(prog="train.py", description="SceneMaker pose training")
    parser.add_argument("--out", type=Path, default=pack / "results")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    record = json.loads((pack / "pack.json").read_text())
    if record.get("schema") != PACK_SCHEMA:
        print(f"error: {pack / 'pack.json'}: not a pose pack", file=sys.stderr)
        return 2
    settings = dict(record["train_config"])
    settings["model"] = PoseDiTConfig(**settings["model"])
    settings["betas"] = tuple(settings["betas"])
    config = TrainConfig(**settings)
    overrides = {"max_steps": args.max_steps, "max_minutes": args.max_minutes,
                 "batch_size": args.batch_size}  # fmt: skip
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    run = args.out / "run"
    start = time.perf_counter()
    last = train_pose(pack / "data" / "train.npz", run, config, None, progress=True)
    seconds = time.perf_counter() - start
    from .estimator import load_pose_model

    model = load_pose_model(run / "checkpoint")
    weights = args.out / "weights"
    names = write_shards(model.state_dict(), weights)
    (weights / "config.json").write_text((run / "checkpoint" / "config.json").read_text())
    for name in ("log.jsonl", "train_config.json"):
        shutil.copy(run / name, args.out / name)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    summary = {
        "device": device, "torch": torch.__version__, "python": sys.version.split()[0],
        "steps": last.get("step"), "steps_per_s": last.get("steps_per_s"),
        "seconds": round(seconds, 1), "shards": names,
        "package": str(Path(__file__).resolve().parents[1]),  # the pack's own sources
    }  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    shutil.rmtree(run / "checkpoint", ignore_errors=True)  # the shards carry the weights back
    print(json.dumps(summary))
    return 0


def read_shards(folder: Path) -> dict:
    """The tensors of ``folder/shards.json``'s shards (each checked: at most 16 MiB, a complete
    safetensors file); one-line InputError naming the file otherwise."""
    from ..errors import InputError
    from ..io_utils import load_safetensors, read_json

    index = read_json(folder / "shards.json")
    if not isinstance(index, dict) or index.get("schema") != SHARDS_SCHEMA:
        raise InputError(f"{folder / 'shards.json'}: expected schema {SHARDS_SCHEMA}")
    state = {}
    for name in index["files"]:
        path = folder / Path(name).name
        if path.is_file() and path.stat().st_size > MAX_SHARD_MIB * 2**20:
            raise InputError(f"{path}: larger than {MAX_SHARD_MIB} MiB (not a pose-pack shard)")
        state.update(load_safetensors(path))
    missing = sorted(set(index["tensors"]) - set(state))
    if missing:
        raise InputError(f"{folder}: shards lack {len(missing)} tensors ({missing[0]} ...)")
    return state


def unpack_pose_results(results, run, val=None, views_per_scene=None, seed: int = 0) -> dict:
    """A run folder (``best/``, ``log.jsonl``, ``train_config.json``) from a GPU run's
    ``results``; with ``val`` scene folders, the new weights and the shipped ones evaluated on
    them. Returns {"new": metrics, "shipped": metrics, "summary": the GPU run's summary}."""
    import torch

    from ..errors import InputError
    from ..io_utils import atomic_folder, read_json
    from .config import TrainConfig
    from .data import PoseDataset, prepare_pose_data
    from .estimator import DEFAULT_WEIGHTS, load_pose_model
    from .model import PoseDiT
    from .train import evaluate

    results, run = Path(results), Path(run)
    weights = results / "weights"
    if not (weights / "shards.json").is_file():
        raise InputError(f"{results}: no weights/shards.json (expected a pose-pack result)")
    settings = read_json(weights / "config.json")
    accepted = {k: v for k, v in settings.items() if not k.startswith("_")}
    model = PoseDiT(**accepted)
    try:
        model.load_state_dict(read_shards(weights))
    except RuntimeError as exc:
        raise InputError(f"{weights}: shards do not fit config.json ({str(exc)[:120]})") from None
    with atomic_folder(run / "best") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    for name in ("log.jsonl", "train_config.json"):
        shutil.copy(results / name, run / name)
    report = {"summary": read_json(results / "summary.json"), "new": None, "shipped": None}
    if val:
        val_npz = run / "prepared" / "val.npz"
        if not val_npz.is_file():
            prepare_pose_data(val, val_npz, views_per_scene, seed, progress=False)
        saved = read_json(run / "train_config.json")
        config = TrainConfig(val_views=saved["val_views"], seed=saved["seed"])
        step = report["summary"].get("steps")
        for key, candidate in (("new", load_pose_model(run / "best")),
                               ("shipped", load_pose_model(DEFAULT_WEIGHTS))):  # fmt: skip
            mc = candidate.config
            dataset = PoseDataset(val_npz, mc.num_points, mc.num_canonical, augment=False)
            report[key] = evaluate(candidate, dataset, config, torch.device("cpu"))
        with open(run / "log.jsonl", "a") as f:  # what `train ship-pose` reads
            f.write(json.dumps({"step": step, **report["new"]}) + "\n")
    return report
