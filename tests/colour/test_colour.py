"""Colour on every mesh: photo colours baked into UV textures of the placed meshes."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from scenemaker.colour import (
    PhotoObject,
    bake_texture,
    build_atlas,
    colour_scene,
    psnr,
    rasterize,
    render_colours,
    texture_image,
)
from scenemaker.colour.raster import project
from scenemaker.object3d import CanonicalMesh
from scenemaker.scene import Pose
from scenemaker.scene_assembly import build_scene

W, H = 96, 72
K = np.array([[90.0, 0.0, 47.5], [0.0, 90.0, 35.5], [0.0, 0.0, 1.0]])
RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (0, 255, 0)


def _scene(meshes, poses):
    labels = [f"thing {k}" for k in range(len(meshes))]
    return build_scene(W, H, K, labels, [CanonicalMesh(m, "test") for m in meshes], poses)


def _split_photo(mask):
    """Green background; the object red left of the image centre, blue right of it."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:] = GREEN
    left = np.arange(W)[None].repeat(H, 0) < W // 2
    rgb[mask & left] = RED
    rgb[mask & ~left] = BLUE
    return rgb


@pytest.fixture
def ball():
    """A sphere 2.5 m in front of the camera, its visible mask and a red | blue photo."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    scene = _scene([mesh], [Pose(np.eye(3), [0.0, 0.0, 2.5], 1.2)])
    _, instance = render_colours(scene, textures=False)
    mask = instance == 2
    return scene, mask, _split_photo(mask)


def _texture_at(mesh, faces, bary):
    """The baked texture's colour (nearest texel) at points of ``faces`` of the baked mesh."""
    image = texture_image(mesh)
    uv = np.einsum("nk,nkd->nd", bary, mesh.visual.uv[mesh.faces[faces]])
    x = np.clip((uv[:, 0] * image.shape[1]).astype(int), 0, image.shape[1] - 1)
    y = np.clip(((1 - uv[:, 1]) * image.shape[0]).astype(int), 0, image.shape[0] - 1)
    return image[y, x].astype(int)


def test_left_of_the_photo_is_red_right_blue_and_the_back_is_filled(ball):
    scene, mask, rgb = ball
    record = colour_scene(scene, rgb, masks=[mask])
    assert record["objects"]["0"]["status"] == "baked" and not record["notes"]
    mesh = scene.objects[0].mesh
    assert mesh.visual.kind == "texture"
    # face centres of the baked mesh, placed and projected: which side of the photo they fall on
    centres = mesh.triangles_center
    to_camera = scene.cameras[0].world_to_camera @ scene.objects[0].pose.matrix
    xy, z = project(centres @ to_camera[:3, :3].T + to_camera[:3, 3], K)
    normals = mesh.face_normals @ to_camera[:3, :3].T
    facing = (normals * (centres @ to_camera[:3, :3].T + to_camera[:3, 3])).sum(1) < -0.3 * z
    colours = _texture_at(mesh, np.arange(len(centres)), np.full((len(centres), 3), 1 / 3))
    left, right = facing & (xy[:, 0] < W / 2 - 4), facing & (xy[:, 0] > W / 2 + 4)
    assert left.sum() > 20 and right.sum() > 20
    assert (np.abs(colours[left] - RED).max(1) < 40).mean() > 0.95
    assert (np.abs(colours[right] - BLUE).max(1) < 40).mean() > 0.95
    # every texel of the atlas is coloured from the object: nothing black, no background green
    image = texture_image(mesh).reshape(-1, 3).astype(int)
    assert image.sum(1).min() > 100
    assert (image[:, 1] < 120).all()
    back = ~facing & (z > 2.5 + 0.3)
    assert back.sum() > 20 and (colours[back].sum(1) > 150).all()
    # seen from the photo's camera the coloured scene reproduces the photo
    rendered, instance = render_colours(scene)
    covered = mask & (instance == 2)
    grey, _ = render_colours(scene, textures=False)
    assert psnr(rendered, rgb, covered) > 25 and psnr(grey, rgb, covered) < 10


