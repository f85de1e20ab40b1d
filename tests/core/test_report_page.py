"""OUT/report.html: written by every run and by ``scenemaker view``, self-contained, opened in
the real headless Chromium (scripts/setup.sh installs it) over the DevTools protocol: no
console error, every image loads, no request leaves the machine, and the 3D view opens at the
photo's camera (it covers the input masks)."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import time

import numpy as np
import pytest

from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline
from scenemaker.report_page import (
    PAGE_NAME,
    find_metrics,
    report_page_notes,
    viewer_camera,
    write_report_page,
)
from scenemaker.scene import Camera, ObjectInstance, Pose, Scene

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,1000", "--hide-scrollbars",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(frame, tmp_path_factory):
    """A pipeline run on the small rendered frame (ground-truth meshes, box-fit poses)."""
    cfg = PipelineConfig(masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
                         generator="oracle", pose="box_fit", refine="none")  # fmt: skip
    extra = [{"gt_mesh": obj.mesh} for obj in frame["objects"]]
    out = tmp_path_factory.mktemp("page") / "run"
    return SceneMakerPipeline(cfg, progress=False).run(frame["image"], out, extra=extra)


# ------------------------------------------------------------------ DevTools over a pipe
class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4:
    replies and events out, JSON messages ended by NUL): no websocket library needed."""

    def __init__(self, binary: str, flags: list[str]):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        # away from 3 and 4, so that bash can put them there for Chromium
        to_child, from_child = (self._high(fd) for fd in (to_child, from_child))
        shell = f'exec "$0" "$@" 3<&{to_child} 4>&{from_child} {to_child}<&- {from_child}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", shell, binary, "--remote-debugging-pipe", *flags, "about:blank"],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._id, self.events = b"", 0, []

    @staticmethod
    def _high(fd: int) -> int:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return high

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:  # fmt: skip
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (reply := self._next(deadline)) is not None:
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method} in {timeout} s")

    def _next(self, deadline: float) -> dict | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is missing: scripts/setup.sh installs it (apt-get install chromium)")
    return binary


