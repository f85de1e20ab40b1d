"""Object-generation backends: retrieval, lift, oracle, external command, Shap-E, Hunyuan3D."""

import json
import shlex
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import trimesh

from scenemaker.deocclusion.base import AmodalCrop, make_crop
from scenemaker.errors import BackendError, MissingDependencyError, MissingWeightsError
from scenemaker.geometry.points import observed_points
from scenemaker.geometry.rotations import yaw_matrix
from scenemaker.object3d.base import ObjectObservation
from scenemaker.object3d.external import ExternalGenerator
from scenemaker.object3d.lift import LiftGenerator
from scenemaker.object3d.oracle import OracleGenerator
from scenemaker.object3d.retrieval import RetrievalGenerator
from scenemaker.render.scene import RenderObject, SceneRenderer
from scenemaker.scene import Camera
from scenemaker.sources import get_source
from scenemaker.synth.cameras import look_at


def _assert_canonical(mesh):
    lo, hi = mesh.bounds
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-6)
    assert abs((hi - lo).max() - 2.0) < 1e-6


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(192, 192)
    yield r
    r.release()


def _render(renderer, mesh, size, yaw, elevation_deg, azimuth, rng):
    """One object on the floor seen from a random camera: (amodal crop, observation, truth)."""
    vertices = (size / 2) * np.asarray(mesh.vertices) @ yaw_matrix(yaw).T
    lift = -vertices[:, 1].min()
    vertices[:, 1] += lift
    renderer.set_scene([RenderObject(vertices, np.asarray(mesh.faces), 2, (0.7, 0.5, 0.3))])
    e, fov = np.radians(elevation_deg), np.radians(50.0)
    centre = np.array([0.0, lift, 0.0])
    direction = np.array([np.cos(e) * np.sin(azimuth), np.sin(e), np.cos(e) * np.cos(azimuth)])
    eye = centre + size / np.tan(fov / 2) * rng.uniform(1.0, 1.3) * direction
    camera = Camera.from_fov(fov, 192, 192, look_at(eye, centre + rng.normal(0, 0.05 * size, 3)))
    view = renderer.render(camera)
    visible = view.instance == 2
    crop = make_crop(view.rgb, visible)
    amodal = AmodalCrop(crop.image, crop.visible_mask, crop)
    points = observed_points(view.depth, camera.K, visible)
    w2c = camera.world_to_camera
    truth = (w2c[:3, :3] @ yaw_matrix(yaw), w2c[:3, :3] @ centre + w2c[:3, 3])
    return amodal, ObjectObservation(0, "object", visible, points, camera.K), truth


# -- retrieval ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    """16 procedural meshes (spread over the categories) + 16 pybullet blobs, train split."""
    cache = tmp_path_factory.mktemp("retrieval-cache")
    generator = RetrievalGenerator(max_per_source=16, cache_dir=cache, with_pose=True, workers=1)
    start = time.perf_counter()
    library = generator.library
    assert time.perf_counter() - start < 20
    assert len(library) == 32
    return generator


def test_retrieval_finds_the_rendered_library_mesh(small_library, renderer):
    generator = small_library
    sources = {"procedural": get_source("procedural"), "pybullet": get_source("pybullet")}
    rng = np.random.default_rng(3)
    keys = [str(k) for k in generator.library.keys]
    picks = [keys[i] for i in (0, 3, 6, 9, 12, 15)] + [keys[i] for i in (17, 22, 28)]
    hits = 0
    for key in picks:
        name, object_id = key.split("/", 1)
        asset = sources[name].load(object_id)
        size = rng.uniform(*asset.size_range)
        amodal, observation, (true_r, true_t) = _render(
            renderer, asset.mesh, size, rng.uniform(0, 2 * np.pi), rng.uniform(8, 45),
            rng.uniform(0, 2 * np.pi), rng,
        )  # fmt: skip
        result = generator.generate(amodal, observation)
        _assert_canonical(result.mesh)
        assert result.source.startswith("retrieval:")
        if result.source == f"retrieval:{key}":
            hits += 1
            pose = result.initial_pose  # the rough placement found while re-ranking
            assert np.linalg.norm(pose.t - true_t) < 0.2 * size
            assert abs(pose.s / size - 1) < 0.3
            up_error = np.degrees(np.arccos(np.clip(pose.R[:, 1] @ true_r[:, 1], -1, 1)))
            assert up_error < 20
    assert hits / len(picks) >= 7 / 9  # measured: 8 / 9 (a small mug taken for the toy car)


