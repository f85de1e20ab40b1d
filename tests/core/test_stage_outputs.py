"""Each stage's output type owns its files: what it saves is what it loads, a saved output of
another number of objects is refused naming the file, and the frame computes each object's
observed points once for every stage."""

import json

import numpy as np
import pytest
import trimesh

from scenemaker.deocclusion import AmodalCrop, ObjectCrop
from scenemaker.errors import InputError
from scenemaker.object3d import CanonicalMesh
from scenemaker.object_records import object_records
from scenemaker.pipeline import PipelineConfig, SceneMakerPipeline
from scenemaker.scene import Pose
from scenemaker.stage_outputs import (
    Deocclusion,
    Frame,
    Object3D,
    Perception,
    Poses,
    Refinement,
)


def _perception(n=3, h=24, w=32):
    rng = np.random.default_rng(0)
    masks = [rng.random((h, w)) > 0.6 for _ in range(n)]
    depth = rng.uniform(1, 3, (h, w)).astype(np.float32)
    K = np.array([[30.0, 0, 15.5], [0, 31.0, 11.5], [0, 0, 1]])
    return Perception(masks, [f"thing {k}" for k in range(n)], [0.9, None, 0.5][:n], depth, K)


def _pose(seed):
    rng = np.random.default_rng(seed)
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Pose(R * np.sign(np.linalg.det(R)), rng.normal(size=3), float(rng.uniform(0.1, 1)))


def _same_pose(a, b):
    np.testing.assert_allclose(a.R, b.R, atol=1e-12)
    np.testing.assert_allclose(a.t, b.t, atol=1e-12)
    assert a.s == pytest.approx(b.s)


def test_every_stage_output_loads_what_it_saved(tmp_path):
    perceived = _perception()
    perceived.save(tmp_path)
    back = Perception.load(tmp_path)
    assert back.labels == perceived.labels and back.scores == perceived.scores
    for a, b in zip(back.masks, perceived.masks, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.depth, perceived.depth)
    np.testing.assert_array_equal(back.K, perceived.K)
    frame = back.frame(np.zeros((24, 32, 3), np.uint8))

    rng = np.random.default_rng(1)
    crops = []
    for k in range(3):
        image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        visible, amodal = rng.random((16, 16)) > 0.5, rng.random((16, 16)) > 0.3
        crop = ObjectCrop(image, visible, (1.5, 2.0, 17.5, 18.0), frame.labels[k])
        crops.append(AmodalCrop(image[::-1].copy(), amodal, crop, "classical"))
    Deocclusion(crops).save(tmp_path)
    for a, b in zip(Deocclusion.load(tmp_path, frame).crops, crops, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.crop.visible_mask, b.crop.visible_mask)
        assert a.crop.box == b.crop.box and a.crop.label == b.crop.label
        assert a.method == "classical"

    box = CanonicalMesh(trimesh.creation.box((0.2, 0.4, 0.6)), "lift", _pose(2), True)
    meshes = Object3D([box, None, box], [None, "too few points", None])
    meshes.save(tmp_path)
    loaded = Object3D.load(tmp_path, frame)
    assert loaded.have() == [0, 2] and loaded.errors[1] == "too few points"
    np.testing.assert_allclose(loaded.meshes[2].mesh.bounds, box.mesh.bounds, atol=1e-6)
    assert loaded.meshes[0].source == "lift" and loaded.meshes[0].textured
    _same_pose(loaded.meshes[0].initial_pose, box.initial_pose)

    posed = Poses([_pose(3), None, _pose(4)], {1: "no mesh"}, [[_pose(5), _pose(6)], [], []])
    posed.save(tmp_path)
    again = Poses.load(tmp_path, frame)
    assert again.skipped == {1: "no mesh"} and again.poses[1] is None
    _same_pose(again.poses[2], posed.poses[2])
    _same_pose(again.hypotheses[0][1], posed.hypotheses[0][1])

    refined = Refinement([_pose(7), None, _pose(8)], {1: "no mesh"}, [0.8, None, 0.1],
                         [{"note": None}, None, {"note": "only 5 observed points"}])  # fmt: skip
    refined.save(tmp_path)
    again = Refinement.load(tmp_path, frame)
    assert again.confidences == [0.8, None, 0.1] and again.records == refined.records
    _same_pose(again.poses[0], refined.poses[0])

    records = object_records(frame, loaded, again)
    assert [r.to_dict()["placed"] for r in records] == [True, False, True]
    assert records[1].skipped == "no mesh" and records[2].note == "only 5 observed points"
    assert records[0].mesh_source == "lift" and records[0].score == 0.9
    assert records[2].pixels == int(frame.masks[2].sum())


@pytest.mark.parametrize("stage", ["deocclusion", "object3d", "pose", "refine"])
def test_a_saved_output_of_another_object_count_is_refused(tmp_path, stage):
    frame = _perception(3).frame(None)
    smaller = _perception(2).frame(None)
    image = np.zeros((8, 8, 3), np.uint8)
    crop = ObjectCrop(image, np.ones((8, 8), bool), (0, 0, 8, 8))
    box = CanonicalMesh(trimesh.creation.box(), "lift")
    save = {
        "deocclusion": lambda: Deocclusion([AmodalCrop(image, crop.visible_mask, crop)] * 2),
        "object3d": lambda: Object3D([box, box], [None, None]),
        "pose": lambda: Poses([_pose(0), _pose(1)]),
        "refine": lambda: Refinement([_pose(0), _pose(1)]),
    }[stage]()
    save.save(tmp_path)
    assert type(save).load(tmp_path, smaller) is not None  # the count it was made for loads
    with pytest.raises(InputError, match=r"damaged saved stage output \(2 entries for 3 objects"):
        type(save).load(tmp_path, frame)


