import numpy as np
import pytest

from scenemaker.geometry.boxes import convex_polygons_overlap, rectangle_corners
from scenemaker.synth.layout import LayoutConfig, LayoutError, boxes_intersect, sample_layout


def _inside(points, rect):
    """Slow reference: is each point inside a convex polygon (counter-clockwise or not)."""
    out = []
    for p in points:
        signs = []
        for i in range(4):
            a, b = rect[i], rect[(i + 1) % 4]
            signs.append(np.sign((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])))
        out.append(all(s >= 0 for s in signs) or all(s <= 0 for s in signs))
    return np.array(out)


def test_separating_axis_matches_sampling_reference(rng):
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 121), np.linspace(-3, 3, 121)), -1).reshape(
        -1, 2
    )
    disagreements = 0
    for _ in range(60):
        a = rectangle_corners(rng.uniform(-1, 1, 2), rng.uniform(0.2, 1.0, 2), rng.uniform(0, 6.3))
        b = rectangle_corners(rng.uniform(-1, 1, 2), rng.uniform(0.2, 1.0, 2), rng.uniform(0, 6.3))
        reference = bool((_inside(grid, a) & _inside(grid, b)).any())
        disagreements += reference != convex_polygons_overlap(a, b)
    # the grid is coarse: it may miss slivers thinner than its 5 cm step, never more than once
    assert disagreements <= 1


def test_known_rectangles():
    a = rectangle_corners((0, 0), (1, 1), 0.0)
    assert convex_polygons_overlap(a, rectangle_corners((1.5, 0), (1, 1), 0.0))
    assert not convex_polygons_overlap(a, rectangle_corners((2.5, 0), (1, 1), 0.0))
    # rotated 45 degrees: corner reaches sqrt(2) from its centre
    assert convex_polygons_overlap(a, rectangle_corners((2.3, 0), (1, 1), np.pi / 4))
    assert not convex_polygons_overlap(a, rectangle_corners((2.5, 0), (1, 1), np.pi / 4))
    # clearance: 0.1 m apart is fine with a 0.05 clearance, not with 0.2
    b = rectangle_corners((2.1, 0), (1, 1), 0.0)
    assert not convex_polygons_overlap(a, b, margin=0.05)
    assert convex_polygons_overlap(a, b, margin=0.2)


@pytest.mark.parametrize("n", [2, 5, 12])
def test_layouts_never_intersect_and_stand_on_floor(n):
    for seed in range(20):
        rng = np.random.default_rng(seed)
        extents = [rng.uniform(0.3, 2.0, 3) for _ in range(n)]
        for e in extents:
            e[rng.integers(3)] = 2.0
        sizes = list(rng.uniform(0.3, 1.5, n))
        poses = sample_layout(extents, sizes, rng, LayoutConfig(min_objects=n, max_objects=n))
        assert not boxes_intersect(extents, poses)
        if n == 5 and seed < 5:
            # independent check: the posed boxes themselves, exact intersection volume
            import trimesh

            from scenemaker.eval.metrics import pairwise_interpenetration

            boxes = []
            for e, p in zip(extents, poses, strict=True):
                box = trimesh.creation.box(e)
                box.apply_transform(p.matrix)
                boxes.append(box)
            total, _ = pairwise_interpenetration(boxes, method="exact")
            assert total == 0.0
        for e, p, s in zip(extents, poses, sizes, strict=True):
            bottom = p.t[1] - s / 2 * e[1] / 2
            assert bottom == pytest.approx(0.0, abs=1e-12)
            assert p.s == s


def test_boxes_intersect_detects_overlap():
    from scenemaker.geometry import yaw_matrix
    from scenemaker.scene import Pose

    e = [np.array([2.0, 1.0, 2.0])] * 2
    poses = [Pose(np.eye(3), [0, 0.25, 0], 1.0), Pose(yaw_matrix(0.4), [0.8, 0.25, 0], 1.0)]
    assert boxes_intersect(e, poses)
    poses[1] = Pose(yaw_matrix(0.4), [1.8, 0.25, 0], 1.0)
    assert not boxes_intersect(e, poses)


def test_impossible_arena_is_a_clear_error(rng):
    extents = [np.array([2.0, 2.0, 2.0])] * 20
    with pytest.raises(LayoutError, match="cannot fit"):
        sample_layout(extents, [1.0] * 20, rng, LayoutConfig(arena_radius=1.0))
    with pytest.raises(LayoutError, match="min_objects"):
        LayoutConfig(min_objects=4, max_objects=2).validate()