def test_glb_has_a_base_colour_texture_and_passes_the_validator(ball, tmp_path):
    import pygltflib

    from scenemaker.eval.gltf_check import validate_gltf, validator_available

    scene, mask, rgb = ball
    colour_scene(scene, rgb, masks=[mask])
    scene.export_glb(tmp_path / "scene.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "scene.glb"))
    assert gltf.images and gltf.textures
    pbr = gltf.materials[gltf.meshes[0].primitives[0].material].pbrMetallicRoughness
    assert pbr.baseColorTexture is not None and pbr.metallicFactor == 0.0
    assert gltf.meshes[0].primitives[0].attributes.TEXCOORD_0 is not None
    loaded = trimesh.load(tmp_path / "scene.glb", force="mesh")
    assert loaded.visual.kind == "texture"
    if not validator_available():
        pytest.fail("glTF validator missing: scripts/setup.sh installs it under .venv/node")
    issues = validate_gltf(tmp_path / "scene.glb")["issues"]
    assert issues["numErrors"] == 0, issues["messages"][:5]


def test_usd_display_colours_come_from_the_texture(ball, tmp_path):
    pxr = pytest.importorskip("pxr")
    from pxr import UsdGeom

    from scenemaker.export_usd import export_usd

    scene, mask, rgb = ball
    colour_scene(scene, rgb, masks=[mask])
    export_usd(scene, tmp_path / "scene.usda")
    stage = pxr.Usd.Stage.Open(str(tmp_path / "scene.usda"))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    colours = np.array(UsdGeom.PrimvarsAPI(mesh).GetPrimvar("displayColor").Get())
    assert len(colours) == len(scene.objects[0].mesh.vertices)
    assert (colours[:, 0] > 0.5).any() and (colours[:, 2] > 0.5).any()  # red and blue, linear


def test_a_textured_mesh_keeps_its_texture(ball, tmp_path):
    from PIL import Image

    scene, mask, rgb = ball
    mesh = trimesh.creation.box((1.0, 1.0, 1.0))
    checker = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((8, 8)))[..., None] * [250, 200, 0]
    image = Image.fromarray(checker.astype(np.uint8))
    uv = (mesh.vertices[:, :2] + 0.5).clip(0, 1)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    scene = _scene([mesh], [Pose(np.eye(3), [0.0, 0.0, 2.5], 1.0)])
    record = colour_scene(scene, rgb, masks=[mask])
    assert record["objects"]["0"]["status"] == "kept its texture"
    assert scene.objects[0].mesh is mesh
    scene.export_glb(tmp_path / "scene.glb")
    loaded = trimesh.load(tmp_path / "scene.glb", force="mesh")
    kept = np.asarray(texture_image(loaded))
    np.testing.assert_array_equal(kept, np.asarray(image.convert("RGB")))


def test_degenerate_mesh_and_empty_mask_are_skipped_with_a_note(ball, tmp_path):
    _, mask, rgb = ball
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False)
    fine = trimesh.creation.icosphere(subdivisions=1)
    poses = [Pose(np.eye(3), [0.0, 0.0, 2.5], 1.0), Pose(np.eye(3), [0.5, 0.0, 3.0], 0.5)]
    scene = _scene([flat, fine], poses)
    record = colour_scene(scene, rgb, masks=[mask, np.zeros_like(mask)])
    assert record["objects"]["0"]["status"] == "skipped"
    assert "degenerate mesh" in record["objects"]["0"]["why"]
    assert record["objects"]["1"]["status"] == "skipped"
    assert "no visible pixel" in record["objects"]["1"]["why"]
    assert len(record["notes"]) == 2 and record["notes"][0].startswith("object 0: not coloured")
    assert scene.objects[0].mesh is flat and scene.objects[1].mesh is fine
    assert scene.metadata["colour"] is record
    scene.export_glb(tmp_path / "scene.glb")  # the grey meshes still export


def test_missing_masks_never_fail(ball, tmp_path):
    scene, _, rgb = ball
    record = colour_scene(scene, rgb, tmp_path)  # no perception/masks.npy there
    assert record["notes"] and "skipped for every object" in record["notes"][0]
    assert scene.objects[0].mesh.visual.kind != "texture"


