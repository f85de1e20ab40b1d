"""Meshes are decimated for scoring: dense (scanned) meshes must come down to the budget and
still render as the same shape."""

import sys

import numpy as np
import pytest
import trimesh

from scenemaker.eval.perturb import densify
from scenemaker.render.candidates import (
    CandidateRenderer,
    cluster_vertices,
    pose_matrices,
    render_mesh,
)
from scenemaker.sources import get_source


@pytest.fixture(scope="module")
def dense_chair():
    """A procedural test object split into 20,000+ faces: quadric decimation stalls on it (at
    several times the target), as it can on scans with seams."""
    source = get_source("procedural")
    ids = [i for i in source.ids("test") if len(source.load(i).mesh.faces) > 500]
    return densify(source.load(ids[0]).mesh)[0]


def _silhouettes(vertices, faces, renderer):
    from scipy.spatial.transform import Rotation

    renderer.set_mesh(vertices, faces)
    K = np.array([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]])
    R = Rotation.random(8, random_state=3).as_matrix()
    return renderer.render(
        K, pose_matrices(R, np.tile([0, 0, 4.0], (8, 1)), np.full(8, 2.0)), 64, 64
    )


def test_a_dense_mesh_comes_down_to_the_budget_and_keeps_its_shape(dense_chair):
    vertices, faces = render_mesh(dense_chair, 1000)
    assert len(dense_chair.faces) > 20000 and 0 < len(faces) <= 1250
    extent = np.ptp(dense_chair.vertices, 0).max()
    np.testing.assert_allclose(vertices.min(0), dense_chair.vertices.min(0), atol=0.05 * extent)
    np.testing.assert_allclose(vertices.max(0), dense_chair.vertices.max(0), atol=0.05 * extent)
    renderer = CandidateRenderer(max_batch=8, max_tile=64)
    try:
        a = _silhouettes(np.asarray(dense_chair.vertices), np.asarray(dense_chair.faces), renderer)
        b = _silhouettes(vertices, faces, renderer)
    finally:
        renderer.release()
    iou = ((a > 0) & (b > 0)).sum() / ((a > 0) | (b > 0)).sum()
    assert iou > 0.9
    both = (a > 0) & (b > 0)
    assert np.median(np.abs(a[both] - b[both])) < 0.02  # depth within 2 cm of a 2 m object


def test_without_the_decimation_library_clustering_still_meets_the_budget(dense_chair, monkeypatch):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)  # import fails
    vertices, faces = render_mesh((dense_chair.vertices, dense_chair.faces), 800)
    assert 0 < len(faces) <= 1000 and np.isfinite(vertices).all()


def test_a_budget_too_small_for_any_face_still_leaves_a_mesh():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices, faces = render_mesh(sphere, 1)
    assert len(faces) >= 1 and faces.max() < len(vertices)


def test_small_meshes_are_kept_as_they_are():
    mesh = trimesh.creation.box()
    vertices, faces = render_mesh(mesh, 1000)
    np.testing.assert_array_equal(faces, mesh.faces)
    np.testing.assert_array_equal(vertices, mesh.vertices)


def test_vertex_clustering_merges_cells_and_drops_collapsed_faces():
    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20,480 faces
    vertices, faces = cluster_vertices(sphere.vertices, sphere.faces, 2000)
    assert 0 < len(faces) <= 2000 and faces.max() < len(vertices)
    assert (faces[:, 0] != faces[:, 1]).all() and (faces[:, 1] != faces[:, 2]).all()
    radius = np.linalg.norm(vertices, axis=1)
    assert radius.min() > 0.9 and radius.max() <= 1.0 + 1e-9  # still the unit sphere
