"""Dataset generation on a Ray cluster: ``scenemaker data generate --ray [ADDRESS]``.

The driver (``generate_dataset``) prepares the output folder, lists the missing scenes and
writes the manifest exactly as on one machine; here each missing scene becomes one Ray task
that runs the same per-scene function as the process pool (``generate._run_scene``, which
writes the scene atomically), so the files are byte-identical whatever the cluster. A task
whose worker dies is retried (``max_retries``); its temporary folder is removed at the end.

Every node must see the output folder at the same absolute path (a shared file system) and
have the same scenemaker installed (and the same object folder, for folder sources).
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

from .settings import GenerateConfig, GenerationError

LOCAL = "local"
MAX_RETRIES = 3
_TEST_CRASH_ONCE = "SCENEMAKER_RAY_TEST_CRASH_ONCE"  # tests: a file path; first task dies
_WRITER_KEY: str | None = None


def _ray_scene(config_dict: dict, out: str, index: int) -> tuple[int, dict, dict]:
    """The Ray task: one scene, with the worker process's SceneWriter kept between tasks."""
    global _WRITER_KEY
    from . import generate

    key = json.dumps([config_dict, out], sort_keys=True, default=list)
    if generate._WRITER is None or _WRITER_KEY != key:
        warnings.simplefilter("ignore")  # the driver reports skipped meshes in its summary
        generate._init_worker(config_dict, out)
        _WRITER_KEY = key
    marker = os.environ.get(_TEST_CRASH_ONCE)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:  # a worker killed while writing: a partial temporary folder, then death
            partial = Path(out) / f".tmp_scene_{index:06d}_{os.getpid()}" / "views"
            partial.mkdir(parents=True, exist_ok=True)
            (partial / "000_rgb.png").write_bytes(b"\x89PNG")
            os._exit(1)  # Ray must retry the task
    return generate._run_scene(index)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise GenerationError(
            "--ray needs Ray: pip install 'scenemaker[ray]' (scripts/setup.sh installs it)"
        ) from None
    return ray


def start_local(workers: int) -> None:
    """Start a local Ray instance with ``workers`` CPUs (stopped by ``ray.shutdown()``)."""
    ray = _import_ray()
    ray.init(
        address="local",  # a new instance, never one already running here (as None would)
        num_cpus=workers,
        include_dashboard=False,
        object_store_memory=128 * 2**20,  # tasks return small summaries
        log_to_driver=False,
        logging_level="WARNING",
    )


def _check_reachable(address: str) -> None:
    """Fail in seconds, in one line, where ray.init would retry for minutes."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise GenerationError(
            f"--ray {address}: expected nothing (a local cluster), auto or HOST:PORT"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise GenerationError(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with `ray start --head`, or give --ray alone for a local one"
        ) from None


def connect(address: str, workers: int) -> bool:
    """Join (or start) the cluster; True when this call started / joined it."""
    ray = _import_ray()
    if ray.is_initialized():
        return False  # the caller's own cluster
    try:
        if address == LOCAL:
            start_local(workers)
        else:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except GenerationError:
        raise
    except Exception as exc:  # ConnectionError, version mismatch, auth ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GenerationError(f"--ray {address}: {first}") from None
    return True


def run_ray(
    todo: list[int], config: GenerateConfig, out: Path, workers: int, address: str, finished
) -> None:
    """Run the scenes ``todo`` as Ray tasks, at most 2 per cluster CPU in flight."""
    ray = _import_ray()
    started = connect(address, workers)
    running: list = []
    try:
        task = ray.remote(_ray_scene).options(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False
        )
        config_dict, out_str = config.to_dict(), str(Path(out).resolve())
        slots = 2 * max(1, int(ray.cluster_resources().get("CPU", workers)))
        pending = iter(todo)
        while True:
            while len(running) < slots:
                index = next(pending, None)
                if index is None:
                    break
                running.append(task.remote(config_dict, out_str, index))
            if not running:
                break
            complete, running = ray.wait(running, num_returns=1)
            for ref in complete:
                finished(ray.get(ref))
        from .generate import remove_leftovers

        remove_leftovers(Path(out))  # left by workers that died mid-scene
    finally:
        for ref in running:
            ray.cancel(ref)
        if started:
            ray.shutdown()
