"""``OUT/report.html``: one self-contained page that shows what a run made.

The page works from ``file://`` with no server and no network: the images, ``scene.glb`` and
the 3D viewer (the UMD build of the npm package ``@google/model-viewer``, which
``scripts/setup.sh`` installs under ``.venv/node``) are inlined as ``data:`` URIs and
classic scripts, and the page's Content-Security-Policy allows it no request but ``data:``
and ``blob:`` URLs. It shows

- the photo with the input masks (``perception/masks.png``) over it;
- the output scene rendered from the photo's camera over the photo (an opacity slider), with
  each object's re-rendered mask IoU against its input mask;
- an interactive 3D view of ``scene.glb`` that opens at the photo's camera;
- per object: the crop, the de-occluded crop, a mesh thumbnail and the pose confidence;
- stage times and peak memory (``report.json``), the notes and the backends;
- metrics against the ground truth where there are some: ``OUT/metrics.json`` (a flat object of
  numbers), or the entry of this run in ``scenemaker demo``'s ``demo_report.json``.

``scenemaker view OUT`` (re)writes it; every pipeline run writes it last (a page that cannot be
made is a note in ``report.json``, never a failed run). What the page lacks (no OpenGL for the
renders, no model-viewer for the 3D view) is said on the page and returned as notes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from .errors import InputError
from .io_utils import atomic_write_bytes, read_json
from .scene import Camera, Scene

PAGE_NAME = "report.html"
MODEL_VIEWER = "@google/model-viewer"
MODEL_VIEWER_VERSION = "4.4.0"  # the version scripts/setup.sh installs
MODEL_VIEWER_BUILD = "dist/model-viewer-umd.min.js"  # UMD: a classic script, no import
MAX_SIDE = 1024  # photo-sized images are shown at most this large (pixels)
THUMB_SIDE = 128
CROP_SIDE = 192
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
           (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
           (128, 128, 0))  # fmt: skip
POLICY = ("default-src 'none'; img-src data: blob:; media-src data: blob:; font-src data:; "
          "style-src 'unsafe-inline'; script-src 'unsafe-inline' 'wasm-unsafe-eval'; "
          "connect-src data: blob:; worker-src blob:")  # fmt: skip


def model_viewer_path() -> Path | None:
    """The model-viewer build to inline: ``SCENEMAKER_MODEL_VIEWER`` (a file), else under
    ``SCENEMAKER_NODE_MODULES`` or ``<venv>/node/node_modules``; None when missing."""
    env = os.environ.get("SCENEMAKER_MODEL_VIEWER")
    if env:
        return Path(env) if Path(env).is_file() else None
    modules = os.environ.get("SCENEMAKER_NODE_MODULES")
    root = Path(modules) if modules else Path(sys.prefix) / "node" / "node_modules"
    path = root / MODEL_VIEWER / MODEL_VIEWER_BUILD
    return path if path.is_file() else None


def write_report_page(out, scene: Scene | None = None, report: dict | None = None,
                      metrics: dict | None = None) -> list[str]:  # fmt: skip
    """Write ``out/report.html`` (atomically) from a finished run's folder; returns notes on
    what the page lacks. ``scene`` / ``report`` default to ``scene.json`` / ``report.json``,
    ``metrics`` to :func:`find_metrics`."""
    out = Path(out)
    if scene is None:
        scene = Scene.load_json(out / "scene.json")
    if report is None:
        path = out / "report.json"
        report = read_json(path, "scenemaker.report/1") if path.is_file() else {}
        kinds = {"seconds": dict, "peak_rss_mb": dict, "backends": dict, "notes": list,
                 "skipped": dict}  # fmt: skip
        for key, kind in kinds.items():
            if key in report and not isinstance(report[key], kind):
                raise InputError(
                    f"{path}: {key!r} must be a JSON {'object' if kind is dict else 'array'}"
                )
    if metrics is None:
        metrics = find_metrics(out)
    notes: list[str] = []
    text = _page(out, scene, report, metrics, notes)
    atomic_write_bytes(out / PAGE_NAME, text.encode("utf-8"))
    return notes


def report_page_notes(out, scene: Scene, report: dict) -> list[str]:
    """For the pipeline: write the page; never raises (a run does not fail for its page)."""
    try:
        return [f"report.html: {note}" for note in write_report_page(out, scene, report)]
    except Exception as exc:  # noqa: BLE001 - any failure becomes a note
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [f"report.html not written ({why})"]


def find_metrics(out) -> dict:
    """Ground-truth metrics of this run, {name: number}: ``out/metrics.json``, else this run's
    entry in ``scenemaker demo``'s ``demo_report.json`` (``DEMO/scene_XX/<run>``); {} if none."""
    out = Path(out)
    try:
        if (out / "metrics.json").is_file():
            found = json.loads((out / "metrics.json").read_text())
        elif (out.parent.parent / "demo_report.json").is_file() and re.fullmatch(
            r"scene_\d+", out.parent.name
        ):
            demo = json.loads((out.parent.parent / "demo_report.json").read_text())
            found = demo["scenes"][int(out.parent.name[6:])].get(out.name, {})
        else:
            return {}
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        str(k): v
        for k, v in found.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


