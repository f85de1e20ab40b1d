"""The exported scene.glb / scene.usda carry the photo's camera: image size, full K, clipping."""

import json
import struct

import numpy as np
import pytest
import trimesh

from scenemaker.geometry import yaw_matrix
from scenemaker.scene import CLIP_FAR, CLIP_NEAR, Camera, ObjectInstance, Pose, Scene
from scenemaker.synth.cameras import look_at

W, H = 64, 48
K = np.array([[80.0, 0.0, 40.0], [0.0, 70.0, 20.0], [0.0, 0.0, 1.0]])  # off-centre, fx != fy


def _scene() -> Scene:
    camera = Camera(K, look_at([0.5, 1.5, 4.0], [0.5, 0.3, 0.0]), W, H)
    chair = ObjectInstance(
        trimesh.creation.box((2.0, 1.0, 0.5)),
        "chair",
        Pose(yaw_matrix(0.4), [-0.6, 0.3, 0.0], 0.8),
        instance_id=2,
        color=(0.8, 0.2, 0.1),
    )
    lamp_mesh = trimesh.creation.icosphere(subdivisions=2)
    rgba = np.c_[(lamp_mesh.vertices + 1) * 127.5, np.full(len(lamp_mesh.vertices), 255)]
    lamp_mesh.visual = trimesh.visual.ColorVisuals(lamp_mesh, vertex_colors=rgba.astype(np.uint8))
    lamp = ObjectInstance(lamp_mesh, "tv-monitor 2", Pose(np.eye(3), [1.2, 0.4, 0.3], 0.6), 3)
    plain = ObjectInstance(
        trimesh.creation.cylinder(radius=0.5, height=1.0, sections=16),
        "plant",
        Pose(yaw_matrix(1.0), [0.3, 0.25, -0.8], 0.5),
        instance_id=5,
    )
    return Scene([chair, lamp, plain], [camera])


def _glb_json(path) -> dict:
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    assert (magic, version) == (b"glTF", 2)
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + length])


def _world_points(scene: Scene) -> np.ndarray:
    return np.concatenate([obj.posed_mesh().vertices for obj in scene.objects])


def test_glb_camera_extras_hold_image_size_full_K_and_clipping(tmp_path):
    scene = _scene()
    scene.export_glb(tmp_path / "scene.glb")
    gltf = _glb_json(tmp_path / "scene.glb")
    (node,) = [n for n in gltf["nodes"] if "camera" in n]
    camera = gltf["cameras"][node["camera"]]
    for extras in (node["extras"], camera["extras"]):
        assert extras["image_width"] == W and extras["image_height"] == H
        np.testing.assert_allclose(extras["K"], K)
        assert (extras["fx"], extras["fy"], extras["cx"], extras["cy"]) == (80, 70, 40, 20)
        np.testing.assert_allclose(
            extras["principal_point_offset_px"], [40 - (W - 1) / 2, 20 - (H - 1) / 2]
        )
        assert extras["pixel_aspect_ratio"] == pytest.approx(70 / 80)
        assert extras["znear"] == CLIP_NEAR and extras["zfar"] == CLIP_FAR
        assert "OpenCV" in extras["convention"]
    perspective = camera["perspective"]
    assert perspective["znear"] == CLIP_NEAR and perspective["zfar"] == CLIP_FAR
    # yfov and aspectRatio give back fy and fx at the image size in extras
    tan_half = np.tan(perspective["yfov"] / 2)
    assert H / (2 * tan_half) == pytest.approx(70)
    assert W / (2 * tan_half * perspective["aspectRatio"]) == pytest.approx(80)
    scene_extras = gltf["scenes"][gltf.get("scene", 0)]["extras"]
    assert (scene_extras["image_width"], scene_extras["image_height"]) == (W, H)
    assert scene_extras["camera_node"] == node["name"] == "camera"


