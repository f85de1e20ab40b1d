"""``scenemaker app``: a local web app (Gradio 6) around the pipeline.

Upload a photo (optionally depth, masks and K), or type a text prompt / click objects for the
open-vocabulary backends; choose the backends; watch per-stage progress; turn the 3D scene
around; read the run's report; re-run one object's mesh or pose without the others; download
GLB / JSON / USD / report.

Served on 127.0.0.1 unless ``--host`` says otherwise, with Gradio's analytics off and no
public share link unless ``--share``. Every run writes an ordinary output folder (the same as
``scenemaker run --out``) under ``--workdir``. A bad upload or setting shows one line in the
page (the file by its uploaded name and what was expected) and the app keeps serving.
"""

# no "from __future__ import annotations": Gradio reads the gr.SelectData annotation
import html
import os
import re
import threading
import time
from pathlib import Path

from .errors import InputError, SceneMakerError
from .object_rerun import RERUN_STAGES

# what a user may choose in the page (the registry knows more; these run here)
CHOICES = {
    "segmenter": ["auto", "user", "grounded-sam", "sam-clicks"],
    "depth": ["auto", "user", "moge", "depth-anything", "depth-pro"],
    "deocclusion": ["classical", "flux-kontext", "none"],
    "generator": ["retrieval", "lift", "shap-e", "hunyuan3d"],
    "pose": ["dit", "box_fit", "registration"],
    "refine": ["render", "fit", "icp", "overlap", "none"],
}
# the one-line errors a run can end in: shown in the page, never a traceback
USER_ERRORS = (SceneMakerError, OSError, ValueError, RuntimeError, ImportError)
# columns of the per-object table (report.json "per_object")
TABLE = ["index", "label", "mesh", "placed", "confidence", "skipped", "note"]


def _clean(message: str, uploads: dict[str, str]) -> str:
    """One line; uploaded files named by the name they were uploaded with."""
    line = str(message).splitlines()[0] if str(message) else "failed"
    for path, name in uploads.items():
        line = line.replace(path, name)
    return line


def _upload(value, what: str, uploads: dict) -> str | None:
    if value is None or value == "":
        return None
    path = value if isinstance(value, str) else getattr(value, "name", None) or value["path"]
    name = Path(path).name
    if not Path(path).is_file():
        raise InputError(f"{what}: the upload of {name} did not arrive; upload it again")
    uploads[str(path)] = f"{what} {name}"
    return str(path)


