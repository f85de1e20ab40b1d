"""ProceduralSource: clean canonical meshes, deterministic ids, varied and asymmetric shapes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull, cKDTree

from scenemaker.sources.base import SPLITS, ObjectAsset
from scenemaker.sources.procedural import (
    CATEGORIES,
    ProceduralSource,
    build_mesh,
    parse_object_id,
)

SAMPLE_PER_CATEGORY = 5


@pytest.fixture(scope="module")
def source() -> ProceduralSource:
    return ProceduralSource(instances_per_category=SAMPLE_PER_CATEGORY)


@pytest.fixture(scope="module")
def sample(source) -> dict[str, ObjectAsset]:
    """The first instances of every category, loaded once for the module."""
    return {i: source.load(i) for i in source.all_ids()}


def mirror_mismatch(mesh, axis: int, count: int = 2000) -> float:
    """Fraction of the mirrored surface farther than 0.05 (canonical units) from the surface.

    Surface samples of the mirror image (x -> -x or z -> -z) are matched to a dense sample of
    the mesh itself; a mirror-symmetric mesh scores ~0, a mug with its handle ~0.7.
    """
    reference, _ = trimesh.sample.sample_surface(mesh, 10 * count, seed=0)
    query, _ = trimesh.sample.sample_surface(mesh, count, seed=1)
    query = np.array(query)
    query[:, axis] *= -1
    distance, _ = cKDTree(np.asarray(reference)).query(query)
    return float(np.mean(distance > 0.05))


def is_asymmetric(mesh) -> bool:
    """Not mirror-symmetric in both x and z: at least one mirror leaves 2% unmatched."""
    return max(mirror_mismatch(mesh, 0), mirror_mismatch(mesh, 2)) > 0.02


def test_categories_are_many_and_everyday():
    assert len(CATEGORIES) >= 18
    assert len(set(CATEGORIES)) == len(CATEGORIES)
    for name in ("chair", "table", "mug", "bottle", "sofa", "bed", "table_lamp", "laptop"):
        assert name in CATEGORIES


def test_every_category_loads_a_clean_canonical_mesh(sample):
    assert {parse_object_id(i)[0] for i in sample} == set(CATEGORIES)
    for object_id, asset in sample.items():
        mesh = asset.mesh
        assert isinstance(mesh, trimesh.Trimesh)
        assert mesh.is_watertight and mesh.is_winding_consistent, object_id
        assert mesh.body_count == 1, f"{object_id}: {mesh.body_count} separate parts"
        assert mesh.volume > 0, object_id
        assert len(mesh.faces) < 20_000, f"{object_id}: {len(mesh.faces)} triangles"
        lo, hi = mesh.bounds
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-6, err_msg=object_id)
        assert abs((hi - lo).max() - 2.0) < 1e-6, object_id
        assert asset.object_id == object_id and asset.source == "procedural"
        assert asset.licence == "CC0-1.0"


def test_objects_stand_upright_on_their_base(sample):
    """+y up: the lowest vertices form a footprint that carries the centre of mass."""
    for object_id, asset in sample.items():
        mesh = asset.mesh
        vertices = mesh.vertices
        contact = vertices[vertices[:, 1] < vertices[:, 1].min() + 1e-4][:, [0, 2]]
        footprint = ConvexHull(contact)  # raises if the contacts are one point or a line
        com = mesh.center_mass[[0, 2]]
        inside = footprint.equations[:, :2] @ com + footprint.equations[:, 2]
        assert inside.max() < 0, f"{object_id} would tip over"


def test_label_size_range_and_colour_are_sane(sample):
    for object_id, asset in sample.items():
        category, _ = parse_object_id(object_id)
        assert asset.label == category.replace("_", " ")
        lo, hi = asset.size_range
        assert 0.05 <= lo < hi <= 2.5, object_id
        # the mesh is built in metres; its native size falls in the advertised range
        native = max(asset.extra["extent_m"])
        assert 0.95 * lo <= native <= 1.05 * hi, f"{object_id}: {native:.3f} m not in {lo}-{hi}"
        assert asset.color is not None and len(asset.color) == 3
        assert all(0.0 <= c <= 1.0 for c in asset.color)
    mug = next(a for i, a in sample.items() if i.startswith("mug_"))
    bed = next(a for i, a in sample.items() if i.startswith("bed_"))
    assert mug.size_range[1] < 0.2 and bed.size_range[0] > 1.8


def test_same_id_gives_the_same_mesh(source, sample):
    for object_id in ("chair_0001", "vase_0002", "bookshelf_0003", "potted_plant_0004"):
        again = source.load(object_id)
        first = sample[object_id]
        assert np.array_equal(again.mesh.vertices, first.mesh.vertices)
        assert np.array_equal(again.mesh.faces, first.mesh.faces)
        assert again.color == first.color


def _mesh_digest(mesh) -> str:
    data = np.round(mesh.vertices, 9).tobytes() + mesh.faces.astype(np.int64).tobytes()
    return hashlib.sha256(data).hexdigest()


def test_meshes_do_not_depend_on_python_hash_seed(sample):
    code = (
        "from scenemaker.sources.procedural import ProceduralSource\n"
        "import hashlib, numpy as np\n"
        "m = ProceduralSource(5).load('sofa_0002').mesh\n"
        "data = np.round(m.vertices, 9).tobytes() + m.faces.astype(np.int64).tobytes()\n"
        "print(hashlib.sha256(data).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _mesh_digest(sample["sofa_0002"].mesh)


def test_instances_of_a_category_differ(sample):
    for category in CATEGORIES:
        meshes = [sample[f"{category}_{i:04d}"].mesh for i in range(SAMPLE_PER_CATEGORY)]
        for a in range(len(meshes)):
            for b in range(a + 1, len(meshes)):
                same_size = np.allclose(meshes[a].extents, meshes[b].extents, atol=1e-3)
                same_count = len(meshes[a].vertices) == len(meshes[b].vertices)
                assert not (same_size and same_count), f"{category} {a} and {b} look alike"


def test_mirror_check_tells_symmetric_from_asymmetric(sample):
    cylinder = trimesh.creation.cylinder(radius=1.0, height=1.5, sections=32)
    assert mirror_mismatch(cylinder, 0) < 0.005 and mirror_mismatch(cylinder, 2) < 0.005
    mug = sample["mug_0000"].mesh  # handle on +x
    assert mirror_mismatch(mug, 0) > 0.2


def test_most_shapes_are_neither_symmetric_nor_boxes(sample):
    good = [
        is_asymmetric(a.mesh) and a.mesh.volume / np.prod(a.mesh.extents) < 0.9
        for a in sample.values()
    ]
    assert np.mean(good) >= 0.8, f"only {np.mean(good):.0%} asymmetric non-box shapes"


def test_build_mesh_is_metric_and_rests_on_the_floor():
    rng = np.random.default_rng(0)
    for category in CATEGORIES:
        mesh = build_mesh(category, rng)
        assert mesh.is_watertight, category
        assert abs(mesh.bounds[0, 1]) < 1e-9, f"{category} does not rest on y = 0"
        assert 0.08 < mesh.extents.max() < 2.5, category


def test_splits_partition_the_ids():
    source = ProceduralSource()  # 40 per category
    all_ids = source.all_ids()
    assert len(all_ids) == 40 * len(CATEGORIES) == len(set(all_ids))
    assert all_ids[0] == f"{CATEGORIES[0]}_0000"
    splits = {split: source.ids(split) for split in SPLITS}
    assert all(splits[s] for s in SPLITS)
    joined = [i for s in SPLITS for i in splits[s]]
    assert sorted(joined) == sorted(all_ids)
    assert len(joined) == len(set(joined))
    assert 0.7 < len(splits["train"]) / len(all_ids) < 0.9


@pytest.mark.parametrize("bad_id", ["chair", "chair_12", "chair_abcd", "chair-0001", "", "_0001x"])
def test_malformed_ids_raise_value_error(source, bad_id):
    with pytest.raises(ValueError, match="malformed"):
        source.load(bad_id)


def test_unknown_category_and_out_of_range_index_raise_key_error(source):
    with pytest.raises(KeyError, match="spaceship"):
        source.load("spaceship_0001")
    with pytest.raises(KeyError, match="not in this source"):
        source.load(f"chair_{SAMPLE_PER_CATEGORY:04d}")
    with pytest.raises(KeyError, match="unknown procedural category"):
        build_mesh("spaceship", np.random.default_rng(0))


@pytest.mark.parametrize("count", [0, -3, 1.5, "40", True])
def test_constructor_validates_instances_per_category(count):
    with pytest.raises(ValueError, match="instances_per_category"):
        ProceduralSource(count)
