"""Blender (bpy) in its own virtual environment, driven as a subprocess.

bpy 5.0.1 is the newest build for Python 3.11 and needs numpy < 2, so it cannot live in
SceneMaker's environment. Make its environment once (``scripts/setup.sh`` does):

    scenemaker blender setup            # .venv/blender: bpy==5.0.1, numpy<2

or point ``SCENEMAKER_BLENDER_PYTHON`` at any Python that imports bpy. Scripts in this folder
(``blend_export.py``, ``workbench_ids.py``) run there with a JSON job file; they import only
bpy and the standard library.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import InputError, MissingDependencyError

BPY_VERSION = "5.0.1"
SCRIPTS = Path(__file__).resolve().parent
ENV_VAR = "SCENEMAKER_BLENDER_PYTHON"


def default_env() -> Path:
    """``.venv/blender`` beside the Python running SceneMaker (the repo's ``.venv``)."""
    return Path(sys.prefix) / "blender"


def blender_python() -> Path | None:
    """The Python that imports bpy, or None."""
    given = os.environ.get(ENV_VAR)
    if given:
        return Path(given)
    candidate = default_env() / "bin" / "python"
    return candidate if candidate.is_file() else None


def require_blender() -> Path:
    python = blender_python()
    if python is None or not python.exists():
        raise MissingDependencyError(
            "Blender (bpy) is not set up: run `scenemaker blender setup` (makes .venv/blender "
            f"with bpy=={BPY_VERSION}, numpy<2) or set {ENV_VAR}"
        )
    return python


def setup(env: Path | None = None, quiet: bool = False) -> Path:
    """Make (or complete) the bpy environment; returns its Python."""
    env = Path(env) if env else default_env()
    python = env / "bin" / "python"
    check = [str(python), "-c", f"import bpy; assert bpy.app.version_string == '{BPY_VERSION}'"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(env)], check=True)
    pip = [str(python), "-m", "pip", "install", *(["-q"] if quiet else [])]
    subprocess.run([*pip, f"bpy=={BPY_VERSION}", "numpy<2"], check=True)
    subprocess.run(check, check=True)
    return python


def run_script(name: str, job: dict, timeout: float = 600.0) -> None:
    """Run ``SCRIPTS/name`` in the bpy environment on ``job``; one-line error on failure."""
    python = require_blender()
    with tempfile.TemporaryDirectory(prefix="scenemaker-blender-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        try:
            done = subprocess.run(
                [str(python), str(SCRIPTS / name), str(job_path)],
                capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise InputError(f"Blender ({name}) took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [x for x in (done.stderr + done.stdout).splitlines() if x.strip()]
        why = next((x for x in reversed(lines) if "Error" in x), lines[-1] if lines else "")
        raise InputError(f"Blender ({name}) failed: {why.strip()}")


def export_blend(scene, glb: str | Path, out: str | Path, camera_index: int = 0) -> Path:
    """Write ``out`` (.blend): ``glb`` (the scene's GLB) imported, and the scene's camera
    ``camera_index`` as Blender's camera with the photo's resolution, focal length, pixel
    aspect and lens shift (principal point)."""
    out = Path(out)
    if out.suffix.lower() != ".blend":
        raise InputError(f"--blend {out}: expected a .blend path")
    if not scene.cameras:
        raise InputError("the scene has no camera to reproduce in Blender")
    cam = scene.cameras[camera_index]
    out.parent.mkdir(parents=True, exist_ok=True)
    job = {
        "glb": str(Path(glb).resolve()),
        "out": str(out.resolve()),
        "K": [[float(v) for v in row] for row in cam.K],
        "width": int(cam.width),
        "height": int(cam.height),
        "znear": 0.01,
        "zfar": 1000.0,
    }
    run_script("blend_export.py", job)
    return out


def render_ids(blend: str | Path, out_png: str | Path, colors: dict) -> None:
    """Render ``blend`` with Workbench at its own camera and resolution, each object whose
    name starts with a key of ``colors`` in that flat colour (tests, previews)."""
    job = {"blend": str(Path(blend).resolve()), "out": str(Path(out_png).resolve()),
           "colors": colors}  # fmt: skip
    run_script("workbench_ids.py", job)