def test_a_mesh_the_photo_does_not_show_gets_the_mask_mean(ball):
    _, mask, rgb = ball
    mesh = trimesh.creation.icosphere(subdivisions=2)
    scene = _scene([mesh], [Pose(np.eye(3), [5.0, 0.0, 2.5], 1.0)])  # far right of the image
    record = colour_scene(scene, rgb, masks=[mask])
    stats = record["objects"]["0"]
    assert stats["status"] == "baked" and stats["seen"] == 0.0 and "mean colour" in stats["note"]
    assert record["notes"] == [f"object 0: {stats['note']}"]
    texels = texture_image(scene.objects[0].mesh).reshape(-1, 3).astype(float)
    np.testing.assert_allclose(texels.mean(0), rgb[mask].mean(0), atol=1.0)


def test_unseen_texels_take_the_generator_vertex_colours(ball):
    _, mask, rgb = ball
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=[200, 200, 40, 255])
    pose = Pose(np.eye(3), [0.0, 0.0, 2.5], 1.2)
    baked, stats = bake_texture(mesh, pose.matrix, PhotoObject(rgb, mask, K), size=256)
    assert stats["generator"] > 0.3 and stats["seen"] > 0.2
    back = baked.triangles_center[:, 2] > 0.8  # canonical +z: away from the camera
    colours = _texture_at(baked, np.nonzero(back)[0], np.full((back.sum(), 3), 1 / 3))
    assert (np.abs(colours - [200, 200, 40]).max(1) < 3).all()


def test_the_side_the_photo_hides_is_mirrored_from_the_side_it_shows():
    """A sphere turned so the camera sees its canonical -x half: the +x half is unseen and
    takes the colour of its mirror image (same y, z), not the nearest seen rim."""
    quarter = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # -x to the camera
    pose = Pose(quarter, [0.0, 0.0, 2.5], 1.2)
    mesh = trimesh.creation.icosphere(subdivisions=3)
    scene = _scene([mesh], [pose])
    _, instance = render_colours(scene, textures=False)
    mask = instance == 2
    rgb = _split_photo(mask)  # image left / right = canonical +z / -z on the seen half
    baked, stats = bake_texture(mesh, pose.matrix, PhotoObject(rgb, mask, K), size=256)
    assert stats["mirrored"] > 0.2
    centres = baked.triangles_center
    hidden = (centres[:, 0] > 0.7) & (np.abs(centres[:, 2]) > 0.3)  # canonical +x
    colours = _texture_at(baked, np.nonzero(hidden)[0], np.full((hidden.sum(), 3), 1 / 3))
    seen_side = np.where(centres[hidden, 2][:, None] > 0, RED, BLUE)
    assert (np.abs(colours - seen_side).max(1) < 60).mean() > 0.9


def test_atlas_cells_hold_each_face_once_without_overlap():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.vertices[:10] *= 1.3  # faces of different sizes
    atlas = build_atlas(mesh.vertices, mesh.faces, 256)
    keys = atlas.texel_xy[:, 1] * atlas.size + atlas.texel_xy[:, 0]
    assert len(np.unique(keys)) == len(keys)  # no texel belongs to two faces
    assert (atlas.texel_xy >= 0).all() and (atlas.texel_xy < atlas.size).all()
    assert set(np.unique(atlas.texel_face)) == set(range(len(mesh.faces)))
    assert len(keys) > 0.5 * atlas.size**2  # most of the texture is used
    uv = atlas.uv()
    assert (uv >= 0).all() and (uv <= 1).all()
    # bilinear reads inside a face touch only its own texels
    owner = np.full(atlas.size**2, -1)
    owner[keys] = atlas.texel_face
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), size=len(mesh.faces))
    points = np.einsum("fk,fkd->fd", w, atlas.corner_uv) - 0.5  # texel-centre coordinates
    for dx in (0, 1):
        for dy in (0, 1):
            x = np.floor(points[:, 0]).astype(int) + dx
            y = np.floor(points[:, 1]).astype(int) + dy
            near = np.stack([x - points[:, 0], y - points[:, 1]], 1)
            used = (np.abs(near) < 1).all(1)
            assert (owner[(y * atlas.size + x)[used]] == np.arange(len(mesh.faces))[used]).all()


def test_a_dense_mesh_gets_a_bigger_texture_and_stays_fast():
    import time

    mesh = trimesh.creation.icosphere(subdivisions=6)  # 81920 faces
    t = time.perf_counter()
    atlas = build_atlas(mesh.vertices, mesh.faces, 512)
    assert atlas.size == 1024 and time.perf_counter() - t < 10