class SceneMakerApp:
    """The app's work, independent of the page: tests call it directly too."""

    def __init__(self, workdir: str | Path, device: str = "cpu"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.device = device
        self._lock = threading.Lock()  # one pipeline at a time (two cores, one GL context)
        self._count = 0

    def _folder(self) -> Path:
        self._count += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.workdir / f"run-{stamp}-{os.getpid()}-{self._count:03d}"
        return folder

    def config(self, uploads: dict, photo, depth, masks, K, fov, prompt, clicks, choices: dict):
        from .pipeline import PipelineConfig
        from .pipeline_config import parse_clicks

        fov_value = None
        if fov not in (None, ""):
            try:
                fov_value = float(fov)
            except (TypeError, ValueError):
                raise InputError(f"FOV {fov!r}: expected degrees, e.g. 60") from None
        config = PipelineConfig(
            masks=_upload(masks, "masks", uploads),
            depth_file=_upload(depth, "depth", uploads),
            K=(K or "").strip() or None,
            fov=fov_value,
            prompt=(prompt or "").strip() or None,
            clicks=parse_clicks((clicks or "").strip() or None),
            device=self.device,
            **{key: value for key, value in choices.items() if value},
        )
        for key, value in choices.items():
            if value and key in CHOICES and value not in CHOICES[key]:
                raise InputError(f"{key} {value!r}: expected one of {', '.join(CHOICES[key])}")
        config.validate()
        return config

    def run(self, photo, depth=None, masks=None, K=None, fov=None, prompt=None, clicks=None,
            choices: dict | None = None, on_stage=None):  # fmt: skip
        """Run the pipeline on uploads; returns the output folder and the RunResult."""
        from .pipeline import SceneMakerPipeline

        uploads: dict[str, str] = {}
        try:
            image = _upload(photo, "photo", uploads)
            if image is None:
                raise InputError("photo: upload a photo (PNG, JPEG, WebP, TIFF, BMP)")
            config = self.config(uploads, photo, depth, masks, K, fov, prompt, clicks,
                                 dict(choices or {}))  # fmt: skip
            out = self._folder()
            with self._lock:
                pipeline = SceneMakerPipeline(config, progress=False, on_stage=on_stage)
                result = pipeline.run(image, out)
            return out, result
        except USER_ERRORS as exc:
            raise InputError(_clean(exc, uploads)) from None

    def rerun_object(self, out: str | Path, index, stage: str, seed, on_stage=None):
        """Re-run one object's mesh (``object3d``) or pose (``pose``) in a finished run with
        another seed, keeping every other object as it was."""
        import json

        from .object_rerun import rerun_object
        from .pipeline import PipelineConfig, SceneMakerPipeline

        if not out or not (Path(out) / "config.json").is_file():
            raise InputError("re-run: run a photo first")
        if stage not in RERUN_STAGES:
            raise InputError(f"re-run stage {stage!r}: expected {' | '.join(RERUN_STAGES)}")
        try:
            index, seed = int(index), int(seed)
        except (TypeError, ValueError):
            raise InputError("re-run: the object index and the seed must be integers") from None
        try:
            saved = json.loads((Path(out) / "config.json").read_text())
            saved.pop("schema", None)
            for key in ("from_stage", "earlier_stages"):
                saved.pop(key, None)
            config = PipelineConfig(**saved)
            with self._lock:
                pipeline = SceneMakerPipeline(config, progress=False, on_stage=on_stage)
                return Path(out), rerun_object(pipeline, out, index, stage, {"seed": seed})
        except USER_ERRORS as exc:
            raise InputError(_clean(exc, {})) from None


def outputs(out: Path, result) -> tuple:
    """What the page shows of a run: the GLB, the report page, the per-object rows, the
    download files and a status line."""
    report = result.report
    rows = [[r.get(c) for c in TABLE] for r in report.get("per_object", [])]
    files = [str(out / name) for name in ("scene.glb", "scene.json", "scene.usda", "report.html",
                                           "report.json") if (out / name).is_file()]  # fmt: skip
    page = out / "report.html"
    frame = ""
    if page.is_file():
        frame = (
            '<iframe title="report" style="width:100%;height:900px;border:0" sandbox="allow-scripts"'
            f' srcdoc="{html.escape(page.read_text(), quote=True)}"></iframe>'
        )
    status = (
        f"{report['placed']} of {report['objects']} objects placed in "
        f"{report['seconds']['total']:.1f} s ({out.name})"
    )
    notes = [f"object {k} skipped: {why}" for k, why in report.get("skipped", {}).items()]
    if notes:
        status += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return str(out / "scene.glb"), frame, rows, files, status, str(out)


def build(app: SceneMakerApp):
    """The Gradio Blocks of the page."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def progress_callback(progress):
        from .pipeline_config import STAGES

        def on_stage(name, index, total):
            progress((index, total), desc=f"{name} ({index + 1}/{len(STAGES)})")

        return on_stage

    def run(photo, depth, masks, K, fov, prompt, clicks, segmenter, depth_backend, deocclusion,
            generator, pose, refine, usd, progress=gr.Progress(track_tqdm=True)):  # noqa: B008  # fmt: skip
        choices = {"segmenter": segmenter, "depth": depth_backend, "deocclusion": deocclusion,
                   "generator": generator, "pose": pose, "refine": refine, "usd": bool(usd)}  # fmt: skip
        try:
            out, result = app.run(photo, depth, masks, K, fov, prompt, clicks, choices,
                                  on_stage=progress_callback(progress))  # fmt: skip
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return outputs(out, result)

    def rerun(out, index, stage, seed, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        try:
            folder, result = app.rerun_object(out, index, stage, seed,
                                              on_stage=progress_callback(progress))  # fmt: skip
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return outputs(folder, result)

    def add_click(clicks, new_object, evt: gr.SelectData):
        x, y = evt.index[:2]
        point = f"{int(x)},{int(y)}"
        clicks = (clicks or "").strip()
        if not clicks:
            return point
        return f"{clicks}|{point}" if new_object else f"{clicks};{point}"

    def preview(photo):
        from .perception.inputs import load_image

        try:  # what the clicks are on: the photo as the pipeline reads it
            return load_image(photo, max_side=2048).rgb if photo else None
        except USER_ERRORS:
            return None  # "Make the scene" says what is wrong with it

    with gr.Blocks(analytics_enabled=False, title="SceneMaker") as page:
        gr.Markdown(
            "# SceneMaker\nOne photo (or RGB-D frame) in, a 3D scene out: a mesh per object, "
            "placed to match the photo. Upload a photo; add depth, masks and K if you have "
            "them (else a depth model and a text prompt are used)."
        )
        folder = gr.State("")
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.File(label="Photo", type="filepath")
                shown = gr.Image(label="Click objects (sam-clicks)", interactive=False, height=260)
                with gr.Row():
                    depth = gr.File(label="Depth (16-bit PNG mm, EXR, NPY)", type="filepath")
                    masks = gr.File(label="Masks (label PNG, COCO RLE JSON)", type="filepath")
                K = gr.Textbox(label="K: fx,fy,cx,cy (pixels)", placeholder="e.g. 500,500,320,240")
                fov = gr.Textbox(label="or horizontal FOV (degrees)", placeholder="e.g. 60")
                prompt = gr.Textbox(label="Text prompt (grounded-sam)", placeholder="chair. lamp.")
                with gr.Row():
                    clicks = gr.Textbox(label="Clicks 'x,y;x,y|x,y' (sam-clicks)", scale=3)
                    new_object = gr.Checkbox(label="next click: new object", value=True)
                with gr.Accordion("Backends", open=False):
                    picks = {
                        key: gr.Dropdown(CHOICES[key], value=CHOICES[key][0], label=key)
                        for key in CHOICES
                    }
                    usd = gr.Checkbox(label="also write scene.usda", value=False)
                go = gr.Button("Make the scene", variant="primary")
            with gr.Column(scale=2):
                status = gr.Markdown()
                model = gr.Model3D(label="Scene", height=480, interactive=False)
                table = gr.Dataframe(headers=TABLE, label="Objects", interactive=False)
                with gr.Row():
                    index = gr.Number(label="object index", value=0, precision=0)
                    stage = gr.Dropdown(list(RERUN_STAGES), value="pose", label="re-run")
                    seed = gr.Number(label="seed", value=1, precision=0)
                    again = gr.Button("Re-run this object")
                files = gr.File(label="Downloads", file_count="multiple", interactive=False)
        report = gr.HTML(label="Report")
        photo.change(preview, photo, shown, api_name=False)
        shown.select(add_click, [clicks, new_object], clicks, api_name=False)
        results = [model, report, table, files, status, folder]
        go.click(
            run,
            [photo, depth, masks, K, fov, prompt, clicks, *picks.values(), usd],
            results,
            api_name="run",
        )
        again.click(rerun, [folder, index, stage, seed], results, api_name="rerun")
    return page


def serve(host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          workdir: str | Path | None = None, device: str = "cpu") -> None:  # fmt: skip
    import tempfile

    if not re.fullmatch(r"[\w.:\-\[\]]+", host):
        raise InputError(f"--host {host!r}: expected an address such as 127.0.0.1")
    if not 0 < port < 65536:
        raise InputError(f"--port {port}: expected 1..65535")
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="scenemaker-app-"))
    app = SceneMakerApp(workdir, device)
    page = build(app)
    print(f"SceneMaker app: http://{host}:{port}/ (runs in {workdir})", flush=True)
    page.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=share, allowed_paths=[str(workdir)],
        show_error=True, quiet=True,
    )  # fmt: skip
