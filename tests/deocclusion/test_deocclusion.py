"""De-occlusion: crop convention, classical / none backends, silhouettes, FLUX-Kontext + LoRA
through the real diffusers code path on a tiny random model built offline."""

import numpy as np
import pytest

from scenemaker.deocclusion import make_crop
from scenemaker.deocclusion.base import BOX_RATIO, ObjectCrop
from scenemaker.deocclusion.classical import ClassicalDeoccluder, NoDeocclusion
from scenemaker.deocclusion.flux import (
    LORA_WEIGHT_NAME,
    FluxKontextDeoccluder,
    clean_label,
    deocclusion_prompt,
)
from scenemaker.deocclusion.silhouette import foreground_mask
from scenemaker.errors import InputError, MissingWeightsError

COLOUR = np.array([200, 60, 40], np.uint8)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _textured_image(h, w, rng):
    """A flat object colour with mild noise, so inpainted colours can be checked."""
    noise = rng.integers(-8, 9, size=(h, w, 3))
    return np.clip(COLOUR.astype(int) + noise, 0, 255).astype(np.uint8)


def _disk_in_crop(crop, centre, radius):
    """The full disk, rasterised in crop pixels through the crop's own box."""
    side = crop.image.shape[0]
    v, u = np.mgrid[:side, :side]
    xy = crop.to_image_coords(np.stack([u + 0.5, v + 0.5], -1).reshape(-1, 2))
    inside = ((xy - 0.5 - np.asarray(centre)) ** 2).sum(-1) <= radius**2  # pixel index coords
    return inside.reshape(side, side)


@pytest.fixture
def occluded_disk(rng):
    """A disk (centre (90, 100), radius 60) with a vertical band x in [80, 100) hidden."""
    h, w = 200, 200
    v, u = np.mgrid[:h, :w]
    disk = (u - 90) ** 2 + (v - 100) ** 2 <= 60**2
    band = (u >= 80) & (u < 100)
    return _textured_image(h, w, rng), disk, band


# --- crop convention -------------------------------------------------------------------


def test_make_crop_square_box_at_70_percent_outside_white(rng):
    image = _textured_image(120, 160, rng)
    mask = np.zeros((120, 160), bool)
    mask[30:70, 50:130] = True  # 80 wide, 40 tall
    crop = make_crop(image, mask, "box", size=100)

    assert crop.image.shape == (100, 100, 3) and crop.visible_mask.shape == (100, 100)
    x0, y0, x1, y1 = crop.box
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(80 / BOX_RATIO)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((90, 50))
    rows, cols = np.nonzero(crop.visible_mask)
    assert cols.max() - cols.min() + 1 == pytest.approx(100 * BOX_RATIO, abs=1)
    assert np.all(crop.image[~crop.visible_mask] == 255)
    assert np.abs(crop.image[crop.visible_mask].astype(int) - COLOUR).max() <= 8
    # the visible box maps back onto the mask's box in image pixels
    corners = crop.to_image_coords([[cols.min(), rows.min()], [cols.max() + 1, rows.max() + 1]])
    np.testing.assert_allclose(corners, [[50, 30], [130, 70]], atol=80 / 70 + 1e-6)


def test_make_crop_near_image_border_is_padded_white(rng):
    image = _textured_image(64, 64, rng)
    mask = np.zeros((64, 64), bool)
    mask[:20, :20] = True  # in the image's top-left corner
    crop = make_crop(image, mask, size=50)

    x0, y0, _, _ = crop.box
    assert x0 < 0 and y0 < 0
    outside = int(round(-x0 / (20 / BOX_RATIO) * 50))  # crop pixels left of the image
    assert outside >= 5
    assert np.all(crop.image[:, : outside - 1] == 255) and np.all(crop.image[: outside - 1] == 255)
    assert not crop.visible_mask[:, : outside - 1].any()
    rows, cols = np.nonzero(crop.visible_mask)
    np.testing.assert_allclose(crop.to_image_coords([[cols.min(), rows.min()]]), [[0, 0]], atol=1)


def test_make_crop_maps_occluders_outside_the_visible_mask(occluded_disk):
    image, disk, band = occluded_disk
    crop = make_crop(image, disk & ~band, occluders=band | disk, size=64)
    assert crop.occluder_mask.shape == (64, 64)
    assert crop.occluder_mask.any()
    assert not (crop.occluder_mask & crop.visible_mask).any()
    assert make_crop(image, disk & ~band, size=64).occluder_mask is None
    with pytest.raises(ValueError, match="occluders"):
        make_crop(image, disk, occluders=band[:10])


