"""``data generate --renderer cycles``: Cycles (in the bpy environment) renders the same ids
and depths as the fast renderer, coloured images, and the writer writes the same files."""

import os

import numpy as np
import pytest
import trimesh

from scenemaker.blender import blender_python
from scenemaker.render.materials import render_object
from scenemaker.scene import Camera
from scenemaker.synth.cameras import ViewConfig
from scenemaker.synth.cycles import near_id_edge
from scenemaker.synth.generate import GenerateConfig, GenerationError, generate_dataset

needs_blender = pytest.mark.skipif(
    blender_python() is None and not os.environ.get("CI"),
    reason="scenemaker blender setup makes the bpy environment (scripts/setup.sh does)",
)  # in CI it must be there: scripts/setup.sh makes it, and the tests then fail loudly

W, H = 64, 48


def _look_at(eye, target):
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, np.cross(z, x), z])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


def _objects():
    box = trimesh.creation.box((0.4, 0.6, 0.3))
    colors = np.tile([200, 40, 40, 255], (len(box.faces), 1))
    colors[::2] = [40, 190, 60, 255]
    box.visual.face_colors = colors  # per-face colours, as procedural objects have
    cyl = trimesh.creation.cylinder(0.15, 0.5)
    upright = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])[:3, :3]
    return [
        render_object(box.vertices + [-0.25, 0.3, 0.0], box, 2, (0.8, 0.2, 0.2)),
        render_object(cyl.vertices @ upright.T + [0.3, 0.25, 0.1], cyl, 3, (0.2, 0.3, 0.8)),
    ]


@pytest.fixture(scope="module")
def both_views():
    from scenemaker.render.scene import SceneRenderer
    from scenemaker.synth.cycles import CyclesRenderer

    # off-centre principal point and fx != fy: Blender's lens shift and pixel aspect
    K = np.array([[60.0, 0.0, W / 2 - 0.5 + 3.3], [0.0, 63.0, H / 2 - 0.5 - 2.1], [0, 0, 1]])
    camera = Camera(K, _look_at([0.5, 1.1, 2.1], [0.0, 0.25, 0.0]), W, H)
    fast = SceneRenderer(W, H)
    fast.set_scene(_objects())
    cycles = CyclesRenderer(W, H, samples=4)
    cycles.set_scene(_objects())
    try:
        yield cycles.render(camera), fast.render(camera)
    finally:
        fast.release()
        cycles.release()


@needs_blender
def test_cycles_ids_and_depth_match_fast_renderer(both_views):
    cyc, fast = both_views
    assert cyc.instance.shape == (H, W) and cyc.depth.dtype == np.float32
    assert set(np.unique(fast.instance)) == {1, 2, 3}  # floor + both objects
    away = ~(near_id_edge(cyc.instance) | near_id_edge(fast.instance))
    assert away.mean() > 0.5
    agree = (cyc.instance == fast.instance)[away].mean()
    assert agree >= 0.99, agree
    both = (cyc.depth > 0) & (fast.depth > 0)
    assert both.mean() > 0.5
    assert np.median(np.abs(cyc.depth - fast.depth)[both]) <= 1e-3
    # statistics: amodal masks from the fast renderer, visible pixels from Cycles' ids
    assert np.array_equal(cyc.amodal, fast.amodal)
    assert np.array_equal(cyc.visible_pixels, [(cyc.instance == i).sum() for i in (2, 3)])
    assert np.allclose(cyc.truncation, fast.truncation)


@needs_blender
def test_cycles_rgb_has_colour_and_writer_writes_the_same_files(both_views, tmp_path):
    cyc, _ = both_views
    assert cyc.rgb.shape == (H, W, 3) and cyc.rgb.dtype == np.uint8
    assert cyc.rgb.std(axis=(0, 1)).max() > 5  # not flat
    for obj_id in (2, 3):  # the objects are coloured, not grey
        mean = cyc.rgb[cyc.instance == obj_id].astype(float).mean(0)
        assert mean.max() - mean.min() > 30, (obj_id, mean)

    def run(renderer, **kw):
        config = GenerateConfig(
            objects="procedural", views=ViewConfig(views=1, width=W, height=H,
                                                   min_visible_pixels=4),
            surface_samples=256, renderer=renderer, **kw,
        )  # fmt: skip
        out = tmp_path / renderer
        generate_dataset(out, 1, config, progress=False)
        return out, sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())

    out, cycles_files = run("cycles", samples=2)
    _, fast_files = run("fast")
    assert cycles_files == fast_files
    import json

    render = json.loads((out / "scene_000000" / "scene.json").read_text())["metadata"]["render"]
    assert render["renderer"] == "cycles" and render["samples"] == 2


def test_renderer_settings():
    fast = GenerateConfig()
    assert "renderer" not in fast.to_dict()  # fast runs' generate.json as before: resumable
    cycles = GenerateConfig(renderer="cycles", samples=4)
    assert GenerateConfig.from_dict(cycles.to_dict()) == cycles
    with pytest.raises(GenerationError, match="renderer"):
        GenerateConfig(renderer="eevee").validate()
    with pytest.raises(GenerationError, match="samples"):
        GenerateConfig(renderer="cycles", samples=0).validate()


def test_cli_cycles_options(tmp_path, capsys):
    from scenemaker.cli import main

    out = str(tmp_path / "d")
    assert main(["data", "generate", "--out", out, "--samples", "4"]) == 2
    assert "--renderer cycles" in capsys.readouterr().err
    assert main(["data", "generate", "--out", out, "--renderer", "cycles",
                 "--hdri", str(tmp_path / "missing")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--hdri" in err or "blender setup" in err
    assert not (tmp_path / "d").exists()