def test_a_very_dense_mesh_gets_a_colour_per_face(ball):
    _, mask, rgb = ball
    n = 280  # a 280 x 280 grid of quads: 156800 faces
    ij = np.stack(np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij"), -1)
    vertices = np.c_[ij.reshape(-1, 2) / n * 2 - 1, np.zeros((n + 1) ** 2)]
    corner = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None]).ravel()
    quads = np.stack([corner, corner + n + 1, corner + n + 2, corner + 1], 1)
    faces = np.r_[quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    atlas = build_atlas(vertices, faces, 512)
    assert atlas.size == 512 and len(atlas.texel_face) == len(faces)
    assert (atlas.corner_uv == atlas.corner_uv[:, :1]).all()  # a point per face
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pose = Pose(np.eye(3), [0.0, 0.0, 2.5], 1.2)  # a square facing the camera
    baked, stats = bake_texture(mesh, pose.matrix, PhotoObject(rgb, mask, K))
    assert stats["texture_px"] == 512 and stats["seen"] > 0.2
    left = baked.triangles_center[:, 0] < -0.3  # canonical x: image left
    colours = _texture_at(baked, np.nonzero(left)[0], np.full((left.sum(), 3), 1 / 3))
    near_red = np.abs(colours - RED).max(1) < 40
    assert near_red.mean() > 0.3 and (np.abs(colours - BLUE).max(1) < 40).mean() < 0.05


def test_rasteriser_agrees_with_the_opengl_renderer(ball):
    from scenemaker.eval.rerender import render_instance_masks

    scene, mask, _ = ball
    gl = render_instance_masks(scene)[2]
    assert (gl & mask).sum() / (gl | mask).sum() > 0.97
    # a plane facing the camera at z = 2: every covered pixel has that depth
    xy, z = project(np.array([[-1, -1, 2], [1, -1, 2], [1, 1, 2], [-1, 1, 2.0]]), K)
    raster = rasterize(xy, z, [[0, 1, 2], [0, 2, 3]], W, H)
    covered = raster.face >= 0
    assert covered.sum() > 0.9 * W * H
    np.testing.assert_allclose(raster.depth[covered], 2.0)
    np.testing.assert_allclose(raster.bary[covered].sum(1), 1.0)


def test_the_pipeline_exports_textured_meshes(tmp_path):
    """A small synthetic RGB-D frame end to end (meshes lifted from the depth, placed where
    they were lifted): scene.glb carries a texture per object, scene.json says how each was
    coloured, and scene.usda is written from the textured meshes."""
    import json

    import pygltflib

    from scenemaker.demo import write_frame
    from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.dataset import list_scenes
    from scenemaker.synth.generate import GenerateConfig, generate_dataset
    from scenemaker.synth.layout import LayoutConfig

    config = GenerateConfig(
        objects="procedural", split="test", seed=5,
        layout=LayoutConfig(min_objects=2, max_objects=2),
        views=ViewConfig(views=1, width=128, height=96), surface_samples=512,
    )  # fmt: skip
    generate_dataset(tmp_path / "data", 1, config, workers=1, progress=False)
    data = list_scenes(tmp_path / "data")[0]
    view = data.view(0)
    frame = write_frame(view, data.scene.objects, tmp_path / "input")
    cfg = PipelineConfig(
        masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
        generator="lift", pose="initial", refine="none", usd=True,
    )  # fmt: skip
    run = SceneMakerPipeline(cfg, progress=False).run(frame["image"], tmp_path / "out")
    placed = run.report["placed"]
    assert placed >= 1
    record = json.loads((tmp_path / "out" / "scene.json").read_text())["metadata"]["colour"]
    assert [o["status"] for o in record["objects"].values()] == ["baked"] * placed
    gltf = pygltflib.GLTF2().load(str(tmp_path / "out" / "scene.glb"))
    assert len(gltf.images) == placed
    assert all(m.pbrMetallicRoughness.baseColorTexture is not None for m in gltf.materials)
    masks = {j + 2: view.instance == o.instance_id for j, o in enumerate(frame["objects"])}
    union = np.any(list(masks.values()), axis=0)
    textured, instance = render_colours(run.scene)
    grey, _ = render_colours(run.scene, textures=False)
    pixels = union & (instance > 0)
    assert psnr(textured, view.rgb, pixels) > psnr(grey, view.rgb, pixels) + 8
    assert (tmp_path / "out" / "scene.usda").is_file()