def test_any_face_and_stacked_layouts_rest_without_intersecting():
    """Objects on any face of their box and stacked on others: boxes never intersect, every
    object rests on the floor or on the top of another, and both options really happen."""
    import trimesh

    config = LayoutConfig(min_objects=5, max_objects=5, any_face=0.7, stack=0.6)
    faces_seen, stacked = set(), 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        extents = [rng.uniform(0.4, 2.0, 3) for _ in range(5)]
        for e in extents:
            e[rng.integers(3)] = 2.0
        sizes = list(rng.uniform(0.3, 1.2, 5))
        poses = sample_layout(extents, sizes, rng, config)
        assert not boxes_intersect(extents, poses)
        boxes = []
        for e, p in zip(extents, poses, strict=True):
            box = trimesh.creation.box(e * p.s / 2)
            box.apply_transform(np.vstack([np.hstack([p.R, p.t[:, None]]), [0, 0, 0, 1]]))
            boxes.append(box.bounds)
            faces_seen.add(tuple(np.round(np.abs(p.R[1]), 3)))
        for k, (lo, hi) in enumerate(boxes):
            if lo[1] < 1e-6:
                assert lo[1] > -1e-6  # on the floor, not in it
                continue
            # on top of another box: its bottom at that box's top, their footprints overlap
            below = [
                j for j, (lo2, hi2) in enumerate(boxes)
                if j != k and abs(hi2[1] - lo[1]) < 0.02
                and (lo[[0, 2]] < hi2[[0, 2]]).all() and (lo2[[0, 2]] < hi[[0, 2]]).all()
            ]  # fmt: skip
            assert below, f"seed {seed}: object {k} floats at {lo[1]:.3f} m"
            stacked += 1
    assert stacked >= 10
    assert {(0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)} <= faces_seen


def test_layout_probabilities_are_checked():
    for bad in (dict(any_face=-0.1), dict(stack=1.5)):
        with pytest.raises(LayoutError, match="probability"):
            LayoutConfig(**bad).validate()


def test_a_stacked_object_rests_on_the_surface_below_it_not_on_its_box():
    """A box stacked on a cone, off its apex, comes down from the cone's box top until it
    sits on the slope (touching, not sunk into it); without surfaces it stays on the box
    top."""
    import trimesh
    from scipy.spatial import ConvexHull, cKDTree

    from scenemaker.geometry.canonical import canonicalize_mesh
    from scenemaker.geometry.sampling import sample_surface

    cone = trimesh.creation.cone(1.0, 1.0, sections=48)
    cone.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    cone = canonicalize_mesh(cone)[0]  # apex up
    box = canonicalize_mesh(trimesh.creation.box((1.0, 0.3, 1.0)))[0]
    meshes = [cone, box]
    extents = [m.extents for m in meshes]
    surfaces = [sample_surface(m, 4096, seed=0)[0] for m in meshes]
    config = LayoutConfig(min_objects=2, max_objects=2, stack=1.0, clearance=0.02)
    dropped = 0
    for seed in range(20):
        on_box = sample_layout(extents, [1.2, 0.3], np.random.default_rng(seed), config)
        rested = sample_layout(extents, [1.2, 0.3], np.random.default_rng(seed), config, surfaces)
        cone_top = on_box[0].apply(cone.vertices)[:, 1].max()
        if on_box[1].apply(box.vertices)[:, 1].min() < cone_top:
            continue  # not stacked in this draw
        np.testing.assert_allclose(rested[0].t, on_box[0].t)  # the support does not move
        lowered = rested[1].apply(box.vertices)[:, 1].min()
        if lowered > cone_top - 0.02:
            continue  # the apex is under the box: it rests on the apex, at the box top
        box_points = rested[1].apply(sample_surface(box, 8192, seed=1)[0])
        # resting: close to the cone, yet (almost) none of it inside (the cone is convex)
        cone_points = rested[0].apply(sample_surface(cone, 20000, seed=1)[0])
        assert cKDTree(cone_points).query(box_points)[0].min() < 0.03
        hull = ConvexHull(rested[0].apply(cone.vertices))
        depth = (box_points @ hull.equations[:, :3].T + hull.equations[:, 3]).max(1)
        assert depth.min() > -0.01  # no point more than 1 cm inside
        dropped += 1
    assert dropped >= 3


def test_surfaces_of_the_wrong_shape_are_refused():
    extents = [np.array([2.0, 1.0, 1.0])] * 2
    rng = np.random.default_rng(0)
    for bad in ([np.zeros((10, 3))], [np.zeros((10, 3)), np.zeros(10)]):
        with pytest.raises(ValueError, match="surfaces: expected 2 arrays"):
            sample_layout(extents, [0.5, 0.5], rng, LayoutConfig(stack=1.0), bad)