def test_retrieval_label_restricts_to_its_category(small_library, renderer):
    generator = small_library
    asset = get_source("procedural").load(generator.library.keys[0].split("/", 1)[1])
    rng = np.random.default_rng(0)
    amodal, observation, _ = _render(renderer, asset.mesh, 1.0, 0.3, 20, 0.5, rng)
    labels = set(generator.library.labels)
    other = sorted(labels - {asset.label, "object"})[0]
    observation.label = other.replace(" ", "_").upper()  # labels are normalised
    same_label = generator.library.keys[generator.library.labels == other]
    assert generator.match(amodal, observation).key in set(same_label)
    observation.label = "a label no library category has"
    assert generator.match(amodal, observation).key == generator.library.keys[0]


def test_retrieval_without_points_uses_the_silhouette(small_library, renderer):
    asset = get_source("procedural").load(small_library.library.keys[5].split("/", 1)[1])
    amodal, observation, _ = _render(
        renderer, asset.mesh, 1.0, 0.0, 15, 0.0, np.random.default_rng(1)
    )
    observation.points = np.zeros((0, 3))
    found = small_library.match(amodal, observation)
    assert found.pose is None and found.ranking[0][0] == found.key
    assert found.key == small_library.library.keys[5]
    assert small_library.match(amodal, observation).ranking == found.ranking  # deterministic
    with pytest.raises(ValueError, match="amodal.mask"):
        small_library.match(AmodalCrop(amodal.image, amodal.mask & False, amodal.crop), observation)


def test_retrieval_proposes_the_next_best_meshes_as_alternatives(small_library, renderer):
    asset = get_source("procedural").load(small_library.library.keys[3].split("/", 1)[1])
    amodal, observation, _ = _render(
        renderer, asset.mesh, 1.0, 0.4, 20, 0.2, np.random.default_rng(2)
    )
    found = small_library.match(amodal, observation)
    small_library.alternatives = 2
    try:
        result = small_library.generate(amodal, observation)
    finally:
        small_library.alternatives = 0
    assert [result.source, *(a.source for a in result.alternatives)] == [
        f"retrieval:{key}" for key, _ in found.ranking[:3]
    ]
    for alternative in result.alternatives:
        _assert_canonical(alternative.mesh)
    with pytest.raises(ValueError, match="alternatives must be an integer >= 0"):
        RetrievalGenerator(alternatives=-1)


def test_retrieval_library_never_holds_test_split_objects():
    generator = RetrievalGenerator()  # the default library; planning it loads no mesh
    for spec, source, ids in generator.plan():
        assert ids, spec
        assert not set(ids) & set(source.ids("test"))
        assert set(ids) <= set(source.ids("train"))
    with pytest.raises(ValueError, match="never 'test'"):
        RetrievalGenerator(split="test")


def test_retrieval_cache_is_reused_and_rebuilt_when_unreadable(tmp_path):
    kwargs = {"sources": ["procedural"], "max_per_source": 3, "cache_dir": tmp_path, "workers": 1}
    first = RetrievalGenerator(**kwargs)
    built = first.library
    assert not first.loaded_from_cache and first.cache_path.parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [first.cache_path.name]  # no temp files left
    second = RetrievalGenerator(**kwargs)
    start = time.perf_counter()
    again = second.library
    assert second.loaded_from_cache and time.perf_counter() - start < 0.5
    assert second.cache_path == first.cache_path
    np.testing.assert_array_equal(again.keys, built.keys)
    np.testing.assert_array_equal(again.silhouettes, built.silhouettes)
    # another library gets another file; a damaged file is rebuilt, not trusted
    other = RetrievalGenerator(**{**kwargs, "max_per_source": 2})
    assert len(other.library) == 2 and other.cache_path != first.cache_path
    first.cache_path.write_bytes(b"not an npz")
    third = RetrievalGenerator(**kwargs)
    np.testing.assert_array_equal(third.library.reliefs, built.reliefs)
    assert not third.loaded_from_cache


def test_retrieval_worker_processes_build_the_same_library(tmp_path):
    kwargs = {"sources": ["procedural", "pybullet"], "max_per_source": 3}
    serial = RetrievalGenerator(cache_dir=tmp_path / "a", workers=1, **kwargs).library
    parallel = RetrievalGenerator(cache_dir=tmp_path / "b", workers=2, **kwargs).library
    for name in ("keys", "source_index", "labels", "silhouettes", "reliefs", "samples"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name))


