"""De-occlusion triplets (deocclusion/data.py, masks.py) built from tiny rendered scenes."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenemaker.deocclusion import masks
from scenemaker.deocclusion.base import make_crop
from scenemaker.deocclusion.data import build_triplets
from scenemaker.deocclusion.triplet_dataset import TripletDataset
from scenemaker.deocclusion.triplets import (
    SCHEMA,
    Triplet,
    normalise_mix,
    parse_mix,
    select_triplets,
)

SIZE = 64
FILES = ("input", "target", "visible", "amodal")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("scenes") / "data"
    cfg = GenerateConfig(
        objects="procedural",
        surface_samples=512,
        views=ViewConfig(views=2, width=96, height=96, min_visible_pixels=4),
    )
    generate_dataset(root, 3, cfg, progress=False)
    return root


@pytest.fixture(scope="module")
def built(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("triplets") / "out"
    summary = build_triplets([scenes], out, size=SIZE, seed=0, progress=False)
    return out, summary


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return binary_erosion(mask, np.ones((2 * radius + 1,) * 2, bool), border_value=0)


def test_files_manifest_and_summary(built):
    out, summary = built
    records = _manifest(out)
    assert records and summary["triplets"] == len(records)
    assert summary["schema"] == SCHEMA and summary["seed"] == 0
    assert json.loads((out / "summary.json").read_text())["schema"] == SCHEMA
    assert (out / "contact_sheet.png").is_file()
    fields = {"id", "input", "target", "visible_mask", "amodal_mask", "prompt", "label"}
    fields |= {"mask_type", "occlusion", "scene", "view", "instance_id", "source_split"}
    for r in records:
        assert fields <= set(r)
        assert r["source_split"] == "train" and r["label"] in r["prompt"]
        image, target = _png(out / r["input"]), _png(out / r["target"])
        visible, amodal = _png(out / r["visible_mask"]), _png(out / r["amodal_mask"])
        assert image.shape == target.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        assert visible.shape == amodal.shape == (SIZE, SIZE)
        assert set(np.unique(visible)) <= {0, 255} and set(np.unique(amodal)) <= {0, 255}
        visible, amodal = visible > 0, amodal > 0
        assert visible.any() and not (visible & ~amodal).any()  # amodal >= visible
        assert (image[~visible] == 255).all() and (target[~amodal] == 255).all()
        assert r["occlusion"] == pytest.approx(1 - visible.sum() / amodal.sum(), abs=1e-4)
    counted = {t: sum(r["mask_type"] == t for r in records) for t in summary["mask_types"]}
    assert counted == summary["mask_types"]
    assert sum(summary["occlusion_bins"].values()) == len(records)
    assert all(n > 0 for n in summary["mask_types"].values())  # the default mix: all four


def test_target_equals_input_on_visible_pixels(built):
    out, summary = built
    assert "render_mismatch" not in summary["skipped"]  # the re-render matched every scene
    checked = 0
    for r in _manifest(out):
        image, target = _png(out / r["input"]).astype(int), _png(out / r["target"]).astype(int)
        visible = _png(out / r["visible_mask"]) > 0
        # away from the visible border, bilinear resampling reads only visible pixels
        scale = SIZE / (r["box"][2] - r["box"][0])  # crop pixels per image pixel
        inner = _erode(visible, int(np.ceil(scale)) + 1)
        if inner.any():
            assert np.abs(image[inner] - target[inner]).max() <= 1, r["id"]
            checked += 1
        # and the hidden part was filled: the target shows the object where the input is white
        amodal = _png(out / r["amodal_mask"]) > 0
        assert (target[amodal & ~visible] < 250).any(axis=-1).mean() > 0.5 or r["occlusion"] < 0.05
    assert checked >= 5


def test_each_mask_type_when_asked(scenes, tmp_path):
    for kind in ("scene", "cutout", "border", "brush"):
        summary = build_triplets(
            [scenes], tmp_path / kind, mix={kind: 1}, size=SIZE, progress=False
        )
        records = _manifest(tmp_path / kind)
        assert records and {r["mask_type"] for r in records} == {kind}
        assert summary["mask_types"][kind] == len(records)
        occlusion = np.array([r["occlusion"] for r in records])
        if kind == "scene":
            assert (occlusion < 0.8).all()
        else:  # each synthetic mask removes 10-70% of the object's crop pixels
            assert (occlusion >= 0.1).all() and (occlusion <= 0.7).all()


def test_synthetic_generators_remove_the_asked_share():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:80]
    disc = (yy - 40) ** 2 + (xx - 38) ** 2 < 20**2
    square = np.ones((12, 12), bool)
    for share in (0.15, 0.35, 0.55):
        border = masks.border_mask(disc, share, rng)
        assert (border & disc).sum() / disc.sum() == pytest.approx(share, abs=0.06)
        brush = masks.brush_mask(disc, share, rng, max_strokes=50)
        assert (brush & disc).sum() / disc.sum() >= share
        cutout = masks.cutout_mask(disc, [square], share, rng)
        assert (cutout & disc).sum() / disc.sum() == pytest.approx(share, abs=0.1)
    side = masks.border_mask(disc, 0.3, np.random.default_rng(3))
    cols, rows = side.any(0), side.any(1)
    assert cols.all() or rows.all()  # the cut region spans the image: an image edge


def test_crop_box_matches_make_crop(rng):
    mask = np.zeros((50, 70), bool)
    mask[12:31, 20:57] = rng.uniform(size=(19, 37)) > 0.3
    image = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    crop = make_crop(image, mask, size=48)
    assert masks.crop_box(mask) == crop.box
    assert (masks.warp_mask(mask, crop.box, 48) == crop.visible_mask).all()
    padded = masks.warp_mask(np.pad(mask, 9), masks.shift_box(crop.box, 9), 48)
    assert (padded == crop.visible_mask).all()


def test_rerun_does_no_work(built, scenes):
    out, _ = built
    files = sorted((out / "triplets").iterdir())
    stamps = [p.stat().st_mtime_ns for p in files]
    manifest = (out / "manifest.jsonl").read_bytes()
    summary = build_triplets([scenes], out, size=SIZE, seed=0, progress=False)
    assert summary["run"]["written"] == 0 and summary["run"]["removed"] == 0
    assert sorted((out / "triplets").iterdir()) == files
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert (out / "manifest.jsonl").read_bytes() == manifest


def test_resume_after_losing_files_and_fewer_scenes(built, scenes, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built[0], out)
    records = _manifest(out)
    (out / records[0]["target"]).unlink()  # an unfinished triplet: redone
    summary = build_triplets([scenes], out, size=SIZE, seed=0, progress=False)
    assert summary["run"]["written"] == 1
    assert (out / "manifest.jsonl").read_bytes() == (built[0] / "manifest.jsonl").read_bytes()
    # fewer scenes: the others' triplets leave the manifest and the folder
    summary = build_triplets([scenes / "scene_000000"], out, size=SIZE, seed=0, progress=False)
    kept = _manifest(out)
    assert {r["scene"] for r in kept} == {"data-scene_000000"}
    names = {p.name for p in (out / "triplets").iterdir()}
    assert names == {f"{r['id']}_{k}.png" for r in kept for k in FILES}
    with pytest.raises(ValueError, match="other settings"):
        build_triplets([scenes], out, size=SIZE, seed=1, progress=False)


def test_deterministic_for_a_seed(built, scenes, tmp_path):
    out, _ = built
    # scene folders given one by one, in another order: same triplets
    folders = sorted(scenes.glob("scene_*"), reverse=True)
    build_triplets(folders, tmp_path / "same", size=SIZE, seed=0, progress=False)
    assert (tmp_path / "same" / "manifest.jsonl").read_bytes() == (
        out / "manifest.jsonl"
    ).read_bytes()
    for r in _manifest(out)[:6]:
        for key in ("input", "target", "visible_mask", "amodal_mask"):
            assert (tmp_path / "same" / r[key]).read_bytes() == (out / r[key]).read_bytes()
    build_triplets([scenes], tmp_path / "other", size=SIZE, seed=5, progress=False)
    other = [(r["id"], r["occlusion"]) for r in _manifest(tmp_path / "other")]
    assert other != [(r["id"], r["occlusion"]) for r in _manifest(out)]


def test_bins_balanced_by_the_rule(built):
    _, summary = built
    for kind, bins in summary["occlusion_bins_by_type"].items():
        counts = [n for n in bins.values() if n]
        if counts:
            assert max(counts) <= 2 * min(counts), (kind, bins)


def _candidate(kind: str, occlusion: float, n: int) -> Triplet:
    return Triplet("s", "d", "train", n, 2, kind, occlusion, "mug", False)


def test_select_triplets_caps_bins_and_applies_the_mix():
    candidates = [_candidate("cutout", 0.1, i) for i in range(10)]
    candidates += [_candidate("cutout", 0.3, 100 + i) for i in range(3)]
    candidates += [_candidate("cutout", 0.7, 200)]
    mix = normalise_mix({"cutout": 1})
    selected, dropped, missing = select_triplets(candidates, mix, 2.0, seed=0)
    bins = [sum(c.bin == b for c in selected) for b in range(4)]
    assert bins == [2, 2, 0, 1] and dropped["balance"] == 9 and missing == []
    scene = [_candidate("scene", 0.1 + 0.2 * (i % 4), 300 + i) for i in range(4)]
    many = [_candidate("brush", 0.1 + 0.2 * (i % 4), 400 + i) for i in range(40)]
    mix = normalise_mix({"scene": 0.5, "brush": 0.5, "border": 0.2})
    selected, dropped, missing = select_triplets(scene + many, mix, None, seed=0)
    kinds = [c.mask_type for c in selected]
    assert kinds.count("scene") == 4 and kinds.count("brush") == 4 and missing == ["border"]
    assert sorted(c.bin for c in selected if c.mask_type == "brush") == [0, 1, 2, 3]
    again, _, _ = select_triplets(list(reversed(scene + many)), mix, None, seed=0)
    assert [c.id for c in again] == [c.id for c in selected]


def _write_amodal(folder: Path, amodal: np.ndarray) -> None:
    v, n, h, w = amodal.shape
    packed = np.packbits(amodal.reshape(v, n, -1), axis=2)
    np.savez(folder / "amodal.npz", packed=packed, shape=np.array([v, n, h, w]))


def test_bad_input_is_skipped_and_counted(scenes, tmp_path):
    from scenemaker.synth.dataset import DatasetScene

    root = tmp_path / "bad"
    folder = root / "scene_000000"
    shutil.copytree(scenes / "scene_000000", folder)
    shutil.copytree(scenes / "objects", root / "objects")
    shutil.copy(scenes / "generate.json", root)  # the dataset's objects/ is then inside it
    payload = json.loads((folder / "scene.json").read_text())
    for obj in payload["objects"]:
        obj["label"] = "{chair}\n\t"  # braces and control characters break prompts
    (folder / "scene.json").write_text(json.dumps(payload))
    scene = DatasetScene(folder)
    amodal = scene.amodal_masks()
    ids = [o["instance_id"] for o in payload["objects"]]
    view0 = scene.view(0).instance.copy()
    view0[view0 == ids[0]] = 1  # fully hidden object
    tiny = view0 == ids[1]
    tiny[:] = False
    tiny[40:42, 40:42] = True  # a 4-pixel object
    view0[view0 == ids[1]] = 1
    view0[tiny] = ids[1]
    amodal[0, 1] = tiny
    Image.fromarray(view0).save(folder / "views" / "000_instance.png")
    view1 = np.full_like(view0, ids[-1])  # an object larger than the image
    amodal[1, -1] = True
    Image.fromarray(view1).save(folder / "views" / "001_instance.png")
    _write_amodal(folder, amodal)
    broken = root / "scene_000001"
    broken.mkdir()
    (broken / "scene.json").write_text("{")

    with pytest.warns(UserWarning, match="skipping scene"):
        summary = build_triplets([root], tmp_path / "out", {"brush": 1}, SIZE, progress=False)
    skipped = summary["skipped"]
    assert skipped["scene_unreadable"] == 1
    assert skipped["target_too_small"] == 1 and skipped["touches_all_borders"] == 1
    assert skipped["empty_visible"] == 1 + (len(ids) - 1)  # view 0 + the rest of view 1
    records = _manifest(tmp_path / "out")
    assert records and summary["handled"]["label_cleaned"] == len(records)
    assert all(r["label"] == "chair" and "{" not in r["prompt"] for r in records)


def test_dataset_loader_and_split_by_scene(built):
    out, summary = built
    dataset = TripletDataset(out)
    assert len(dataset) == summary["triplets"]
    item = dataset[0]
    assert item["input"].shape == (SIZE, SIZE, 3) and item["input"].dtype == np.uint8
    assert item["target"].shape == (SIZE, SIZE, 3)
    assert item["visible_mask"].dtype == bool and item["amodal_mask"].shape == (SIZE, SIZE)
    assert {"prompt", "mask_type", "occlusion"} <= set(item)
    train, val = dataset.split(0.34, seed=0)
    assert len(train) + len(val) == len(dataset) and len(val) > 0 and len(train) > 0
    assert not set(train.scenes) & set(val.scenes)
    again = dataset.split(0.34, seed=0)[1]
    assert [r["id"] for r in again.records] == [r["id"] for r in val.records]
    with pytest.raises(ValueError, match="fraction_val"):
        dataset.split(1.0)


def test_bad_arguments(scenes, tmp_path):
    with pytest.raises(ValueError, match="unknown mask types"):
        build_triplets([scenes], tmp_path / "o", mix={"scribble": 1.0}, progress=False)
    with pytest.raises(ValueError, match="size"):
        build_triplets([scenes], tmp_path / "o", size=8, progress=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_triplets([tmp_path / "missing"], tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="not all 0"):
        normalise_mix({"scene": 0})
    assert parse_mix("scene=1,brush=1") == {
        "scene": 0.5,
        "cutout": 0.0,
        "border": 0.0,
        "brush": 0.5,
    }
    assert parse_mix('{"cutout": 2}')["cutout"] == 1.0
    with pytest.raises(ValueError, match="TYPE=SHARE"):
        parse_mix("scene")
    with pytest.raises(FileNotFoundError, match="manifest"):
        TripletDataset(tmp_path)


def test_stored_light_direction_is_used(scenes, tmp_path):
    """Targets are lit with scene.json's ``metadata.render.light_dir`` (the writer stores it)."""
    root = tmp_path / "lit"
    shutil.copytree(scenes / "scene_000000", root / "scene_000000")
    shutil.copytree(scenes / "objects", root / "objects")
    shutil.copy(scenes / "generate.json", root)  # the dataset's objects/ is then inside it
    path = root / "scene_000000" / "scene.json"
    payload = json.loads(path.read_text())
    payload["metadata"]["render"] = {"light_dir": [0.0, -1.0, 0.0]}  # not the light it had
    path.write_text(json.dumps(payload))
    summary = build_triplets([root], tmp_path / "out", {"brush": 1}, SIZE, progress=False)
    assert summary["triplets"] == 0 and summary["skipped"]["render_mismatch"] > 0