# ---------------------------------------------------------------------------------- images
def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_uri(array: np.ndarray, photo: bool = False) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(array))
    if photo and array.shape[0] * array.shape[1] > 300_000:  # large photos: JPEG
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
        return _uri(buffer.getvalue(), "image/jpeg")
    image.save(buffer, format="PNG", compress_level=4)
    return _uri(buffer.getvalue(), "image/png")


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) scaled down to fit ``side`` (never up)."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _read_image(path: Path, side: int, labels: bool = False) -> np.ndarray | None:
    """An image (RGB or RGBA), or a label image (``labels``: values kept, nearest sampling),
    scaled down to fit ``side``; None when the file is missing."""
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as image:
        if not labels:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        size = _fit(image.size, side)
        if size != image.size:
            image = image.resize(size, Image.NEAREST if labels else Image.BILINEAR)
        return np.array(image)


def _color(k: int) -> tuple[int, int, int]:
    return PALETTE[k % len(PALETTE)]


def _mask_layer(labels: np.ndarray, n: int) -> np.ndarray:
    """RGBA: each object's mask tinted in its colour, its outline opaque."""
    layer = np.zeros((*labels.shape, 4), np.uint8)
    for k in range(n):
        mask = labels == k + 1
        inner = mask.copy()
        for _ in range(2):  # a 2-pixel outline
            inner[1:] &= inner[:-1].copy()
            inner[:-1] &= inner[1:].copy()
            inner[:, 1:] &= inner[:, :-1].copy()
            inner[:, :-1] &= inner[:, 1:].copy()
        layer[mask] = (*_color(k), 90)
        layer[mask & ~inner] = (*_color(k), 255)
    return layer


def _scaled_camera(cam: Camera, width: int, height: int) -> Camera:
    sx, sy = width / cam.width, height / cam.height
    K = cam.K.copy()
    K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
    return Camera(K, cam.world_to_camera, width, height)


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera (OpenCV axes) of a camera at ``position`` looking at ``target``, with
    the world's +y up in the picture."""
    z = target - position
    z = z / np.linalg.norm(z)
    up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.99 else np.array([0.0, 0.0, -1.0])
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, y, z])
    w2c[:3, 3] = -w2c[:3, :3] @ position
    return w2c


def _renders(scene: Scene, cam: Camera, labels: np.ndarray, notes: list[str]) -> dict:
    """The scene from the photo's camera (RGBA, objects opaque), each object's re-rendered
    mask IoU, and a thumbnail per object; {} without OpenGL (a note says why)."""
    from .render.scene import RenderObject, SceneRenderer

    if not scene.objects:
        return {}
    result: dict = {"iou": {}, "thumbs": {}}
    renderers = []
    try:
        placed = [(obj.instance_id - 2, obj.posed_mesh()) for obj in scene.objects]
        objects = [RenderObject(np.asarray(m.vertices), np.asarray(m.faces), k + 2,
                                tuple(c / 255 for c in _color(k))) for k, m in placed]  # fmt: skip
        view_renderer = SceneRenderer(cam.width, cam.height, near=0.01, far=1000.0)
        renderers.append(view_renderer)
        view_renderer.set_scene(objects, floor=False)
        view = view_renderer.render(cam, with_amodal=False)
        rgba = np.dstack([view.rgb, np.where(view.instance >= 2, 255, 0).astype(np.uint8)])
        result["overlay"] = _image_uri(rgba)
        for k, _ in placed:
            a, b = view.instance == k + 2, labels == k + 1
            union = np.logical_or(a, b).sum()
            result["iou"][k] = float(np.logical_and(a, b).sum() / union) if union else None
        thumbs = SceneRenderer(THUMB_SIDE, THUMB_SIDE, near=0.01, far=1000.0)
        renderers.append(thumbs)
        position = cam.position
        for (k, mesh), obj in zip(placed, objects, strict=True):
            centre = mesh.bounding_box.centroid
            radius = max(float(np.linalg.norm(mesh.vertices - centre, axis=1).max()), 1e-6)
            direction = centre - position
            direction /= max(np.linalg.norm(direction), 1e-9)
            eye = centre - direction * radius / math.sin(math.radians(16))
            w2c = _look_at(eye, centre)
            thumb_cam = Camera.from_fov(math.radians(34), THUMB_SIDE, THUMB_SIDE, w2c)
            thumbs.set_scene([obj], floor=False)
            shot = thumbs.render(thumb_cam, with_amodal=False)
            alpha = np.where(shot.instance >= 2, 255, 0).astype(np.uint8)
            result["thumbs"][k] = _image_uri(np.dstack([shot.rgb, alpha]))
    except Exception as exc:  # noqa: BLE001 - e.g. no OpenGL: the page goes without renders
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        notes.append(f"no renders ({why})")
        return {}
    finally:
        for renderer in renderers:
            renderer.release()
    return result


