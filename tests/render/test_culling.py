"""Candidate renders skip the faces a closed mesh turns away from the camera (a third less
rasterising), and must give exactly the depth of drawing every face; meshes that are not
closed, or have a part turned inside out, are drawn whole."""

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from scenemaker.render.candidates import CandidateRenderer, hidden_side, pose_matrices


def _shape():
    """Two closed parts that interpenetrate, one of them not convex: a bent tube and a box."""
    box = trimesh.creation.box(extents=(1.6, 0.5, 0.4))
    ring = trimesh.creation.torus(0.5, 0.15, major_sections=24, minor_sections=8)
    return trimesh.util.concatenate([box, ring])


def _depths(vertices, faces, cull):
    renderer = CandidateRenderer(max_batch=16, max_tile=64, cull=cull)
    try:
        renderer.set_mesh(vertices, faces)
        chosen = hidden_side(vertices, faces)
        assert renderer._cull == (chosen if cull else None)
        K = np.array([[70.0, 0, 31.5], [0, 70.0, 31.5], [0, 0, 1]])
        R = Rotation.random(12, random_state=5).as_matrix()
        t = np.tile([0.1, -0.05, 3.0], (12, 1))
        return chosen, renderer.render(K, pose_matrices(R, t, np.full(12, 2.0)), 64, 64)
    finally:
        renderer.release()


@pytest.mark.parametrize("flip, side", [(False, "back"), (True, "front")])
def test_culling_a_closed_mesh_leaves_its_depth_as_drawing_every_face(flip, side):
    mesh = _shape()
    faces = mesh.faces[:, ::-1] if flip else mesh.faces  # wound clockwise: inward normals
    chosen, culled = _depths(mesh.vertices, faces, cull=True)
    assert chosen == side
    _, whole = _depths(mesh.vertices, faces, cull=False)
    assert (whole > 0).mean() > 0.1
    np.testing.assert_array_equal(culled > 0, whole > 0)
    # within the depth buffer's precision where the two parts cut through each other
    np.testing.assert_allclose(culled, whole, atol=1e-3)


def test_open_or_inside_out_meshes_are_drawn_whole():
    mesh = _shape()
    assert hidden_side(mesh.vertices, mesh.faces) == "back"
    open_box = trimesh.creation.box()
    assert hidden_side(open_box.vertices, open_box.faces[1:]) is None  # a hole
    box = trimesh.creation.box(extents=(1.6, 0.5, 0.4))
    ring = trimesh.creation.torus(0.5, 0.15, major_sections=24, minor_sections=8)
    ring.faces = ring.faces[:, ::-1]  # this part alone turned inside out
    mixed = trimesh.util.concatenate([box, ring])
    assert hidden_side(mixed.vertices, mixed.faces) is None
    flipped = trimesh.creation.box().faces.copy()
    flipped[0] = flipped[0][::-1]  # one face wound the other way
    assert hidden_side(trimesh.creation.box().vertices, flipped) is None


@pytest.mark.parametrize("faces", [[[0, 1, 9]], [[0, 1, -1]], [[0, 1]]])
def test_faces_that_are_not_vertex_indices_are_refused(faces):
    renderer = CandidateRenderer(max_batch=4, max_tile=16)
    try:
        with pytest.raises(ValueError, match="indices into its 3 vertices"):
            renderer.set_mesh(np.eye(3), np.array(faces))
    finally:
        renderer.release()
    with pytest.raises(ValueError, match="cull must be true or false"):
        CandidateRenderer(cull="no")