def test_glb_extras_and_camera_node_reproduce_the_photo_projection(tmp_path):
    scene = _scene()
    scene.export_glb(tmp_path / "scene.glb")
    gltf = _glb_json(tmp_path / "scene.glb")
    (node,) = [n for n in gltf["nodes"] if "camera" in n]
    c2w_gl = np.array(node["matrix"]).reshape(4, 4).T  # column-major
    points = _world_points(scene)
    local = (np.c_[points, np.ones(len(points))] @ np.linalg.inv(c2w_gl).T)[:, :3]
    cv = local * [1, -1, -1]  # glTF camera (-z forward, +y up) -> OpenCV
    uvw = cv @ np.array(node["extras"]["K"]).T
    uv = uvw[:, :2] / uvw[:, 2:]
    expected, depth = scene.cameras[0].project(points)
    assert (depth > 0).all()
    assert np.abs(uv - expected).max() < 0.5
    np.testing.assert_allclose(uv, expected, atol=1e-6)


def test_glb_with_camera_extras_passes_the_validator(tmp_path):
    from scenemaker.eval.gltf_check import validate_gltf, validator_available

    if not validator_available():
        pytest.fail("glTF validator missing: scripts/setup.sh installs it under .venv/node")
    scene = _scene()
    scene.export_glb(tmp_path / "scene.glb")
    issues = validate_gltf(tmp_path / "scene.glb")["issues"]
    assert issues["numErrors"] == 0, issues
    Scene([], scene.cameras).export_glb(tmp_path / "empty.glb")  # JSON-only GLB keeps extras
    assert validate_gltf(tmp_path / "empty.glb")["issues"]["numErrors"] == 0
    assert _glb_json(tmp_path / "empty.glb")["nodes"][0]["extras"]["image_width"] == W


def _stage(tmp_path, scene=None):
    pxr = pytest.importorskip("pxr")
    from scenemaker.export_usd import export_usd

    scene = scene or _scene()
    export_usd(scene, tmp_path / "scene.usda")
    return scene, pxr.Usd.Stage.Open(str(tmp_path / "scene.usda"))


def test_usd_prims_are_named_by_object_with_extent_normals_and_colour(tmp_path):
    from pxr import Sdf, Usd, UsdGeom

    scene, stage = _stage(tmp_path)
    meshes = {p.GetName(): UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)}
    assert sorted(meshes) == ["object_02_chair", "object_03_tv_monitor_2", "object_05_plant"]
    assert all(Sdf.Path.IsValidIdentifier(name) for name in meshes)
    bbox = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_])
    for obj, name in zip(scene.objects, sorted(meshes), strict=True):
        mesh = meshes[name]
        np.testing.assert_allclose(np.array(mesh.GetExtentAttr().Get()), obj.mesh.bounds, atol=1e-6)
        world = bbox.ComputeWorldBound(mesh.GetPrim()).ComputeAlignedRange()
        posed = obj.posed_mesh().bounds
        np.testing.assert_allclose([world.GetMin(), world.GetMax()], posed, atol=1e-5)
        normals = np.array(mesh.GetNormalsAttr().Get())
        assert mesh.GetNormalsInterpolation() == UsdGeom.Tokens.faceVarying
        assert normals.shape == (3 * len(obj.mesh.faces), 3)
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
        # convex shapes: every corner normal points away from the centre (outward, CCW front)
        corners = obj.mesh.vertices[obj.mesh.faces].reshape(-1, 3)
        centroid = obj.mesh.triangles_center.repeat(3, axis=0)
        assert (np.einsum("ij,ij->i", normals, centroid - obj.mesh.centroid) > 0).all()
        assert len(corners) == len(normals)
        assert mesh.GetOrientationAttr().Get() == UsdGeom.Tokens.rightHanded
    # the box keeps sharp edges: its corner normals are its face normals
    box = np.array(meshes["object_02_chair"].GetNormalsAttr().Get())
    face_normals = scene.objects[0].mesh.face_normals.repeat(3, axis=0)
    np.testing.assert_allclose(box, face_normals, atol=1e-6)

    def colour(name):
        primvar = meshes[name].GetDisplayColorPrimvar()
        return np.array(primvar.Get()), primvar.GetInterpolation()

    values, interpolation = colour("object_02_chair")
    np.testing.assert_allclose(values, [[0.8, 0.2, 0.1]], atol=1e-6)
    assert interpolation == "constant"
    values, interpolation = colour("object_03_tv_monitor_2")
    lamp = scene.objects[1].mesh
    assert interpolation == "vertex" and values.shape == (len(lamp.vertices), 3)
    np.testing.assert_allclose(values, lamp.visual.vertex_colors[:, :3] / 255.0, atol=1e-6)
    values, interpolation = colour("object_05_plant")
    np.testing.assert_allclose(values, [[0.5, 0.5, 0.5]])


