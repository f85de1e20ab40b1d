import json

import numpy as np
import pygltflib
import pytest
import trimesh

from scenemaker.geometry import geodesic_angle, matrix_to_rot6d, rot6d_to_matrix, yaw_matrix
from scenemaker.geometry.canonical import Z_UP_TO_Y_UP, canonical_transform
from scenemaker.scene import Camera, ObjectInstance, Pose, Scene
from scenemaker.synth.cameras import look_at


def _camera():
    return Camera.from_fov(np.radians(50), 64, 48, look_at([0, 1.5, 4], [0, 0.3, 0]))


def _scene():
    objects = []
    for k in range(3):
        mesh = trimesh.creation.box((2.0, 1.0, 0.5))
        pose = Pose(yaw_matrix(0.3 * k), [k * 1.5, 0.25, 0.0], 0.5 + 0.1 * k)
        objects.append(ObjectInstance(mesh, f"box {k}", pose, instance_id=k + 2, color=(1, 0, 0)))
    return Scene(objects, [_camera()], {"note": "test"})


def test_pose_matrix_places_canonical_points():
    pose = Pose(yaw_matrix(np.pi / 2), [1.0, 2.0, 3.0], 4.0)
    p = np.array([[1.0, 0.0, 0.0]])
    # s/2 = 2: (1,0,0) -> yaw 90 deg about +y -> (0,0,-1) * 2 + t
    np.testing.assert_allclose(pose.apply(p), [[1.0, 2.0, 1.0]], atol=1e-12)
    homog = np.c_[p, np.ones(1)] @ pose.matrix.T
    np.testing.assert_allclose(homog[:, :3], pose.apply(p))


def test_pose_rejects_bad_values():
    with pytest.raises(ValueError, match="rotation"):
        Pose(np.diag([1.0, 1.0, -1.0]), np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="size"):
        Pose(np.eye(3), np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="t must have shape"):
        Pose(np.eye(3), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        Pose(np.eye(3), [np.nan, 0, 0], 1.0)


def test_rot6d_round_trip_and_gram_schmidt(rng):
    from scipy.spatial.transform import Rotation

    R = Rotation.random(16, random_state=1).as_matrix()
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(R)), R, atol=1e-12)
    noisy = matrix_to_rot6d(R) + 0.05 * rng.normal(size=(16, 6))
    out = rot6d_to_matrix(noisy)
    np.testing.assert_allclose(
        out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(out), 1.0)
    assert geodesic_angle(yaw_matrix(0.0), yaw_matrix(0.7)) == pytest.approx(0.7)


def test_canonical_transform_and_z_up():
    pts = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, 2.0]])
    m = canonical_transform(pts)
    out = pts @ m[:3, :3].T + m[:3, 3]
    np.testing.assert_allclose(out, [[-1.0, -0.25, -0.5], [1.0, 0.25, 0.5]])
    # z-up "up" (0, 0, 1) becomes y-up (0, 1, 0)
    np.testing.assert_allclose(Z_UP_TO_Y_UP[:3, :3] @ [0, 0, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="zero extent"):
        canonical_transform(np.zeros((3, 3)))


def test_camera_projection_matches_intrinsics():
    cam = _camera()
    target = np.array([[0.0, 0.3, 0.0]])
    uv, z = cam.project(target)
    np.testing.assert_allclose(uv[0], [cam.K[0, 2], cam.K[1, 2]], atol=1e-9)
    assert z[0] == pytest.approx(np.linalg.norm([0, 1.2, 4]))
    assert cam.yfov == pytest.approx(np.radians(50))


def test_scene_json_round_trip(tmp_path):
    scene = _scene()
    for k, obj in enumerate(scene.objects):
        obj.mesh.export(tmp_path / f"m{k}.ply")
        obj.mesh_file = f"m{k}.ply"
    scene.save_json(tmp_path / "scene.json")
    payload = json.loads((tmp_path / "scene.json").read_text())
    assert payload["schema"] == "scenemaker.scene/1"
    loaded = Scene.load_json(tmp_path / "scene.json")
    assert [o.label for o in loaded.objects] == ["box 0", "box 1", "box 2"]
    for a, b in zip(scene.objects, loaded.objects, strict=True):
        np.testing.assert_allclose(a.pose.matrix, b.pose.matrix)
        np.testing.assert_allclose(a.mesh.vertices, b.mesh.vertices, atol=1e-6)
    np.testing.assert_allclose(loaded.cameras[0].K, scene.cameras[0].K)


def test_scene_json_errors(tmp_path):
    bad = tmp_path / "scene.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Scene.load_json(bad)
    bad.write_text(json.dumps({"schema": "other/1"}))
    with pytest.raises(ValueError, match="expected schema"):
        Scene.load_json(bad)


def test_export_glb_has_named_nodes_and_camera(tmp_path):
    scene = _scene()
    path = tmp_path / "scene.glb"
    scene.export_glb(path)
    gltf = pygltflib.GLTF2().load(str(path))
    names = [n.name for n in gltf.nodes]
    for obj in scene.objects:
        assert f"object_{obj.instance_id:02d}_{obj.label.replace(' ', '_')}" in names
    cam_nodes = [n for n in gltf.nodes if n.camera is not None]
    assert len(cam_nodes) == 1 and gltf.cameras[0].perspective.yfov == pytest.approx(np.radians(50))
    # the glTF camera looks down its -z: the scene target must be in front of it
    c2w = np.array(cam_nodes[0].matrix).reshape(4, 4).T
    to_target = np.array([0, 0.3, 0]) - c2w[:3, 3]
    assert to_target @ (-c2w[:3, 2]) > 0.99 * np.linalg.norm(to_target)
    # geometry round-trips: object placement survives export
    loaded = trimesh.load(path)
    for obj in scene.objects:
        name = f"object_{obj.instance_id:02d}_{obj.label.replace(' ', '_')}"
        world = loaded.graph.get(name)[0]
        np.testing.assert_allclose(world, obj.pose.matrix, atol=1e-5)


def test_scene_rejects_duplicate_or_reserved_ids():
    mesh = trimesh.creation.box()
    pose = Pose(np.eye(3), np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="unique"):
        Scene([ObjectInstance(mesh, "a", pose), ObjectInstance(mesh, "a", pose)])
    with pytest.raises(ValueError, match=">= 2"):
        Scene([ObjectInstance(mesh, "a", pose, instance_id=1)])


def test_camera_rejects_non_rigid_or_bad_intrinsics():
    with pytest.raises(ValueError, match="rigid"):
        Camera(np.eye(3), np.diag([2.0, 1.0, 1.0, 1.0]), 8, 8)
    with pytest.raises(ValueError, match="focal"):
        Camera(np.zeros((3, 3)), np.eye(4), 8, 8)


def test_scene_json_missing_fields_are_named(tmp_path):
    scene = _scene()
    scene.save_json(tmp_path / "scene.json")
    payload = json.loads((tmp_path / "scene.json").read_text())
    del payload["objects"][1]["pose"]["s"]
    (tmp_path / "scene.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=r"objects\[1\]: missing field 's'"):
        Scene.load_json(tmp_path / "scene.json")
    (tmp_path / "scene.json").write_text(json.dumps({"schema": "scenemaker.scene/1"}))
    with pytest.raises(ValueError, match="missing field 'objects'"):
        Scene.load_json(tmp_path / "scene.json")
    (tmp_path / "scene.json").write_text(json.dumps({"schema": "scenemaker.scene/99"}))
    with pytest.raises(ValueError, match="expected schema"):
        Scene.load_json(tmp_path / "scene.json")