# ---------------------------------------------------------------------------------- 3D view
def viewer_camera(scene: Scene, cam: Camera) -> dict:
    """model-viewer attributes that open the 3D view at ``cam``: the orbit's target is straight
    ahead at the objects' median depth; the element is centred on the principal point (its
    box in % of the photo's) and its vertical field of view is the photo's over that box."""
    c2w = cam.camera_to_world
    position, forward = c2w[:3, 3], c2w[:3, 2] / np.linalg.norm(c2w[:3, 2])
    depths = [float((obj.pose.t - position) @ forward) for obj in scene.objects]
    depth = max(float(np.median(depths)) if depths else 1.0, 0.05)
    target = position + forward * depth
    back = -forward  # model-viewer: camera = target + r (sin phi sin theta, cos phi, ...)
    theta = math.degrees(math.atan2(back[0], back[2]))
    phi = math.degrees(math.acos(float(np.clip(back[1], -1.0, 1.0))))
    W, H = cam.width, cam.height
    fy, cx, cy = cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    half_w = max(cx + 0.5, W - 0.5 - cx)
    half_h = max(cy + 0.5, H - 0.5 - cy)
    box = {"left": 100 * (cx + 0.5 - half_w) / W, "top": 100 * (cy + 0.5 - half_h) / H,
           "width": 200 * half_w / W, "height": 200 * half_h / H}  # fmt: skip

    def number(v, digits):  # no "-0.000"
        return f"{round(float(v), digits) + 0.0:.{digits}f}"

    return {
        "camera-target": " ".join(f"{number(v, 6)}m" for v in target),
        "camera-orbit": f"{number(theta, 4)}deg {number(phi, 4)}deg {number(depth, 6)}m",
        "field-of-view": f"{math.degrees(2 * math.atan(half_h / fy)):.4f}deg",
        "min-camera-orbit": f"auto auto {0.02 * depth:.6f}m",
        "max-camera-orbit": f"auto auto {50 * depth:.6f}m",
        "box": box,
    }


def _viewer(out: Path, scene: Scene, cam: Camera | None, photo: str, notes: list[str]) -> str:
    def missing(why: str, note: bool = True) -> str:
        if note:
            notes.append(f"no 3D view ({why})")
        return f'<div class="missing">No 3D view: {html.escape(why)}.</div>'

    if not scene.objects:
        return missing("no object was placed", note=False)
    if cam is None:
        return missing("scene.json has no camera")
    if not (out / "scene.glb").is_file():
        return missing("no scene.glb")
    if model_viewer_path() is None:
        return missing(
            f"{MODEL_VIEWER} is not installed (scripts/setup.sh: npm install --prefix "
            f".venv/node {MODEL_VIEWER}@{MODEL_VIEWER_VERSION})"
        )
    attrs = viewer_camera(scene, cam)
    box = attrs.pop("box")
    fov = float(attrs["field-of-view"][:-3])
    style = ";".join(f"{k}:{v:.4f}%" for k, v in box.items())
    glb = _uri((out / "scene.glb").read_bytes(), "model/gltf-binary")
    attr_text = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return (
        f'<div class="stack view3d" id="view3d" style="aspect-ratio:{cam.width}/{cam.height}">'
        f'<img class="behind" src="{photo}" alt="the photo">'
        f'<model-viewer src="{glb}" {attr_text} data-fov="{fov:.4f}" min-field-of-view="1deg"'
        f' max-field-of-view="170deg" camera-controls interaction-prompt="none"'
        f' loading="eager" shadow-intensity="0" style="{style}"'
        ' alt="the output scene, opened at the photo\'s camera"><div slot="progress-bar"></div>'
        "</model-viewer></div>"
        '<div class="controls"><button id="reset-camera" type="button">back to the photo\'s '
        'camera</button> <label><input type="checkbox" id="photo-behind"> photo behind</label>'
        ' <span id="view-status"></span></div>'
    )


