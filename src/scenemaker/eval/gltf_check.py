"""The Khronos glTF validator (npm ``gltf-validator``, run with node) on exported scenes.

``scripts/setup.sh`` installs it under ``.venv/node``; ``SCENEMAKER_NODE_MODULES`` points
elsewhere. Used by the tests and by users who want to check a GLB before shipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import MissingDependencyError

SCRIPT = Path(__file__).with_name("gltf_validate.js")


def node_modules() -> Path:
    env = os.environ.get("SCENEMAKER_NODE_MODULES")
    return Path(env) if env else Path(sys.prefix) / "node" / "node_modules"


def validator_available() -> bool:
    return shutil.which("node") is not None and (node_modules() / "gltf-validator").is_dir()


def validate_gltf(path: str | Path, timeout: float = 120.0) -> dict:
    """The validator's report: ``report["issues"]["numErrors"]`` etc."""
    if not validator_available():
        raise MissingDependencyError(
            "the glTF validator needs node and the npm package gltf-validator under "
            f"{node_modules()} (scripts/setup.sh installs both)"
        )
    env = dict(os.environ, NODE_PATH=str(node_modules()))
    done = subprocess.run(
        ["node", str(SCRIPT), str(path)],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{path}: glTF validator failed: {done.stderr.strip()[:300]}")
    return json.loads(done.stdout)
