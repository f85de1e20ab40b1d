"""`scenemaker export --blend`: the .blend, rendered by Blender's Workbench engine at its own
settings, has the photo's size and its objects cover the input masks (true poses), also with
an off-centre principal point and fx != fy."""

import numpy as np
import pytest
from PIL import Image

from scenemaker.blender import blender_python, export_blend, render_ids
from scenemaker.errors import InputError
from scenemaker.eval.rerender import mask_iou, render_instance_masks, true_scene

pytestmark = pytest.mark.skipif(
    blender_python() is None and not __import__("os").environ.get("CI"),
    reason="scenemaker blender setup makes the bpy environment (scripts/setup.sh does)",
)  # in CI it must be there: scripts/setup.sh makes it, and the tests below then fail loudly


def _scene(frame, K=None, size=None):
    return true_scene(frame["view"], frame["objects"], K, size)


def _blender_ids(scene, tmp_path):
    glb, blend, png = tmp_path / "scene.glb", tmp_path / "scene.blend", tmp_path / "ids.png"
    scene.export_glb(glb)
    export_blend(scene, glb, blend)
    assert (
        blend.is_file()
        and not list(tmp_path.glob("*.tmp*"))
        and not list(tmp_path.glob("*.blend1"))
    )
    colors = {}
    for obj in scene.objects:
        k = obj.instance_id - 2
        colors[f"object_{obj.instance_id:02d}"] = [(k + 1) * 0.25, 0.0, 0.0]
    render_ids(blend, png, colors)
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    ids = {}
    for obj in scene.objects:
        k = obj.instance_id - 2
        level = 1.055 * ((k + 1) * 0.25) ** (1 / 2.4) - 0.055  # Standard view: sRGB encoded
        ids[obj.instance_id] = np.abs(rgb[..., 0] - level * 255) <= 6
    return rgb.shape[:2], ids


def test_the_blend_renders_the_photos_masks(frame, tmp_path):
    scene = _scene(frame)
    (h, w), ids = _blender_ids(scene, tmp_path)
    view = frame["view"]
    assert (h, w) == view.depth.shape  # the photo's size
    for k, obj in enumerate(frame["objects"]):
        iou = mask_iou(ids[k + 2], view.instance == obj.instance_id)
        assert iou >= 0.9, (k, iou)


def test_an_off_centre_principal_point_and_unequal_focal_lengths_survive(frame, tmp_path):
    view = frame["view"]
    h, w = view.depth.shape
    K = np.array(view.camera.K, dtype=float)
    K[0, 2] -= 14.0  # the photo cropped on the left: principal point off centre
    K[1, 1] *= 1.2  # and stretched vertically: fy != fx
    K[1, 2] = (K[1, 2] + 0.5) * 1.2 - 0.5
    size = (w - 14, int(round(h * 1.2)))
    scene = _scene(frame, K, size)
    (bh, bw), ids = _blender_ids(scene, tmp_path)
    assert (bw, bh) == size
    ours = render_instance_masks(scene)  # SceneMaker's renderer (matches the photo exactly)
    for key, mask in ours.items():
        assert mask.any()
        assert mask_iou(ids[key], mask) >= 0.9, (key, mask_iou(ids[key], mask))


def test_a_wrong_blend_path_is_one_line(frame, tmp_path):
    with pytest.raises(InputError, match=r"--blend .*scene.glb: expected a \.blend path"):
        export_blend(_scene(frame), tmp_path / "x.glb", tmp_path / "scene.glb")


def test_export_blend_from_a_runs_folder(frame, tmp_path, capsys):
    from scenemaker.cli import main
    from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline

    config = PipelineConfig(masks=str(frame["masks"]), depth_file=str(frame["depth"]),
                            K=frame["K"], generator="lift", pose="box_fit", refine="none")  # fmt: skip
    out = tmp_path / "run"
    result = SceneMakerPipeline(config, progress=False).run(frame["image"], out)
    assert main(["export", str(out / "scene.json"), "--blend", str(out / "scene.blend")]) == 0
    assert "the photo's camera" in capsys.readouterr().out
    png = tmp_path / "ids.png"
    render_ids(out / "scene.blend", png, {"object_": [1.0, 1.0, 1.0]})
    rendered = np.asarray(Image.open(png).convert("L")) > 128
    assert rendered.shape == frame["view"].depth.shape
    placed = np.zeros_like(rendered)
    for obj in result.scene.objects:
        placed |= frame["view"].instance == frame["objects"][obj.instance_id - 2].instance_id
    assert mask_iou(rendered, placed) > 0.5  # box-fit placement, not exact: but in the photo
    assert main(["export", str(out / "scene.json"), "--blend", str(tmp_path / "x.obj")]) == 2
    assert "--blend" in capsys.readouterr().err