def _usd_pixels(stage, points: np.ndarray) -> np.ndarray:
    """Project world points with USD's own camera model (Gf.Camera -> Gf.Frustum)."""
    from pxr import Gf, Usd, UsdGeom

    camera = UsdGeom.Camera(stage.GetPrimAtPath("/Scene/camera"))
    frustum = camera.GetCamera(Usd.TimeCode.Default()).frustum
    view, projection = frustum.ComputeViewMatrix(), frustum.ComputeProjectionMatrix()
    ndc = np.array([projection.Transform(view.Transform(Gf.Vec3d(*p))) for p in points])
    return np.c_[(ndc[:, 0] + 1) / 2 * W - 0.5, (1 - ndc[:, 1]) / 2 * H - 0.5]


def test_usd_camera_apertures_and_offsets_reproduce_K(tmp_path):
    from pxr import UsdGeom, UsdRender

    scene, stage = _stage(tmp_path)
    points = _world_points(scene)
    expected, depth = scene.cameras[0].project(points)
    assert (depth > 0).all()
    uv = _usd_pixels(stage, points)
    assert np.abs(uv - expected).max() < 0.5
    np.testing.assert_allclose(uv, expected, atol=1e-3)

    camera = UsdGeom.Camera(stage.GetPrimAtPath("/Scene/camera"))
    assert camera.GetHorizontalApertureOffsetAttr().Get() != 0  # the principal point is off
    assert camera.GetVerticalApertureOffsetAttr().Get() != 0
    assert camera.GetHorizontalApertureAttr().Get() == pytest.approx(0.36)  # 36 mm, metre stage
    assert tuple(camera.GetClippingRangeAttr().Get()) == pytest.approx((CLIP_NEAR, CLIP_FAR))
    data = camera.GetPrim().GetCustomData()
    assert (data["image_width"], data["image_height"]) == (W, H)
    np.testing.assert_allclose(np.array(data["K"]).reshape(3, 3), K)
    settings = UsdRender.Settings(stage.GetPrimAtPath(stage.GetMetadata("renderSettingsPrimPath")))
    assert tuple(settings.GetResolutionAttr().Get()) == (W, H)
    assert settings.GetPixelAspectRatioAttr().Get() == pytest.approx(70 / 80)
    assert settings.GetCameraRel().GetTargets() == [camera.GetPath()]


def test_usd_camera_without_offsets_would_miss_the_principal_point(tmp_path):
    """The check above can fail: dropping the offsets moves the projection by (cx, cy) - centre."""
    from pxr import UsdGeom

    scene, stage = _stage(tmp_path)
    camera = UsdGeom.Camera(stage.GetPrimAtPath("/Scene/camera"))
    camera.GetHorizontalApertureOffsetAttr().Set(0.0)
    camera.GetVerticalApertureOffsetAttr().Set(0.0)
    points = _world_points(scene)
    shift = _usd_pixels(stage, points) - scene.cameras[0].project(points)[0]
    np.testing.assert_allclose(
        shift, np.broadcast_to([(W - 1) / 2 - 40, (H - 1) / 2 - 20], shift.shape), atol=1e-3
    )
