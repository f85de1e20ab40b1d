"""`scenemaker data generate --ray`: Ray tasks give the same files as one process.

Ray runs on this machine only: a local instance started by the CLI itself (`--ray`), or
one started by a helper process whose address is given as `--ray 127.0.0.1:PORT`. Ray's
temporary folder is a short folder under /tmp (its socket paths must stay < 108 bytes, too
long under pytest's tmp_path), removed at the end.
"""

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("ray", reason="scripts/setup.sh installs ray (pip extra 'ray')")

ARGS = ["--scenes", "3", "--views", "2", "--resolution", "64", "--objects", "pybullet", "--quiet"]

HEAD = """
import sys, ray
ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_env():
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env = {
        **os.environ,
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_AUTH_MODE": "disabled",  # no token in ~/.ray; every endpoint is on this machine
        "RAY_TMPDIR": temp,
    }
    yield env
    shutil.rmtree(temp, ignore_errors=True)


def _generate(out: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scenemaker.cli", "data", "generate", "--out", str(out)]
    return subprocess.run([*cmd, *ARGS, *extra], capture_output=True, text=True, env=env)


def _same_tree(a: Path, b: Path) -> None:
    """Every file, the manifest included (it records no timing nor worker count)."""
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert "manifest.json" in files and any(f.endswith("points.npz") for f in files)
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, mismatch[:5]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    proc = _generate(out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    return out


def test_ray_local_matches_one_process(reference, ray_env, tmp_path):
    out = tmp_path / "data"
    proc = _generate(out, "--workers", "2", "--ray", env=ray_env)
    assert proc.returncode == 0, proc.stderr
    assert "3 written" in proc.stdout
    _same_tree(reference, out)


def test_ray_cluster_resume_and_killed_task(reference, ray_env, tmp_path):
    """A cluster at 127.0.0.1:PORT; one scene removed; the worker running it dies once."""
    marker = tmp_path / "crashed"
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**ray_env, "SCENEMAKER_RAY_TEST_CRASH_ONCE": str(marker)},
    )
    try:
        port = head.stdout.readline().strip().rsplit(":", 1)[-1]
        assert port.isdigit(), "the Ray head did not start"
        out = tmp_path / "data"
        shutil.copytree(reference, out)
        shutil.rmtree(out / "scene_000001")
        before = (out / "scene_000000" / "scene.json").stat().st_mtime_ns
        proc = _generate(out, "--ray", f"127.0.0.1:{port}", env=ray_env)
        assert proc.returncode == 0, proc.stderr
        assert "1 written, 2 already there" in proc.stdout
        assert marker.exists()  # the task died once (leaving a partial folder) and was retried
        assert not list(out.glob(".tmp_scene_*"))
        assert (out / "scene_000000" / "scene.json").stat().st_mtime_ns == before
        _same_tree(reference, out)
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_ray_bad_address_is_one_line(ray_env, tmp_path):
    out = tmp_path / "data"
    proc = _generate(out, "--ray", "127.0.0.1:1", env=ray_env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --ray 127.0.0.1:1"), proc.stderr
    assert not out.exists()