def test_scene_without_stored_light_is_skipped(scenes, tmp_path):
    """A scene.json without ``metadata.render.light_dir`` (written before the generator
    recorded it) cannot be re-lit: that scene is skipped, with a warning naming it."""
    root = tmp_path / "unlit"
    for name in ("scene_000000", "scene_000001", "objects"):
        shutil.copytree(scenes / name, root / name)
    shutil.copy(scenes / "generate.json", root)
    path = root / "scene_000000" / "scene.json"
    payload = json.loads(path.read_text())
    del payload["metadata"]["render"]
    path.write_text(json.dumps(payload))
    with pytest.warns(UserWarning, match="light_dir"):
        summary = build_triplets([root], tmp_path / "out", {"brush": 1}, SIZE, progress=False)
    assert summary["skipped"]["scene_unreadable"] == 1 and summary["triplets"] > 0
    assert all(r["scene"].endswith("scene_000001") for r in _manifest(tmp_path / "out"))


def test_select_triplets_without_any_candidate_is_empty_not_a_crash():
    from scenemaker.deocclusion.triplets import DEFAULT_MIX

    selected, dropped, missing = select_triplets([], dict(DEFAULT_MIX), 2.0, seed=0)
    assert selected == [] and sum(dropped.values()) == 0
    assert sorted(missing) == sorted(t for t, share in DEFAULT_MIX.items() if share > 0)