# --- classical and none ------------------------------------------------------------------


@pytest.mark.parametrize("with_occluders", [False, True])
def test_classical_recovers_an_occluded_disk(occluded_disk, with_occluders):
    image, disk, band = occluded_disk
    occluders = band if with_occluders else None
    crop = make_crop(image, disk & ~band, "ball", size=128, occluders=occluders)
    full = _disk_in_crop(crop, (90, 100), 60)
    assert _iou(crop.visible_mask, full) < 0.8  # the band hides a real part of it

    result = ClassicalDeoccluder().complete(crop)

    assert result.method == "classical" and result.crop is crop
    assert result.image.shape == (128, 128, 3) and result.image.dtype == np.uint8
    assert _iou(result.mask, full) > 0.9
    assert np.all(result.mask[crop.visible_mask])
    visible = crop.visible_mask
    np.testing.assert_array_equal(result.image[visible], crop.image[visible])
    filled = result.image[result.mask & ~visible].astype(int)
    assert len(filled) > 500
    assert not np.all(filled == 255, axis=-1).any()  # no white left inside the object
    assert np.abs(filled.mean(0) - COLOUR).max() < 12  # filled from the object's colour
    assert np.all(result.image[~result.mask] == 255)


def test_classical_keeps_an_unoccluded_concave_object(rng):
    image = _textured_image(160, 160, rng)
    shape_l = np.zeros((160, 160), bool)
    shape_l[20:140, 20:50] = True
    shape_l[110:140, 20:140] = True  # an L: half of its convex hull is background
    nothing_in_front = np.zeros_like(shape_l)
    for occluders in (nothing_in_front, None):  # known: nothing in front; unknown: solidity
        crop = make_crop(image, shape_l, occluders=occluders, size=96)
        result = ClassicalDeoccluder().complete(crop)
        assert _iou(result.mask, crop.visible_mask) > 0.95


def test_classical_is_deterministic_and_validates(occluded_disk):
    image, disk, band = occluded_disk
    crop = make_crop(image, disk & ~band, size=64)
    first, second = ClassicalDeoccluder().complete(crop), ClassicalDeoccluder().complete(crop)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.mask, second.mask)

    empty = ObjectCrop(crop.image, np.zeros((64, 64), bool), crop.box)
    with pytest.raises(ValueError, match="empty"):
        ClassicalDeoccluder().complete(empty)
    with pytest.raises(ValueError, match="visible_mask"):
        NoDeocclusion().complete(ObjectCrop(crop.image, crop.visible_mask[:10], crop.box))
    with pytest.raises(ValueError, match="min_solidity"):
        ClassicalDeoccluder(min_solidity=2)


def test_none_backend_returns_the_crop(occluded_disk):
    image, disk, band = occluded_disk
    crop = make_crop(image, disk & ~band, size=64)
    result = NoDeocclusion().complete(crop)
    assert result.method == "none"
    np.testing.assert_array_equal(result.image, crop.image)
    np.testing.assert_array_equal(result.mask, crop.visible_mask)
    assert result.image is not crop.image  # a copy: editing it leaves the crop alone


# --- silhouettes -------------------------------------------------------------------------


def test_foreground_mask_fills_small_holes_and_drops_specks():
    image = np.full((64, 64, 3), 255, np.uint8)
    image[10:50, 10:40] = (30, 90, 200)
    image[28:31, 23:26] = 250  # a highlight inside the object: a small hole
    image[58:60, 58:60] = (0, 0, 0)  # a speck far away
    image[5:7, 5:60] = 247  # near-white haze: background
    mask = foreground_mask(image)

    expected = np.zeros((64, 64), bool)
    expected[10:50, 10:40] = True
    np.testing.assert_array_equal(mask, expected)
    assert not foreground_mask(np.full((8, 8, 3), 255, np.uint8)).any()
    with pytest.raises(ValueError, match="uint8"):
        foreground_mask(np.zeros((8, 8), np.uint8))


def test_foreground_mask_keeps_the_components_touching_the_seed():
    image = np.full((64, 64, 3), 255, np.uint8)
    image[5:25, 5:25] = 0  # bigger blob, not the object
    image[40:52, 40:52] = 100  # the object: touches the seed
    seed = np.zeros((64, 64), bool)
    seed[44:48, 44:48] = True
    mask = foreground_mask(image, seed_mask=seed)
    assert mask[45, 45] and not mask[10, 10]
    assert mask.sum() == 12 * 12


# --- FLUX.1-Kontext (tiny random model, real diffusers code path) ------------------------


