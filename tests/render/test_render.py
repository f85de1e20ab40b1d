import numpy as np
import pytest
import trimesh

from scenemaker.geometry.camera import backproject, depth_to_uint16
from scenemaker.render.scene import RenderObject, SceneRenderer
from scenemaker.scene import Camera
from scenemaker.synth.cameras import look_at


def _box(center, size, instance_id):
    mesh = trimesh.creation.box((size, size, size))
    mesh.apply_translation(center)
    return mesh, RenderObject(
        mesh.vertices, mesh.faces, instance_id, (0.8, 0.2, 0.2), mesh.sample(4000, seed=1)
    )


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(128, 96)
    yield r
    r.release()


def _camera(eye, target, fov=60.0):
    return Camera.from_fov(np.radians(fov), 128, 96, look_at(eye, target))


def test_depth_back_projects_onto_the_surface(renderer):
    _, obj = _box((0.0, 0.5, 0.0), 1.0, 2)
    renderer.set_scene([obj])
    cam = _camera([1.5, 2.0, 3.0], [0.0, 0.5, 0.0])
    view = renderer.render(cam)
    mask = view.instance == 2
    assert mask.sum() > 500
    points_cam = backproject(view.depth, cam.K, mask)
    points_world = (points_cam - cam.world_to_camera[:3, 3]) @ cam.world_to_camera[:3, :3]
    # on an axis-aligned cube's surface, the largest |coordinate - centre| is the half side
    chebyshev = np.abs(points_world - [0.0, 0.5, 0.0]).max(1)
    assert np.percentile(np.abs(chebyshev - 0.5), 99) < 5e-3  # metres, at ~3.5 m
    # the floor (id 1) lies on y = 0
    floor = backproject(view.depth, cam.K, view.instance == 1)
    floor_world = (floor - cam.world_to_camera[:3, 3]) @ cam.world_to_camera[:3, :3]
    assert np.abs(floor_world[:, 1]).max() < 1e-2
    # background has no depth
    assert (view.depth[view.instance == 0] == 0).all()
    assert view.rgb.shape == (96, 128, 3) and view.rgb.dtype == np.uint8


def test_amodal_masks_and_occlusion(renderer):
    _, front = _box((0.0, 0.5, 1.0), 1.0, 2)
    _, back = _box((0.5, 0.5, -1.0), 1.0, 3)
    renderer.set_scene([front, back])
    view = renderer.render(_camera([0.0, 0.6, 5.0], [0.0, 0.5, 0.0], fov=40))
    visible = np.stack([view.instance == 2, view.instance == 3])
    # visible pixels are always part of the amodal mask
    assert not (visible & ~view.amodal).any()
    np.testing.assert_array_equal(view.visible_pixels, visible.reshape(2, -1).sum(1))
    np.testing.assert_array_equal(view.amodal_pixels, view.amodal.reshape(2, -1).sum(1))
    assert view.visible_fraction[0] == 1.0
    # the back box is partly hidden by the front one: roughly 40-80% of it is covered
    assert 0.2 < view.visible_fraction[1] < 0.6
    np.testing.assert_allclose(view.occlusion, 1 - view.visible_fraction)
    np.testing.assert_allclose(view.truncation, 0.0)


def test_truncation_of_an_object_on_the_image_border(renderer):
    _, obj = _box((0.0, 0.5, 0.0), 0.5, 2)
    renderer.set_scene([obj])
    cam = _camera([0.0, 0.5, 4.0], [0.0, 0.5, 0.0])
    # shift the principal point so that the box centre projects onto the left image border
    K = cam.K.copy()
    K[0, 2] = -0.5
    view = renderer.render(Camera(K, cam.world_to_camera, 128, 96))
    assert view.truncation[0] == pytest.approx(0.5, abs=0.08)
    assert 0 < view.visible_pixels[0] == view.amodal_pixels[0]


def test_depth_encoding_is_millimetres():
    depth = np.array([[0.0, 1.2345, np.nan, 70.0, -1.0]])
    np.testing.assert_array_equal(depth_to_uint16(depth), [[0, 1234, 0, 0, 0]])


def test_render_validates_camera_size(renderer):
    _, obj = _box((0.0, 0.5, 0.0), 1.0, 2)
    renderer.set_scene([obj])
    with pytest.raises(ValueError, match="renderer 128x96"):
        renderer.render(Camera.from_fov(1.0, 64, 64, np.eye(4)))