# -- lift -----------------------------------------------------------------------------------


def test_lift_closes_the_visible_points_where_they_are(renderer):
    box = trimesh.creation.box((0.8, 2.0, 1.2))  # tall: its canonical mesh must stay upright
    amodal, observation, _ = _render(renderer, box, 1.0, 0.4, 25, 0.7, np.random.default_rng(0))
    result = LiftGenerator().generate(amodal, observation)
    assert result.source == "lift" and result.mesh.is_watertight
    _assert_canonical(result.mesh)
    extents = np.ptp(result.mesh.vertices, axis=0)
    assert extents[1] == pytest.approx(2.0)  # y (up) is the longest side, as for the box
    placed = result.initial_pose.apply(result.mesh.vertices)
    points = observation.points
    lo, hi = placed.min(0), placed.max(0)
    assert (points.min(0) >= lo - 1e-6).all() and (points.max(0) <= hi + 1e-6).all()
    # the back side lies along the viewing rays: in the image the hull covers what the
    # points cover, to a pixel
    K = observation.K

    def image_box(p):
        uv = p[:, :2] / p[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
        return np.concatenate([uv.min(0), uv.max(0)])

    np.testing.assert_allclose(image_box(placed), image_box(points), atol=1.0)
    assert np.ptp(placed[:, 2]) > np.ptp(points[:, 2]) + 0.03  # a back side was added
    assert result.initial_pose.s == pytest.approx(np.ptp(placed, axis=0).max())


def test_lift_refuses_too_few_or_degenerate_points():
    generator = LiftGenerator()
    obs = ObjectObservation(0, "x", np.zeros((4, 4), bool), np.ones((5, 3)), np.eye(3))
    with pytest.raises(ValueError, match="at least 8 observed points"):
        generator.generate(None, obs)
    obs.points = np.stack([np.linspace(0, 1, 20)] * 2 + [np.full(20, 2.0)], axis=1)  # a line
    with pytest.raises(ValueError, match="degenerate"):
        generator.generate(None, obs)


# -- oracle ---------------------------------------------------------------------------------


def test_oracle_returns_the_ground_truth_mesh():
    mesh = trimesh.creation.box((2.0, 1.0, 0.5))
    mesh.apply_translation([3.0, 0.0, 0.0])
    obs = ObjectObservation(2, "box", np.zeros((4, 4), bool), np.zeros((0, 3)), np.eye(3))
    obs.extra["gt_mesh"] = mesh
    result = OracleGenerator().generate(None, obs)
    _assert_canonical(result.mesh)
    np.testing.assert_allclose(np.ptp(result.mesh.vertices, axis=0), [2.0, 1.0, 0.5])
    obs.extra.clear()
    with pytest.raises(ValueError, match="oracle needs ground-truth meshes: only for synthetic"):
        OracleGenerator().generate(None, obs)


# -- external command -----------------------------------------------------------------------

_TOOL = """
import json, sys, time
mode, out = sys.argv[1], sys.argv[2]
if mode == "fail":
    print("loading model", file=sys.stderr)
    print("tool error: bad input image", file=sys.stderr)
    sys.exit(1)
if mode == "sleep":
    time.sleep(60)
if mode == "garbage":
    open(out, "w").write("this is no mesh")
if mode in ("box", "argv"):
    assert open(sys.argv[3], "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"  # {image} was written
    v = [(x, y, z) for x in (0, 2) for y in (0, 1) for z in (0, 4)]
    f = [(1,3,4),(1,4,2),(5,6,8),(5,8,7),(1,2,6),(1,6,5),(3,7,8),(3,8,4),(1,5,7),(1,7,3),(2,4,8),(2,8,6)]
    with open(out, "w") as fh:
        fh.writelines(f"v {x} {y} {z}\\n" for x, y, z in v)
        fh.writelines(f"f {a} {b} {c}\\n" for a, b, c in f)
if mode == "argv":
    json.dump(sys.argv[1:], open(sys.argv[-1], "w"))
"""


@pytest.fixture
def tool(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text(_TOOL)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def _crop():
    image = np.full((64, 64, 3), 255, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 20:44] = True
    image[mask] = (200, 40, 40)
    crop = make_crop(image, mask, size=64)
    obs = ObjectObservation(0, "red box", mask, np.zeros((0, 3)), np.eye(3))
    return AmodalCrop(crop.image, crop.visible_mask, crop), obs


def test_external_command_mesh_is_loaded_and_canonicalised(tool):
    amodal, obs = _crop()
    result = ExternalGenerator(f"{tool} box {{out_mesh}} {{image}}", mesh_format="obj").generate(
        amodal, obs
    )
    assert result.source == "external"
    _assert_canonical(result.mesh)
    np.testing.assert_allclose(np.ptp(result.mesh.vertices, axis=0), [1.0, 0.5, 2.0])
    z_up = ExternalGenerator(f"{tool} box {{out_mesh}} {{image}}", mesh_format="obj", z_up=True)
    np.testing.assert_allclose(np.ptp(z_up.generate(amodal, obs).mesh.vertices, 0), [1, 2, 0.5])


def test_external_placeholders_are_substituted_without_a_shell(tool, tmp_path):
    amodal, obs = _crop()
    obs.label = "chair; rm -rf ~"
    record = tmp_path / "argv.json"
    template = f"{tool} argv {{out_mesh}} {{image}} 'two words; echo hi' --label={{label}} {record}"
    ExternalGenerator(template, mesh_format="obj").generate(amodal, obs)
    argv = json.loads(record.read_text())
    assert argv[0] == "argv" and argv[1].endswith("mesh.obj") and argv[2].endswith("image.png")
    assert argv[3:5] == ["two words; echo hi", "--label=chair; rm -rf ~"]


def test_external_failures_are_one_clear_error(tool):
    amodal, obs = _crop()
    with pytest.raises(BackendError, match=r"exit status 1\): tool error: bad input image$"):
        ExternalGenerator(f"{tool} fail {{out_mesh}}").generate(amodal, obs)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="external command timed out after 1 s: .*sleep"):
        ExternalGenerator(f"{tool} sleep {{out_mesh}}", timeout=1).generate(amodal, obs)
    assert time.perf_counter() - start < 10
    with pytest.raises(BackendError, match=r"wrote no mesh at .*mesh\.glb"):
        ExternalGenerator(f"{tool} nothing {{out_mesh}}").generate(amodal, obs)
    with pytest.raises(BackendError, match=r"mesh\.ply: cannot read"):
        ExternalGenerator(f"{tool} garbage {{out_mesh}}", mesh_format="ply").generate(amodal, obs)
    with pytest.raises(BackendError, match="not found: no-such-tool-here"):
        ExternalGenerator("no-such-tool-here {out_mesh}").generate(amodal, obs)


def test_external_template_is_checked_at_construction():
    with pytest.raises(ValueError, match=r"unknown placeholder \{output\}"):
        ExternalGenerator("gen {image} {output}")
    with pytest.raises(ValueError, match=r"unknown placeholder \{image!r\}|placeholder"):
        ExternalGenerator("gen {image!r} {out_mesh}")
    with pytest.raises(ValueError, match=r"must contain \{out_mesh\}"):
        ExternalGenerator("gen {image}")
    ExternalGenerator("gen {{literal}} {out_mesh}")  # escaped braces are fine


# -- Shap-E (tiny random pipeline built in code) --------------------------------------------


def _tiny_shap_e(folder):
    """A tiny random ShapEImg2ImgPipeline saved to ``folder``."""
    import torch
    from diffusers import HeunDiscreteScheduler, PriorTransformer, ShapEImg2ImgPipeline
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=16, intermediate_size=24, num_attention_heads=2, num_hidden_layers=1,
            image_size=32, patch_size=8, projection_dim=16,
        )
    )  # fmt: skip
    processor = CLIPImageProcessor(size=32, crop_size=32)
    prior = PriorTransformer(
        num_attention_heads=2, attention_head_dim=8, num_layers=1, embedding_dim=16,
        num_embeddings=32, embedding_proj_dim=16, time_embed_dim=32, clip_embed_dim=32,
        additional_embeddings=0, time_embed_act_fn="gelu", norm_in_type="layer",
        embedding_proj_norm_type="layer", encoder_hid_proj_type=None, added_emb_type=None,
    )  # fmt: skip
    # the latent's 32 rows become the renderer MLP's 4 projected layers, 8 rows each
    renderer = ShapERenderer(
        param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)), d_latent=16, d_hidden=8
    )
    scheduler = HeunDiscreteScheduler(
        beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
        use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0,
    )  # fmt: skip
    ShapEImg2ImgPipeline(
        prior=prior, image_encoder=encoder, image_processor=processor, scheduler=scheduler,
        shap_e_renderer=renderer,
    ).save_pretrained(folder)  # fmt: skip
    return str(folder)


