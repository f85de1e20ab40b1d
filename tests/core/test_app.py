"""``scenemaker app``: a real server started on 127.0.0.1 by the test, driven by gradio_client
as a remote user would: a run returns a valid GLB, a bad upload returns its one-line message
and the next call still works, one object's pose is re-run without the others."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("gradio", reason="scripts/setup.sh installs gradio (pip extra 'app')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("app")
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = open(work / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenemaker.cli", "app", "--port", str(port), "--workdir",
         str(work / "runs")],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"app did not start: {(work / 'server.log').read_text()[-2000:]}")
        time.sleep(1)
    yield url, work, proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    url, work, _ = server
    return Client(url, verbose=False, download_files=str(work / "downloads"))


def _run(client, frame, photo=None, generator="lift"):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(photo or frame["image"])), handle_file(str(frame["depth"])),
        handle_file(str(frame["masks"])), frame["K"], "", "", "",
        "auto", "auto", "classical", generator, "dit", "render", False,
        api_name="/run",
    )  # fmt: skip


def test_a_run_returns_a_valid_glb_and_its_report(client, frame, server):
    from scenemaker.eval.gltf_check import validate_gltf, validator_available

    glb, page, table, files, status, *_ = _run(client, frame)
    assert glb.endswith(".glb") and os.path.getsize(glb) > 1000
    if not validator_available():
        pytest.fail("glTF validator missing: scripts/setup.sh installs it under .venv/node")
    issues = validate_gltf(glb)["issues"]
    assert issues["numErrors"] == 0, issues["messages"][:5]
    assert "3 of 3 objects placed" in status
    rows = table["data"] if isinstance(table, dict) else table
    assert [row[0] for row in rows] == [0, 1, 2] and all(row[3] for row in rows)
    assert "<iframe" in page and "model-viewer" in page
    names = sorted(os.path.basename(f if isinstance(f, str) else f["path"]) for f in files)
    assert names == ["report.html", "report.json", "scene.glb", "scene.json"]
    # the run is an ordinary output folder under --workdir
    _, work, _ = server
    folders = list((work / "runs").iterdir())
    assert any(json.loads((f / "report.json").read_text())["placed"] == 3 for f in folders)


def test_a_bad_upload_is_one_line_and_the_app_keeps_serving(client, frame, tmp_path, server):
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.png"
    notes.write_text("this is not an image")
    with pytest.raises(AppError) as caught:
        _run(client, frame, photo=notes)
    message = str(caught.value)
    assert "photo notes.png" in message and "\n" not in message.strip(), message
    assert "Traceback" not in message
    with pytest.raises(AppError, match="nope is not in the list of choices"):
        _run(client, frame, generator="nope")
    _, _, _, _, status, *_ = _run(client, frame)  # the server still works
    assert "3 of 3 objects placed" in status
    _, _, proc = server
    assert proc.poll() is None


def test_the_app_serves_on_loopback_only_without_a_share_link(server):
    url, work, _ = server
    text = (work / "server.log").read_text()
    assert "http://127.0.0.1:" in text and "gradio.live" not in text
    port = int(url.rsplit(":", 1)[1].strip("/"))
    addresses = [a for a in _local_addresses() if not a.startswith("127.")]
    for address in addresses[:1]:  # another interface of this machine: nothing listens there
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))


def _local_addresses() -> list[str]:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
        return out.stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []


def test_rerunning_one_object_in_the_app_keeps_the_others(server, frame):
    """The app's re-run (the page's 'Re-run this object'), on the folder of a page run."""
    from scenemaker.app import SceneMakerApp

    _, work, _ = server
    app = SceneMakerApp(work / "direct")
    out, result = app.run(str(frame["image"]), str(frame["depth"]), str(frame["masks"]),
                          frame["K"], choices={"generator": "lift"})  # fmt: skip
    before = json.loads((out / "refine" / "poses.json").read_text())["poses"]
    folder, again = app.rerun_object(str(out), 0, "pose", 3)
    after = json.loads((folder / "refine" / "poses.json").read_text())["poses"]
    assert after[1:] == before[1:] and again.report["placed"] == 3
    with pytest.raises(Exception, match="re-run: run a photo first"):
        app.rerun_object("", 0, "pose", 1)
    with pytest.raises(Exception, match="object index and the seed must be integers"):
        app.rerun_object(str(out), "first", "pose", 1)