# ---------------------------------------------------------------------------------- page
def _labels(out: Path) -> list[str]:
    for path, key in ((out / "deocclusion" / "crops.json", "crops"),
                      (out / "perception" / "objects.json", "labels")):  # fmt: skip
        try:
            items = json.loads(path.read_text())[key]
            return [str(i["label"] if isinstance(i, dict) else i) for i in items]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return []


def _num(value, digits: int = 3) -> str:
    if isinstance(value, int | float) and value is not None and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "–"


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _stages(report: dict) -> str:
    seconds = report.get("seconds", {}) or {}
    memory = report.get("peak_rss_mb", {}) or {}
    names = [s for s in seconds if s != "total"]
    top = max([seconds[s] for s in names if isinstance(seconds[s], int | float)] + [1e-9])
    rows = [[html.escape(s), _num(seconds[s], 2), _num(memory.get(s), 0),
             f'<span class="bar" style="width:{100 * (seconds[s] or 0) / top:.1f}%"></span>']
            for s in names]  # fmt: skip
    if "total" in seconds:
        rows.append(["<b>total</b>", f"<b>{_num(seconds['total'], 2)}</b>", "", ""])
    return _table(["stage", "seconds", "peak RSS (MB)", ""], rows, "stages")


def _objects(out: Path, scene: Scene, report: dict, labels: list[str], renders: dict) -> str:
    by_index = {obj.instance_id - 2: obj for obj in scene.objects}
    skipped = {**scene.metadata.get("skipped", {}), **report.get("skipped", {})}
    try:
        sources = json.loads((out / "object3d" / "objects.json").read_text())["objects"]
    except (OSError, ValueError, KeyError, TypeError):
        sources = []
    n = max([len(labels), *[k + 1 for k in by_index]])
    rows = []
    for k in range(n):
        cells = [f'<span class="swatch" style="background:rgb{_color(k)}"></span> {k}',
                 html.escape(labels[k] if k < len(labels) else by_index[k].label)]  # fmt: skip
        for kind in ("input", "amodal"):
            crop = _read_image(out / "deocclusion" / f"object_{k:02d}_{kind}.png", CROP_SIDE)
            cells.append(f'<img class="crop" src="{_image_uri(crop)}" alt="{kind} crop">'
                         if crop is not None else "–")  # fmt: skip
        thumb = renders.get("thumbs", {}).get(k)
        cells.append(f'<img class="thumb" src="{thumb}" alt="mesh">' if thumb else "–")
        obj = by_index.get(k)
        cells.append(_num(obj.confidence) if obj is not None else "–")
        cells.append(_num(renders.get("iou", {}).get(k)))
        source = sources[k] if k < len(sources) and isinstance(sources[k], dict) else {}
        per = report.get("per_object") if isinstance(report.get("per_object"), list) else []
        entry = per[k] if k < len(per) and isinstance(per[k], dict) else {}  # mesh: the chosen
        origin = str(entry.get("mesh") or source.get("source") or source.get("error") or "–")
        if isinstance(entry.get("mesh_candidates"), int) and entry["mesh_candidates"] > 1:
            origin += f" (best of {entry['mesh_candidates']} candidates)"
        scales = entry.get("stretch")
        if isinstance(scales, list) and all(isinstance(a, int | float) for a in scales):
            origin += " (stretched " + " x ".join(f"{a:.2f}" for a in scales) + ")"
        cells.append(html.escape(origin))
        why = skipped.get(str(k), skipped.get(k))
        cells.append("placed" if obj is not None else html.escape(f"skipped: {why or '?'}"))
        rows.append(cells)
    head = ["object", "label", "crop", "de-occluded", "mesh", "pose confidence",
            "mask IoU", "mesh from", "status"]  # fmt: skip
    return _table(head, rows, "objects")