def test_prompt_labels_are_sanitised():
    prompt = deocclusion_prompt("{red}\n mug\t\x00{label}  ")
    assert prompt == (
        "complete the red mug label in the image. remove the white occlusion. smooth the edge."
    )
    assert clean_label("") == clean_label(None) == clean_label("{}\n") == "object"
    long = clean_label("very " * 40 + "long")
    assert len(long) <= 64 and long.endswith("very") and "  " not in long
    with pytest.raises(ValueError, match="label"):
        FluxKontextDeoccluder(prompt_template="complete it")
    assert FluxKontextDeoccluder(device="cuda").dtype == "bfloat16"
    assert FluxKontextDeoccluder(device="cpu").dtype == "float32"
    import torch

    auto = FluxKontextDeoccluder(device="auto")  # `run --device auto` with FLUX
    assert auto.device == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        FluxKontextDeoccluder(device="gpu")
    with pytest.raises(ValueError, match="dtype"):
        FluxKontextDeoccluder(dtype="int8")


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    """A tiny random FLUX.1-Kontext pipeline on disk plus a random LoRA for it (safetensors)."""
    import torch
    from diffusers import FluxKontextPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from scenemaker.deocclusion.tiny import build_tiny_flux_kontext

    # tiny matrices: thread start-up dominates, and stalls when other jobs hold the cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("flux")
    pipe = build_tiny_flux_kontext(root / "model", seed=0)
    transformer = pipe.transformer
    config = LoraConfig(
        r=4, lora_alpha=4, init_lora_weights=False,  # random, non-zero B: the LoRA does something
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )  # fmt: skip
    transformer.add_adapter(config)
    # peft's random init is small next to the tiny model's weights: make its effect visible
    layers = {
        k: v * 20 if "lora_B" in k else v for k, v in get_peft_model_state_dict(transformer).items()
    }
    FluxKontextPipeline.save_lora_weights(root / "lora", transformer_lora_layers=layers)
    yield root / "model", root / "lora"
    torch.set_num_threads(threads)


def _flux(model, **kwargs):
    return FluxKontextDeoccluder(model=model, size=32, steps=2, max_sequence_length=32, **kwargs)


def test_flux_kontext_completes_a_crop(tiny_flux, occluded_disk):
    model, lora = tiny_flux
    image, disk, band = occluded_disk
    crop = make_crop(image, disk & ~band, "ball", size=48)  # resized to 32 for the model
    deoccluder = _flux(model, lora=lora)
    result = deoccluder.complete(crop)

    assert result.method == "flux-kontext" and result.crop is crop
    assert result.image.shape == (48, 48, 3) and result.image.dtype == np.uint8
    assert result.mask.shape == (48, 48) and result.mask.dtype == bool
    visible = crop.visible_mask
    assert np.all(result.mask[visible])
    np.testing.assert_array_equal(result.image[visible], crop.image[visible])
    assert np.all(result.image[~result.mask] == 255)
    again = deoccluder.complete(crop)  # same seed, same output
    np.testing.assert_array_equal(again.image, result.image)


def test_flux_lora_changes_the_output(tiny_flux, rng):
    model, lora = tiny_flux
    image = _textured_image(32, 32, rng)
    prompt = deocclusion_prompt("ball")
    plain = _flux(model).generate(image, prompt)
    with_lora = _flux(model, lora=lora).generate(image, prompt)
    as_file = _flux(model, lora=lora / LORA_WEIGHT_NAME).generate(image, prompt)
    scaled_off = _flux(model, lora=lora, lora_scale=0.0).generate(image, prompt)

    assert plain.shape == with_lora.shape == (32, 32, 3)
    assert np.abs(plain.astype(int) - with_lora).mean() > 1
    np.testing.assert_array_equal(as_file, with_lora)
    np.testing.assert_allclose(scaled_off, plain, atol=1)


def test_flux_missing_weights_name_the_model(tmp_path):
    with pytest.raises(MissingWeightsError, match="scenemaker-tests/no-such-kontext") as info:
        _flux("scenemaker-tests/no-such-kontext").load()
    assert "huggingface-cli download scenemaker-tests/no-such-kontext" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(MissingWeightsError, match="not found"):
        _flux(tmp_path / "absent").load()


def test_flux_lora_errors(tiny_flux, tmp_path):
    model, _ = tiny_flux
    pickle = tmp_path / "lora.bin"
    pickle.write_bytes(b"not loaded")
    with pytest.raises(InputError, match="safetensors"):
        _flux(model, lora=pickle).load()
    with pytest.raises(MissingWeightsError, match="LoRA"):
        _flux(model, lora=tmp_path / "no-lora").load()