def test_a_pose_file_of_another_schema_is_refused(tmp_path):
    Poses([_pose(0)]).save(tmp_path)
    path = tmp_path / "pose" / "poses.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": "other/1"}))
    with pytest.raises(InputError, match="poses.json: damaged saved stage output.*schema"):
        Poses.load(tmp_path)


def test_the_frame_computes_each_objects_points_once(monkeypatch):
    import scenemaker.pose.estimator as estimator

    calls = []
    real = estimator.observed_points

    def counting(depth, K, mask, count=256, *a, **kw):
        calls.append(count)
        return real(depth, K, mask, count, *a, **kw)

    monkeypatch.setattr(estimator, "observed_points", counting)
    frame = _perception(3).frame(None)
    first = frame.points(2, 64, 0)
    sub = frame.subset([0, 2])
    assert sub is frame.subset([0, 2])  # one observation for the pose and refine stages
    assert sub.points(1, 64, 0) is first  # computed before the subset: shared
    sub.points(0, 64, 0)
    sub.points(0, 64, 0)
    assert calls == [64, 64]
    with pytest.raises(ValueError, match="3 masks, 1 labels"):
        Frame(frame.depth, frame.K, frame.masks, None, ["only one label"])


def test_a_run_computes_no_objects_points_twice(frame, tmp_path, monkeypatch):
    """Object3D, pose and refine read one frame: no (object, count, seed) is derived twice."""
    import scenemaker.pose.estimator as estimator

    calls = []
    real = estimator.observed_points

    def counting(depth, K, mask, count=256, *a, seed=0, **kw):
        calls.append((np.flatnonzero(mask)[:8].tobytes(), count, seed))
        return real(depth, K, mask, count, *a, seed=seed, **kw)

    import scenemaker.geometry.points as points

    monkeypatch.setattr(estimator, "observed_points", counting)
    monkeypatch.setattr(points, "observed_points", counting)  # a stage deriving its own
    config = PipelineConfig(
        masks=str(frame["masks"]), depth_file=str(frame["depth"]), K=frame["K"],
        generator="lift", pose="dit", refine="fit",
    )  # fmt: skip
    result = SceneMakerPipeline(config, progress=False).run(frame["image"], tmp_path)
    assert calls and len(calls) == len(set(calls)), calls
    per_object = result.report["per_object"]
    assert [r["index"] for r in per_object] == list(range(len(frame["objects"])))
    assert all(r["mesh"] == "lift" for r in per_object)
    assert sum(r["placed"] for r in per_object) == result.report["placed"]


def test_candidate_meshes_round_trip_and_the_chosen_one_is_placed(tmp_path):
    """object3d/ keeps each object's alternative meshes (--mesh-candidates); refine's
    mesh_choice picks the one the scene places; fewer alternatives later remove the extra
    files; a damaged choice is one line naming the file."""
    from scenemaker.errors import InputError

    frame = _perception(2).frame(None)
    box = CanonicalMesh(trimesh.creation.box(), "retrieval:a")
    cone = CanonicalMesh(trimesh.creation.cone(0.5, 1.0), "retrieval:b")
    ball = CanonicalMesh(trimesh.creation.icosphere(1), "retrieval:c")
    first = CanonicalMesh(trimesh.creation.box((1.0, 0.5, 0.5)), "retrieval:first")
    first.alternatives = [cone, ball]
    meshes = Object3D([first, box], [None, None])
    meshes.save(tmp_path)
    loaded = Object3D.load(tmp_path, frame)
    got = loaded.meshes[0]
    assert [got.source, *(a.source for a in got.alternatives)] == [
        "retrieval:first", "retrieval:b", "retrieval:c"
    ]  # fmt: skip
    assert np.allclose(got.alternatives[1].mesh.extents, ball.mesh.extents)
    assert loaded.meshes[1].alternatives == []

    refined = Refinement([_pose(1), _pose(2)], {}, [0.5, 0.5],
                         [{"mesh_choice": 2, "stretch": None,
                           "mesh_scores": {"0": 0.4, "1": None, "2": 0.2}},
                          {"mesh_choice": None}])  # fmt: skip
    refined.save(tmp_path)
    again = Refinement.load(tmp_path, frame)
    placed = again.placed_meshes(loaded.meshes)
    assert placed[0].source == "retrieval:c" and placed[1].source == "retrieval:a"
    records = object_records(frame, loaded, again)
    assert records[0].mesh_source == "retrieval:c" and records[0].to_dict()["mesh_candidates"] == 3
    assert records[1].candidates == 1  # nothing to choose among

    first.alternatives = [cone]
    meshes.save(tmp_path)
    assert (tmp_path / Object3D.mesh_file(0, 1)).is_file()
    assert not (tmp_path / Object3D.mesh_file(0, 2)).exists()
    with pytest.raises(InputError, match="refine/poses.json: object 0 chose mesh 2 of 2"):
        again.placed_meshes(Object3D.load(tmp_path, frame).meshes)
    path = tmp_path / "refine" / "poses.json"
    for bad in ("-1", "true"):
        path.write_text(path.read_text().replace('"mesh_choice": 2', f'"mesh_choice": {bad}'))
        with pytest.raises(InputError, match="poses.json.*mesh_choice must be an integer"):
            Refinement.load(tmp_path, frame)
        refined.save(tmp_path)
    # an object that loses its mesh loses its candidates' files too
    Object3D([None, box], ["no mesh", None]).save(tmp_path)
    assert not list((tmp_path / "object3d").glob("object_00_alt_*.glb"))