def _page(out: Path, scene: Scene, report: dict, metrics: dict, notes: list[str]) -> str:
    cam = scene.cameras[0] if scene.cameras else None
    photo_arr = _read_image(out / "input" / "image.png", MAX_SIDE)
    if photo_arr is None:
        raise FileNotFoundError(f"{out / 'input' / 'image.png'}: no input image")
    photo_arr = photo_arr[..., :3]
    dh, dw = photo_arr.shape[:2]
    labels_img = _read_image(out / "perception" / "masks.png", MAX_SIDE, labels=True)
    if labels_img is None or labels_img.shape != (dh, dw):
        labels_img = np.zeros((dh, dw), np.int64)
        notes.append("no masks (perception/masks.png missing or not the photo's size)")
    labels = _labels(out)
    n = max(len(labels), int(labels_img.max()) if labels_img.size else 0)
    photo = _image_uri(photo_arr, photo=True)
    renders = {}
    if cam is not None:
        renders = _renders(scene, _scaled_camera(cam, dw, dh), labels_img, notes)
    else:
        notes.append("no renders (scene.json has no camera)")
    aspect = f"aspect-ratio:{dw}/{dh}"
    masks_layer = _image_uri(_mask_layer(labels_img, n))
    legend = " ".join(
        f'<span class="swatch" style="background:rgb{_color(k)}"></span>{k} '
        f"{html.escape(labels[k] if k < len(labels) else '')}"
        for k in range(n)
    )
    if "overlay" in renders:
        output = (f'<div class="stack" style="{aspect}"><img src="{photo}" alt="the photo">'
                  f'<img id="render-layer" src="{renders["overlay"]}" alt="the output"></div>'
                  '<div class="controls"><label>output opacity <input type="range" min="0" '
                  'max="100" value="80" data-opacity-of="render-layer"></label></div>')  # fmt: skip
    else:
        why = "no object was placed" if not scene.objects else "see the notes"
        output = f'<div class="missing">No render of the output ({why}).</div>'
    ious = [v for v in renders.get("iou", {}).values() if v is not None]
    mean_iou = f" mean mask IoU {np.mean(ious):.3f}" if ious else ""
    seconds = report.get("seconds", {}) or {}
    summary = (f"{report.get('placed', len(scene.objects))} of {report.get('objects', n)} "
               f"objects placed in {_num(seconds.get('total'), 1)} s.{mean_iou}")  # fmt: skip
    viewer = _viewer(out, scene, cam, photo, notes)
    all_notes = [*report.get("notes", []), *notes]
    metric_rows = [[html.escape(k), _num(v, 4)] for k, v in metrics.items()]
    backends = ", ".join(f"{k}: {v}" for k, v in sorted((report.get("backends") or {}).items()))
    script = model_viewer_path() if "<model-viewer" in viewer else None
    mv = script.read_text(encoding="utf-8").replace("</script", "<\\/script") if script else ""
    own = (Path(__file__).with_name("report_page.js")).read_text(encoding="utf-8")
    css = (Path(__file__).with_name("report_page.css")).read_text(encoding="utf-8")
    title = html.escape(f"SceneMaker report: {out.resolve().name}")
    sections = [
        f"<h1>{title}</h1><p>{html.escape(summary)}</p>",
        '<div class="row">',
        f'<figure><figcaption>Photo and masks</figcaption><div class="stack" style="{aspect}">'
        f'<img src="{photo}" alt="the photo"><img src="{masks_layer}" alt="masks"></div>'
        f'<div class="legend">{legend}</div></figure>',
        f"<figure><figcaption>Output from the photo's camera</figcaption>{output}</figure>",
        f"<figure><figcaption>3D view (drag to turn, scroll to zoom)</figcaption>{viewer}"
        "</figure></div>",
        f"<h2>Objects</h2>{_objects(out, scene, report, labels, renders)}",
        f"<h2>Stages</h2>{_stages(report)}",
    ]
    if metric_rows:
        sections.append(
            f"<h2>Against the ground truth</h2>{_table(['metric', 'value'], metric_rows)}"
        )
    if all_notes:
        items = "".join(f"<li>{html.escape(str(note))}</li>" for note in all_notes)
        sections.append(f"<h2>Notes</h2><ul>{items}</ul>")
    if backends:
        sections.append(f'<p class="small">backends: {html.escape(backends)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{css}</style><script>{own}</script>"
        + (f"<script>{mv}</script>" if mv else "")
        + "</head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
