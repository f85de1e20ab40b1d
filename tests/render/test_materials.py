"""The fast renderer shows what meshes carry: a textured OBJ + MTL + PNG (built here), vertex
colours and face colours, through the same path data generation uses."""

import numpy as np
import pytest
import trimesh
from PIL import Image

from scenemaker.render.materials import render_object
from scenemaker.render.scene import RenderObject, SceneRenderer
from scenemaker.scene import Camera

QUADRANTS = {  # texture quadrant (as the PNG is drawn: row 0 at the top) -> colour
    "top_left": (230, 20, 20), "top_right": (20, 20, 230),
    "bottom_left": (230, 230, 20), "bottom_right": (20, 230, 230),
}  # fmt: skip


def _textured_obj(folder):
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:32, :32], tex[:32, 32:] = QUADRANTS["top_left"], QUADRANTS["top_right"]
    tex[32:, :32], tex[32:, 32:] = QUADRANTS["bottom_left"], QUADRANTS["bottom_right"]
    Image.fromarray(tex).save(folder / "tex.png")
    (folder / "quad.mtl").write_text("newmtl mat\nKd 1 1 1\nmap_Kd tex.png\n")
    (folder / "quad.obj").write_text(
        "mtllib quad.mtl\nv -1 -1 0\nv 1 -1 0\nv 1 1 0\nv -1 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl mat\nf 1/1 2/2 3/3\nf 1/1 3/3 4/4\n"
    )
    return folder / "quad.obj"


def _front_camera(size=64):
    w2c = np.eye(4)
    w2c[:3, :3] = np.diag([1.0, -1.0, -1.0])  # OpenCV camera looking down world -z
    w2c[:3, 3] = [0.0, 0.0, 3.0]
    return Camera.from_fov(np.radians(50), size, size, w2c)


def _render(obj, size=64):
    renderer = SceneRenderer(size, size, near=0.05, far=20.0)
    try:
        renderer.set_scene([obj], floor=False, background=(0, 0, 0))
        return renderer.render(_front_camera(size), with_amodal=False)
    finally:
        renderer.release()


def _dominant(rgb):
    return tuple(int(c) for c in np.median(rgb.reshape(-1, 3), axis=0))


def test_a_textured_obj_renders_its_texture_the_right_way_up(tmp_path):
    mesh = trimesh.load(_textured_obj(tmp_path), process=False, force="mesh")
    assert mesh.visual.kind == "texture"
    obj = render_object(mesh.vertices, mesh, 2, (0.5, 0.5, 0.5))
    assert obj.texture is not None and obj.source == 2
    view = _render(obj)
    ys, xs = np.nonzero(view.instance == 2)
    cy, cx = int(ys.mean()), int(xs.mean())
    quads = {
        "top_left": view.rgb[ys.min() + 2 : cy - 2, xs.min() + 2 : cx - 2],
        "top_right": view.rgb[ys.min() + 2 : cy - 2, cx + 2 : xs.max() - 2],
        "bottom_left": view.rgb[cy + 2 : ys.max() - 2, xs.min() + 2 : cx - 2],
        "bottom_right": view.rgb[cy + 2 : ys.max() - 2, cx + 2 : xs.max() - 2],
    }
    for name, pixels in quads.items():
        got = np.asarray(_dominant(pixels), float)
        want = np.asarray(QUADRANTS[name], float)
        # lit, so scaled: the direction of the colour is the texture's
        cosine = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
        assert cosine > 0.97, (name, got, want)


def test_a_folder_source_keeps_the_texture_into_data_generation(tmp_path):
    from scenemaker.sources.folder import FolderSource

    _textured_obj(tmp_path)
    asset = FolderSource(tmp_path).load("quad.obj")
    assert asset.mesh.visual.kind == "texture"
    obj = render_object(asset.mesh.vertices * 0.8, asset.mesh, 3, (0.5, 0.5, 0.5))
    assert obj.source == 2


def test_vertex_and_face_colours_render(tmp_path):
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    box.visual.vertex_colors = np.tile([20, 200, 20, 255], (len(box.vertices), 1))
    view = _render(render_object(box.vertices, box, 2, (0.9, 0.1, 0.1)))
    got = np.asarray(_dominant(view.rgb[view.instance == 2]), float)
    assert got[1] > 2 * max(got[0], got[2]), got  # green, not the flat red
    faces = trimesh.creation.box((1.0, 1.0, 1.0))
    colours = np.tile([200, 20, 20, 255], (len(faces.faces), 1))
    front = faces.face_normals[:, 2] > 0.5  # the faces the camera sees
    colours[front] = [20, 20, 200, 255]
    faces.visual.face_colors = colours
    obj = render_object(faces.vertices, faces, 2, (0.5, 0.5, 0.5))
    assert len(obj.vertices) == 3 * len(faces.faces)  # one colour per face: unshared corners
    view = _render(obj)
    got = np.asarray(_dominant(view.rgb[view.instance == 2]), float)
    assert got[2] > 2 * max(got[0], got[1]), got


def test_bad_colour_arrays_are_refused():
    v, f = np.zeros((3, 3)), np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="vertex_colors must be"):
        RenderObject(v, f, 2, (1, 1, 1), vertex_colors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="a texture needs uv"):
        RenderObject(v, f, 2, (1, 1, 1), texture=np.zeros((4, 4, 3), np.uint8))