def test_shap_e_tiny_pipeline_runs_from_the_crop_to_the_mesh_decoder(tmp_path):
    """Loads a saved pipeline offline through from_pretrained, runs the prior on the crop and
    decodes the latent at our grid size. A random renderer's marching-cubes tables are zero
    (real checkpoints carry them), so its surface is empty by construction: the backend must
    say so in one line. The mesh conversion itself is checked in the next test."""
    from scenemaker.object3d.shap_e import ShapEGenerator

    amodal, obs = _crop()
    generator = ShapEGenerator(model=_tiny_shap_e(tmp_path / "tiny"), steps=2, grid_size=16)
    renderer = generator.load().shap_e_renderer
    calls = []
    decode = renderer.decode_to_mesh

    def spy(latents, device, **kwargs):
        calls.append((tuple(latents.shape), kwargs))
        return decode(latents, device, **kwargs)

    renderer.decode_to_mesh = spy
    with pytest.raises(BackendError, match="^shap-e produced an empty mesh"):
        generator.generate(amodal, obs)
    assert calls == [((1, 32, 16), {"grid_size": 16})]


def test_shap_e_axes_and_missing_weights():
    import torch

    from scenemaker.object3d.shap_e import ShapEGenerator, shap_e_mesh_to_trimesh

    # a tetrahedron: Shap-E's up (+z) and front (+y) vertices become our +y and +z
    verts = torch.tensor([[0.0, 0, 0], [0, 0, 3], [0, 2, 0], [1, 0, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    colours = {c: torch.full((4,), 0.5) for c in "RGB"}
    mesh = shap_e_mesh_to_trimesh(
        SimpleNamespace(verts=verts, faces=faces, vertex_channels=colours)
    )
    np.testing.assert_allclose(mesh.vertices[1], [0, 3, 0])
    np.testing.assert_allclose(mesh.vertices[2], [0, 0, 2])
    np.testing.assert_allclose(mesh.vertices[3], [-1, 0, 0])
    assert mesh.volume > 0  # a rotation: orientation (winding) kept
    with pytest.raises(MissingWeightsError, match="no-such-org/shap-e-missing"):
        ShapEGenerator(model="no-such-org/shap-e-missing").load()


# -- Hunyuan3D (hy3dgen not installed here) -------------------------------------------------


def test_hunyuan3d_missing_dependency_and_pre_post_processing():
    from scenemaker.object3d.hunyuan import (
        Hunyuan3DGenerator,
        hunyuan_input_image,
        hunyuan_mesh_to_canonical,
    )

    amodal, obs = _crop()
    try:
        import hy3dgen  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError) as error:
            Hunyuan3DGenerator().generate(amodal, obs)
        assert str(error.value) == (
            "hunyuan3d needs the hy3dgen package and torchvision: "
            "pip install 'scenemaker[hunyuan3d]' torchvision"
        )
    rgba = np.asarray(hunyuan_input_image(amodal.image, amodal.mask))
    assert rgba.shape == (64, 64, 4)
    np.testing.assert_array_equal(rgba[..., 3] == 255, amodal.mask)
    assert (rgba[~amodal.mask, :3] == 255).all()
    np.testing.assert_array_equal(rgba[amodal.mask, :3], amodal.image[amodal.mask])
    with pytest.raises(ValueError, match="amodal mask is empty"):
        hunyuan_input_image(amodal.image, np.zeros_like(amodal.mask))

    box = trimesh.creation.box((4.0, 1.0, 2.0))
    box.apply_translation([1.0, 2.0, 3.0])
    result = hunyuan_mesh_to_canonical([trimesh.Scene([box])])
    _assert_canonical(result.mesh)
    np.testing.assert_allclose(np.ptp(result.mesh.vertices, axis=0), [2.0, 0.5, 1.0])
    with pytest.raises(BackendError, match="hunyuan3d produced no mesh"):
        hunyuan_mesh_to_canonical([None])


def test_interrupting_an_external_command_kills_it(tool, monkeypatch):
    """Ctrl-C while the tool runs: the tool (in its own process group, so it never saw the
    signal) is killed too, not left running."""
    import subprocess

    amodal, obs = _crop()
    started = []
    real_communicate = subprocess.Popen.communicate

    def interrupted(self, *args, **kwargs):
        if not started:
            started.append(self)
            raise KeyboardInterrupt
        return real_communicate(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ExternalGenerator(f"{tool} sleep {{out_mesh}}", timeout=60).generate(amodal, obs)
    assert started and started[0].poll() is not None  # not running any more
