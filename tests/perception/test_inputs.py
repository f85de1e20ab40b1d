"""User-supplied perception inputs: photos, depth, intrinsics and masks (round trips, errors)."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from scenemaker.errors import InputError
from scenemaker.perception.base import Masks
from scenemaker.perception.inputs import (
    UserDepth,
    UserMasks,
    load_image,
    load_user_depth,
    load_user_masks,
    parse_intrinsics,
    read_user_masks,
    scale_intrinsics,
    write_label_png,
)

# ----------------------------------------------------------------------------- images


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    stored = np.full((20, 40, 3), 40, np.uint8)  # 40 wide, 20 high as stored
    stored[:8, :8] = (255, 0, 0)  # red top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)

    loaded = load_image(path)

    assert loaded.rgb.shape == (40, 20, 3) and loaded.original_size == (20, 40)
    red = np.array([255, 0, 0])
    assert np.abs(loaded.rgb[2, 17].astype(int) - red).max() < 30  # now top-right
    assert np.abs(loaded.rgb[2, 2].astype(int) - 40).max() < 30
    assert any("EXIF orientation 6" in note for note in loaded.notes)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[0, 1] = (0, 0, 0, 0)  # transparent -> white
    rgba[0, 2] = (0, 0, 0, 128)  # half black over white
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)

    loaded = load_image(path)

    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (4, 4, 3)
    assert loaded.rgb[0, 0].tolist() == [10, 20, 30]
    assert loaded.rgb[0, 1].tolist() == [255, 255, 255]
    assert np.all(np.abs(loaded.rgb[0, 2].astype(int) - 127) <= 1)
    assert "transparent pixels composited on white" in loaded.notes


def test_16bit_grayscale_scaled_to_8bit(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.array([[0, 65535, 257 * 100]], np.uint16)).save(path)

    loaded = load_image(path)

    assert loaded.rgb.shape == (1, 3, 3)
    assert loaded.rgb[0, :, 0].tolist() == [0, 255, 100]
    assert np.all(loaded.rgb == loaded.rgb[..., :1])


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("L", 77, [77, 77, 77]),
        ("I", 257 * 200, [200, 200, 200]),
        ("F", 0.5, [128, 128, 128]),
        ("CMYK", (0, 255, 0, 0), [255, 0, 255]),
        ("P", 3, None),
        ("LA", (50, 255), [50, 50, 50]),
    ],
)
def test_other_modes_become_rgb(tmp_path, mode, value, expected):
    image = Image.new(mode, (3, 2), value)
    path = tmp_path / f"image_{mode}.tiff"
    image.save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (2, 3, 3) and loaded.rgb.dtype == np.uint8
    if expected is not None:
        assert loaded.rgb[1, 2].tolist() == expected


def test_palette_transparency_composited_on_white(tmp_path):
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.putpixel((1, 0), 1)
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    rgb = load_image(path).rgb
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[0, 1].tolist() == [200, 10, 10]


def test_large_image_downscaled_with_note_and_intrinsics_scaled(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (1000, 500), (9, 9, 9)).save(path)

    loaded = load_image(path, max_side=200)

    assert loaded.rgb.shape == (100, 200, 3) and loaded.size == (200, 100)
    assert loaded.original_size == (1000, 500)
    assert any("downscaled from 1000x500 to 200x100" in note for note in loaded.notes)
    K = parse_intrinsics("800,810,499.5,249.5", None, *loaded.original_size)
    scaled = scale_intrinsics(K, loaded.original_size, loaded.size)
    np.testing.assert_allclose(scaled[0, 0], 160.0)
    np.testing.assert_allclose(scaled[1, 1], 162.0)
    np.testing.assert_allclose(scaled[:2, 2], [99.5, 49.5])  # centre stays the centre
    np.testing.assert_allclose(scale_intrinsics(scaled, loaded.size, loaded.original_size), K)


def test_small_image_untouched(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (30, 20), (1, 2, 3)).save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (20, 30, 3) and loaded.notes == []
    assert loaded.rgb[0, 0].tolist() == [1, 2, 3]


def _truncated_png(path):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello"), "not an image file PIL can read"),
        (_truncated_png, "truncated or corrupt"),
    ],
    ids=["missing", "directory", "empty", "text", "truncated"],
)
def test_bad_image_files_name_the_file(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_zero_size_image_rejected(tmp_path, monkeypatch):
    path = tmp_path / "zero.png"
    path.write_bytes(b"not empty")
    monkeypatch.setattr(Image, "open", lambda p: Image.new("RGB", (0, 5)))
    with pytest.raises(InputError, match="zero.png: image has zero size"):
        load_image(path)


# ----------------------------------------------------------------------------- intrinsics


def test_parse_intrinsics_k_and_fov():
    K = parse_intrinsics("500, 510 ,320,240", None, 640, 480)
    assert K.tolist() == [[500, 0, 320], [0, 510, 240], [0, 0, 1]]
    K = parse_intrinsics(None, 90.0, 640, 480)
    np.testing.assert_allclose(K, [[320, 0, 319.5], [0, 320, 239.5], [0, 0, 1]])
    assert parse_intrinsics(None, None, 640, 480) is None


@pytest.mark.parametrize(
    ("K", "fov", "message"),
    [
        ("500,500,320", None, "expected 4 numbers"),
        ("a,b,c,d", None, "expected 4 numbers"),
        ("500,nan,320,240", None, "expected 4 numbers"),
        ("-500,500,320,240", None, "must be positive"),
        ("2000,2000,2016,1512", None, "outside the 640x480 image"),
        (None, 0.0, r"\(0, 180\)"),
        (None, 180.0, r"\(0, 180\)"),
        (None, float("nan"), r"\(0, 180\)"),
        ("500,500,320,240", 60.0, "both given"),
    ],
)
def test_bad_intrinsics(K, fov, message):
    with pytest.raises(InputError, match=message):
        parse_intrinsics(K, fov, 640, 480)


# ----------------------------------------------------------------------------- depth


def test_depth_png_millimetres_to_metres_exact(tmp_path):
    mm = np.array([[1, 1234, 65535], [500, 0, 2000]], np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(mm).save(path)

    loaded = load_user_depth(path, (3, 2))

    assert loaded.depth.dtype == np.float32 and loaded.depth.shape == (2, 3)
    np.testing.assert_array_equal(loaded.depth, (mm / 1000.0).astype(np.float32))
    assert loaded.invalid_count == 1 and loaded.invalid_fraction == pytest.approx(1 / 6)
    assert loaded.file_size == (3, 2)


def test_depth_png_custom_scale_and_invalid_value(tmp_path):
    raw = np.array([[65535, 4000, 8000]], np.uint16)  # 65535 marks "no reading"
    path = tmp_path / "depth.png"
    Image.fromarray(raw).save(path)
    loaded = load_user_depth(path, (3, 1), depth_scale=4000.0, invalid_value=65535)
    np.testing.assert_array_equal(loaded.depth, np.float32([[0.0, 1.0, 2.0]]))
    assert loaded.invalid_count == 1


def _write_exr(path, channels):
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))


def test_depth_exr_z_channel_in_metres(tmp_path):
    z = np.array([[1.5, 2.25], [np.inf, 0.75]], np.float32)
    path = tmp_path / "depth.exr"
    _write_exr(path, {"R": np.zeros_like(z), "Z": z})
    loaded = load_user_depth(path, (2, 2), depth_scale=1000.0)  # float data: always metres
    np.testing.assert_array_equal(loaded.depth, np.float32([[1.5, 2.25], [0.0, 0.75]]))
    assert loaded.invalid_count == 1 and loaded.notes == []


def test_depth_exr_single_channel_and_missing_channel(tmp_path):
    path = tmp_path / "single.exr"
    _write_exr(path, {"distance": np.full((2, 2), 3.0, np.float32)})
    np.testing.assert_array_equal(load_user_depth(path, (2, 2)).depth, np.full((2, 2), 3.0))
    path = tmp_path / "two.exr"
    _write_exr(path, {"A": np.ones((2, 2), np.float32), "B": np.ones((2, 2), np.float32)})
    with pytest.raises(InputError, match=r"two.exr: no depth channel among \['A', 'B'\]"):
        load_user_depth(path, (2, 2))


def test_depth_npy_float_metres_and_int_millimetres(tmp_path):
    metres = np.array([[[0.5], [1.25]], [[2.0], [3.0]]], np.float32)  # (H, W, 1)
    path = tmp_path / "depth.npy"
    np.save(path, metres)
    np.testing.assert_array_equal(load_user_depth(path, (2, 2)).depth, metres[..., 0])

    path = tmp_path / "depth_mm.npy"
    np.save(path, np.array([[250, 3000]], np.int32))
    np.testing.assert_array_equal(load_user_depth(path, (2, 1)).depth, np.float32([[0.25, 3.0]]))


def test_nan_inf_negative_zero_depth_become_zero_and_are_counted(tmp_path):
    depth = np.array([[np.nan, np.inf, -np.inf, -1.0, 0.0, 2.0, 7.0, 9.0]], np.float64)
    path = tmp_path / "depth.npy"
    np.save(path, depth)
    loaded = load_user_depth(path, (8, 1), invalid_value=7.0)
    np.testing.assert_array_equal(loaded.depth, np.float32([[0, 0, 0, 0, 0, 2, 0, 9]]))
    assert loaded.invalid_count == 6 and loaded.invalid_fraction == pytest.approx(6 / 8)
    assert any("75% of depth pixels are invalid" in note for note in loaded.notes)


def test_depth_at_original_size_resized_to_downscaled_image(tmp_path):
    mm = np.full((100, 200), 1500, np.uint16)
    mm[:50] = 0
    path = tmp_path / "depth.png"
    Image.fromarray(mm).save(path)
    loaded = load_user_depth(path, (50, 25))
    assert loaded.depth.shape == (25, 50) and loaded.file_size == (200, 100)
    assert set(np.unique(loaded.depth).tolist()) == {0.0, 1.5}
    assert any("resized from 200x100 to 50x25" in note for note in loaded.notes)


def test_depth_size_mismatch_message(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.ones((480, 640), np.uint16)).save(path)
    with pytest.raises(InputError) as info:
        load_user_depth(path, (1280, 960))
    assert str(info.value) == (
        f"{path}: depth is 640x480 but the image is 1280x960 (expected the same size)"
    )


def test_bad_depth_files(tmp_path):
    eight_bit = tmp_path / "depth8.png"
    Image.fromarray(np.full((2, 2), 9, np.uint8)).save(eight_bit)
    with pytest.raises(InputError, match="depth8.png: 8-bit depth image .* 256 depth levels"):
        load_user_depth(eight_bit, (2, 2))

    colour = tmp_path / "colour.png"
    Image.new("RGB", (2, 2)).save(colour)
    with pytest.raises(InputError, match="colour.png: depth image has mode RGB"):
        load_user_depth(colour, (2, 2))

    invalid = tmp_path / "invalid.npy"
    np.save(invalid, np.full((2, 2), np.nan))
    with pytest.raises(InputError, match="invalid.npy: no valid depth"):
        load_user_depth(invalid, (2, 2))

    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled.npy: not a plain numeric array"):
        load_user_depth(pickled, (1, 1))

    cube = tmp_path / "cube.npy"
    np.save(cube, np.ones((2, 2, 3), np.float32))
    with pytest.raises(InputError, match=r"cube.npy: expected a single-channel \(H, W\)"):
        load_user_depth(cube, (2, 2))

    corrupt = tmp_path / "corrupt.exr"
    corrupt.write_bytes(b"\x76\x2f\x31\x01" + b"garbage" * 4)
    with pytest.raises(InputError, match="corrupt.exr: cannot read the EXR file"):
        load_user_depth(corrupt, (2, 2))

    text = tmp_path / "depth.txt"
    text.write_text("1 2 3")
    with pytest.raises(InputError, match="depth.txt: not an image file PIL can read"):
        load_user_depth(text, (2, 2))

    with pytest.raises(InputError, match="nothing.png: file not found"):
        load_user_depth(tmp_path / "nothing.png", (2, 2))


# ----------------------------------------------------------------------------- masks


def test_label_png_8bit_objects_in_value_order(tmp_path):
    label = np.zeros((4, 5), np.uint8)
    label[0, :2] = 7
    label[2:, 3:] = 3
    path = tmp_path / "labels.png"
    Image.fromarray(label).save(path)

    masks = load_user_masks(path, (5, 4))

    assert len(masks) == 2 and masks.labels == ["object", "object"]
    np.testing.assert_array_equal(masks.masks[0], label == 3)
    np.testing.assert_array_equal(masks.masks[1], label == 7)


def test_label_png_16bit(tmp_path):
    label = np.zeros((3, 3), np.uint16)
    label[0, 0], label[2, 2] = 300, 1000
    path = tmp_path / "labels16.png"
    Image.fromarray(label).save(path)
    masks = load_user_masks(path, (3, 3))
    assert len(masks) == 2 and masks.masks[0, 0, 0] and masks.masks[1, 2, 2]
    assert masks.masks.sum() == 2


def test_write_label_png_round_trip(tmp_path):
    masks = np.zeros((3, 6, 8), bool)
    masks[0, :3, :4] = True
    masks[1, 3:, :] = True
    masks[2, 0, 7] = True
    original = Masks(masks, ["chair", "dining table", "lamp"], [0.9, None, 0.5])
    path = tmp_path / "out" / "masks.png"

    assert write_label_png(original, path) == []
    loaded = load_user_masks(path, (8, 6))

    np.testing.assert_array_equal(loaded.masks, masks)
    assert loaded.labels == original.labels and loaded.scores == original.scores
    assert not list(path.parent.glob(".*.tmp"))  # no temp file left behind


def test_write_label_png_reports_overlap(tmp_path):
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 1:3] = True
    notes = write_label_png(Masks(masks, ["a", "b"]), tmp_path / "m.png")
    assert any("4 pixels covered by several masks" in note for note in notes)
    loaded = load_user_masks(tmp_path / "m.png", (4, 4))
    assert loaded.masks[0].sum() == 4 and loaded.masks[1].sum() == 8


def test_per_object_folder(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    chair = np.zeros((4, 6), np.uint8)
    chair[1:3, 1:3] = 255
    Image.fromarray(chair).save(folder / "00_chair.png")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "01_table.png")  # empty
    cutout = np.zeros((4, 6, 4), np.uint8)
    cutout[..., :3] = 200
    cutout[3, 5, 3] = 255
    Image.fromarray(cutout, "RGBA").save(folder / "10_dining_table.png")
    lamp = np.zeros((4, 6), np.uint8)
    lamp[0, 0] = 1
    Image.fromarray(lamp).save(folder / "2.png")
    (folder / "notes.txt").write_text("ignored")

    masks, notes = read_user_masks(folder, (6, 4))

    assert masks.labels == ["chair", "object", "dining table"]  # natural order: 00, 2, 10
    np.testing.assert_array_equal(masks.masks[0], chair > 0)
    assert masks.masks[1].sum() == 1 and masks.masks[1, 0, 0]
    assert masks.masks[2].sum() == 1 and masks.masks[2, 3, 5]
    assert any("01_table.png: empty mask, dropped" in note for note in notes)
    with pytest.warns(UserWarning, match="empty mask, dropped"):
        load_user_masks(folder, (6, 4))


def test_folder_mask_wrong_size_names_file_and_sizes(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    Image.fromarray(np.ones((4, 6), np.uint8)).save(folder / "00_a.png")
    Image.fromarray(np.ones((5, 6), np.uint8)).save(folder / "01_b.png")
    with pytest.raises(InputError) as info:
        load_user_masks(folder, (6, 4))
    message = str(info.value)
    assert "01_b.png" in message and "6x5" in message and "6x4" in message


def test_coco_rle_compressed_uncompressed_and_polygon(tmp_path):
    from pycocotools import mask as mask_utils

    h, w = 6, 7
    first = np.zeros((h, w), np.uint8)
    first[1:3, 2:5] = 1
    rle = mask_utils.encode(np.asfortranarray(first))
    second = np.zeros((h, w), bool)
    second[4:, :] = True
    counts = [4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2]  # column-major runs: rows 4-5
    payload = {
        "images": [{"id": 1, "width": w, "height": h}],
        "categories": [{"id": 5, "name": "mug"}],
        "annotations": [
            {
                "image_id": 1,
                "category_id": 5,
                "score": 0.8,
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
            },
            {"image_id": 1, "label": "shelf", "segmentation": {"size": [h, w], "counts": counts}},
            {"image_id": 1, "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
            {"image_id": 1, "segmentation": {"size": [h, w], "counts": [h * w]}},  # empty
        ],
    }
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(payload))

    masks, notes = read_user_masks(path, (w, h))

    assert masks.labels == ["mug", "shelf", "object"]
    assert masks.scores == [0.8, None, None]
    np.testing.assert_array_equal(masks.masks[0], first.astype(bool))
    np.testing.assert_array_equal(masks.masks[1], second)
    assert masks.masks[2, 1:3, 1:4].all() and masks.masks[2].sum() == 6
    assert any("annotation 3 (object): empty mask, dropped" in note for note in notes)


def test_coco_list_of_annotations_and_errors(tmp_path):
    from pycocotools import mask as mask_utils

    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    ann = {"segmentation": {"size": [4, 4], "counts": rle["counts"].decode()}, "label": "cup"}
    path = tmp_path / "list.json"
    path.write_text(json.dumps([ann]))
    masks = load_user_masks(path, (4, 4))
    assert masks.labels == ["cup"] and masks.masks[0, 0, 0] and masks.masks.sum() == 1

    with pytest.raises(InputError, match=r"list.json: annotation 0 is 4x4 but the image is 8x8"):
        load_user_masks(path, (8, 8))

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"segmentation": {"size": [4, 4], "counts": "!!"}}]))
    with pytest.raises(InputError, match="broken.json: annotation 0: unusable segmentation"):
        load_user_masks(broken, (4, 4))

    many = tmp_path / "many.json"
    many.write_text(json.dumps([dict(ann, image_id=1), dict(ann, image_id=2)]))
    with pytest.raises(InputError, match="many.json: annotations of 2 images"):
        load_user_masks(many, (4, 4))

    not_json = tmp_path / "bad.json"
    not_json.write_text("{")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        load_user_masks(not_json, (4, 4))


def test_bad_mask_files(tmp_path):
    with pytest.raises(InputError, match="missing.png: masks not found"):
        load_user_masks(tmp_path / "missing.png", (4, 4))
    label = tmp_path / "labels.png"
    Image.fromarray(np.ones((3, 5), np.uint8)).save(label)
    with pytest.raises(InputError, match="labels.png: label image is 5x3 but the image is 4x4"):
        load_user_masks(label, (4, 4))
    colour = tmp_path / "colour.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(colour)
    with pytest.raises(InputError, match="colour.png: label image has mode RGB"):
        load_user_masks(colour, (4, 4))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty: no .png mask files"):
        load_user_masks(empty, (4, 4))


# ----------------------------------------------------------------------------- backends


def test_user_masks_backend(tmp_path):
    masks = np.zeros((1, 4, 6), bool)
    masks[0, 1, 1] = True
    path = tmp_path / "masks.png"
    write_label_png(Masks(masks, ["vase"]), path)
    segmenter = UserMasks(path)
    assert segmenter.name == "user"
    result = segmenter.segment(np.zeros((4, 6, 3), np.uint8), prompt="anything")
    assert result.labels == ["vase"] and np.array_equal(result.masks, masks)
    with pytest.raises(InputError, match="masks.png: label image is 6x4 but the image is 5x4"):
        segmenter.segment(np.zeros((4, 5, 3), np.uint8))


def test_user_depth_backend_intrinsics(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((100, 200), 2000, np.uint16)).save(path)
    small = np.zeros((25, 50, 3), np.uint8)  # the photo, downscaled 4x by load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the resize note
        point_map = UserDepth(path, K="400,400,99.5,49.5").estimate(small)
        np.testing.assert_allclose(point_map.K, [[100, 0, 24.5], [0, 100, 12], [0, 0, 1]])
        assert point_map.depth.shape == (25, 50) and np.all(point_map.depth == 2.0)

        by_fov = UserDepth(path, fov=90.0).estimate(small)
        np.testing.assert_allclose(by_fov.K[0, 0], 25.0)

        given = np.array([[30.0, 0, 25], [0, 30, 12], [0, 0, 1]])
        np.testing.assert_array_equal(UserDepth(path).estimate(small, K=given).K, given)

        with pytest.raises(InputError, match="pass --K fx,fy,cx,cy or --fov"):
            UserDepth(path).estimate(small)

    with pytest.raises(InputError, match="both given"):
        UserDepth(path, K="1,1,1,1", fov=60.0)
    with pytest.raises(InputError, match="expected 4 numbers"):
        UserDepth(path, K="1,1")
    with pytest.raises(InputError, match="nope.png: depth file not found"):
        UserDepth(tmp_path / "nope.png", fov=60.0)


def test_background_only_label_png_gives_no_masks(tmp_path):
    path = tmp_path / "none.png"
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(path)
    masks, notes = read_user_masks(path, (4, 3))
    assert masks.masks.shape == (0, 3, 4) and masks.labels == []
    assert notes == [f"{path}: no object masks found"]


def test_float_depth_in_millimetres_is_flagged(tmp_path):
    path = tmp_path / "depth_mm.npy"
    np.save(path, np.full((2, 2), 1500.0, np.float32))
    loaded = load_user_depth(path, (2, 2))
    assert loaded.depth[0, 0] == 1500.0
    assert any("median depth is 1500 m: check the units" in note for note in loaded.notes)


def test_write_label_png_accepts_a_bool_array(tmp_path):
    masks = np.zeros((2, 3, 3), bool)
    masks[0, 0, 0] = masks[1, 2, 2] = True
    write_label_png(masks, tmp_path / "m.png")
    loaded = load_user_masks(tmp_path / "m.png", (3, 3))
    np.testing.assert_array_equal(loaded.masks, masks)
    assert loaded.labels == ["object", "object"]
    write_label_png(np.zeros((0, 3, 3), bool), tmp_path / "none.png")
    assert read_user_masks(tmp_path / "none.png", (3, 3))[0].masks.shape == (0, 3, 3)