@pytest.fixture(scope="module")
def opened(run, tmp_path_factory):
    """report.html opened in headless Chromium: its state once ready, the DevTools events and
    a screenshot of the 3D view at the photo's size (on a magenta background)."""
    page = run.out / PAGE_NAME
    profile = tmp_path_factory.mktemp("chromium-profile")
    browser = Chromium(_chromium(), [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"])
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        target = next(t for t in targets if t["type"] == "page")
        session = browser.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)

        def evaluate(expression: str):
            result = browser.send(
                "Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                     "awaitPromise": True}, session,
            )  # fmt: skip
            return result["result"].get("value")

        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
        deadline = time.monotonic() + 60
        state = {}
        while time.monotonic() < deadline and state.get("status") != "ready":
            time.sleep(0.25)
            state = json.loads(evaluate("JSON.stringify(document.documentElement.dataset)"))
        state["img_elements"] = evaluate("document.images.length")
        rect = json.loads(
            evaluate("""(async () => {
                const view = document.getElementById('view3d');
                view.style.background = 'rgb(255, 0, 255)';
                for (let i = 0; i < 3; i++) await new Promise(r => requestAnimationFrame(r));
                return JSON.stringify(view.getBoundingClientRect());
            })()""")
        )
        width = run.scene.cameras[0].width
        clip = {"x": rect["x"], "y": rect["y"], "width": rect["width"],
                "height": rect["height"], "scale": width / rect["width"]}  # fmt: skip
        shot = browser.send("Page.captureScreenshot", {"format": "png", "clip": clip}, session)
        return {"state": state, "events": list(browser.events), "url": page.resolve().as_uri(),
                "shot": base64.b64decode(shot["data"])}  # fmt: skip
    finally:
        browser.close()


# ------------------------------------------------------------------ the file
def test_every_run_writes_a_self_contained_page(run):
    page = run.out / PAGE_NAME
    assert page.is_file()
    assert not [n for n in run.report["notes"] if "report.html" in n], run.report["notes"]
    text = page.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    body = text.split("</head>", 1)[1]
    sources = re.findall(r'\ssrc="([^"]*)"', body)
    assert len(sources) >= 4 + 3 * 3  # photo x3, masks, output, scene.glb, 3 per object
    assert all(s.startswith("data:") for s in sources)
    head = text.split("</head>", 1)[0]
    assert "<script src" not in head and 'type="module"' not in head
    assert "<model-viewer" in body and "customElements.define" in head


def test_page_is_fast_and_rewritten_by_view(run, capsys, tmp_path):
    from scenemaker.cli import main

    out = tmp_path / "run"
    shutil.copytree(run.out, out)
    (out / PAGE_NAME).unlink()
    start = time.perf_counter()
    assert write_report_page(out) == []
    assert time.perf_counter() - start < 1.0  # a small scene: well under a second
    (out / PAGE_NAME).unlink()
    assert main(["view", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str((out / PAGE_NAME).resolve())
    assert (out / PAGE_NAME).is_file()
    assert main(["view", str(tmp_path / "nowhere")]) == 2
    assert "no scene.json" in capsys.readouterr().err


def test_a_page_that_cannot_be_made_is_a_note(run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(run.out, out)
    (out / "input" / "image.png").unlink()
    notes = report_page_notes(out, run.scene, run.report)
    assert len(notes) == 1 and notes[0].startswith("report.html not written")
    shutil.copy(run.out / "input" / "image.png", out / "input" / "image.png")
    monkeypatch.setenv("SCENEMAKER_MODEL_VIEWER", str(tmp_path / "missing.js"))
    notes = report_page_notes(out, run.scene, run.report)
    assert any("no 3D view" in n and "model-viewer" in n for n in notes), notes
    text = (out / PAGE_NAME).read_text()
    assert "<model-viewer src" not in text and "No 3D view" in text


def test_metrics_are_shown_when_there_is_ground_truth(run, tmp_path):
    demo = tmp_path / "demo"
    out = demo / "scene_00" / "pipeline"
    shutil.copytree(run.out, out)
    entry = {"placed": 3, "cd_s": 0.01, "f_score_s": 0.9, "seconds": {"total": 1.0}}
    (demo / "demo_report.json").write_text(json.dumps({"scenes": [{"pipeline": entry}]}))
    assert find_metrics(out) == {"placed": 3, "cd_s": 0.01, "f_score_s": 0.9}
    write_report_page(out)
    assert "Against the ground truth" in (out / PAGE_NAME).read_text()
    (out / "metrics.json").write_text(json.dumps({"iou_b": 0.5}))
    assert find_metrics(out) == {"iou_b": 0.5}
    assert find_metrics(run.out) == {}


def test_viewer_camera_is_the_photo_camera():
    w2c = np.diag([1.0, -1.0, -1.0, 1.0])  # the pipeline's: OpenGL world = camera at the origin
    K = np.array([[100.0, 0, 79.5], [0, 100.0, 59.5], [0, 0, 1]])
    scene = Scene([ObjectInstance(None, "box", Pose(np.eye(3), np.array([0.3, 0.0, -2.0]), 1.0))])
    attrs = viewer_camera(scene, Camera(K, w2c, 160, 120))
    assert attrs["camera-target"] == "0.000000m 0.000000m -2.000000m"
    assert attrs["camera-orbit"] == "0.0000deg 90.0000deg 2.000000m"
    assert float(attrs["field-of-view"][:-3]) == pytest.approx(np.degrees(2 * np.arctan(0.6)))
    assert attrs["box"] == pytest.approx({"left": 0, "top": 0, "width": 100, "height": 100})
    K[0, 2] = 99.5  # principal point right of centre: the view is wider, its left edge outside
    box = viewer_camera(scene, Camera(K, w2c, 160, 120))["box"]
    assert box["width"] == pytest.approx(125) and box["left"] == pytest.approx(0)
    K[0, 2] = 59.5
    box = viewer_camera(scene, Camera(K, w2c, 160, 120))["box"]
    assert box["width"] == pytest.approx(125) and box["left"] == pytest.approx(-25)


# ------------------------------------------------------------------ in Chromium
def test_page_loads_every_image_without_console_error(opened):
    state, events = opened["state"], opened["events"]
    assert state.get("status") == "ready", state
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e for e in events if e.get("method") == "Runtime.consoleAPICalled"
               and e["params"]["type"] in ("error", "assert")]  # fmt: skip
    errors += [e for e in events if e.get("method") == "Log.entryAdded"
               and e["params"]["entry"]["level"] == "error"]  # fmt: skip
    assert not errors, errors[:3]
    assert state["errors"] == "0", state
    assert state["model"] == "loaded", state
    assert int(state["images"]) == state["img_elements"] >= 13 and state["broken"] == "0", state


def test_no_request_leaves_the_machine(opened):
    urls = [e["params"]["request"]["url"] for e in opened["events"]
            if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
    others = [u for u in urls if not u.startswith(("data:", "blob:")) and u != opened["url"]]
    assert not others, others
    assert any(u.startswith("data:model/gltf-binary") for u in urls)  # the GLB, inlined
    failed = [e for e in opened["events"] if e.get("method") == "Network.loadingFailed"]
    assert not failed, failed[:3]


def test_3d_view_opens_at_the_photo_camera(run, opened):
    from PIL import Image

    camera = run.scene.cameras[0]
    assert float(opened["state"]["fov"]) == pytest.approx(np.degrees(camera.yfov), abs=0.05)
    shot = np.asarray(Image.open(io.BytesIO(opened["shot"])).convert("RGB")).astype(int)
    if shot.shape[:2] != (camera.height, camera.width):
        resized = Image.fromarray(shot.astype(np.uint8)).resize((camera.width, camera.height))
        shot = np.asarray(resized).astype(int)
    drawn = np.abs(shot - [255, 0, 255]).sum(-1) > 60  # anything but the magenta background
    masks = np.asarray(Image.open(run.out / "perception" / "masks.png")) > 0
    iou = (drawn & masks).sum() / (drawn | masks).sum()
    assert iou >= 0.7, f"3D view vs input masks: IoU {iou:.3f}"


def test_view_on_a_damaged_report_is_one_line(run, tmp_path, capsys):
    from scenemaker.cli import main

    out = tmp_path / "run"
    shutil.copytree(run.out, out)
    for text, expected in (("{", "report.json: not valid JSON"),
                           ('{"schema": "scenemaker.report/1", "seconds": "x"}',
                            "report.json: 'seconds' must be a JSON object")):  # fmt: skip
        (out / "report.json").write_text(text)
        code = main(["view", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and expected in err[0], err
