"""De-occlusion LoRA training on a tiny random FLUX.1-Kontext (CPU, real diffusers / peft code
path), image metrics against slow references, and the de-occlusion benchmark."""

import json

import numpy as np
import pytest

from scenemaker.deocclusion.classical import ClassicalDeoccluder, NoDeocclusion
from scenemaker.deocclusion.evaluate import (
    METRICS,
    OCCLUSION_BINS,
    REGIONS,
    evaluate_deocclusion,
    format_table,
    item_crop,
    item_label,
    occlusion_bin,
)
from scenemaker.deocclusion.flux import LORA_WEIGHT_NAME, FluxKontextDeoccluder, deocclusion_prompt
from scenemaker.deocclusion.image_metrics import ClipSimilarity, mask_iou, psnr, ssim, ssim_map
from scenemaker.deocclusion.train import train_deocclusion_lora
from scenemaker.deocclusion.train_checkpoints import LORA_STATE_FILE, STATE_FILE
from scenemaker.deocclusion.train_config import preset
from scenemaker.deocclusion.train_loss import sample_sigmas, shift_sigmas
from scenemaker.errors import MissingWeightsError

MASK_TYPES = ("scene", "cutout", "border", "brush")


def make_triplets(n: int, size: int = 32, seed: int = 0) -> list[dict]:
    """Random discs and boxes on white, part of each whitened out (a band, a corner, a
    pasted disc or a stroke), in the item format of ``deocclusion.data``."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[:size, :size]
    items = []
    for i in range(n):
        cx, cy = rng.uniform(0.4, 0.6, 2) * size
        radius = rng.uniform(0.2, 0.3) * size
        if i % 2:
            amodal = (np.abs(u - cx) < radius) & (np.abs(v - cy) < 0.7 * radius)
            label = "box"
        else:
            amodal = (u - cx) ** 2 + (v - cy) ** 2 <= radius**2
            label = "ball"
        target = np.full((size, size, 3), 255, np.uint8)
        target[amodal] = rng.integers(0, 200, 3)
        mask_type = MASK_TYPES[i % 4]
        start = int(rng.integers(size // 3, size // 2))
        width = int(rng.integers(3, size // 4))
        if mask_type == "scene":
            hidden = (u >= start) & (u < start + width)
        elif mask_type == "cutout":
            hidden = (u - start) ** 2 + (v - start) ** 2 <= width**2
        elif mask_type == "border":
            hidden = v >= start + width
        else:
            hidden = np.abs((u - v) - (start - size // 2)) < width / 2
        visible = amodal & ~hidden
        assert visible.any()
        occluded = target.copy()
        occluded[~visible] = 255
        items.append(
            {
                "input": occluded,
                "target": target,
                "visible_mask": visible,
                "amodal_mask": amodal,
                "prompt": deocclusion_prompt(label),
                "mask_type": mask_type,
                "occlusion": float(1 - visible.sum() / amodal.sum()),
            }
        )
    return items


@pytest.fixture(scope="module")
def tiny_kontext(tmp_path_factory):
    """A tiny random FLUX.1-Kontext pipeline saved to disk (loaded through from_pretrained)."""
    import torch

    from scenemaker.deocclusion.tiny import build_tiny_flux_kontext

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: thread start-up would dominate
    path = tmp_path_factory.mktemp("kontext") / "model"
    build_tiny_flux_kontext(path, seed=0)
    yield path
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def triplets():
    return make_triplets(6)


@pytest.fixture(scope="module")
def trained(tiny_kontext, triplets, tmp_path_factory):
    """An uninterrupted 4-step run of the tiny preset (batch 2, flips on, validation loss
    every 2 steps)."""
    out = tmp_path_factory.mktemp("lora") / "run"
    config = preset("tiny", batch_size=2)
    result = train_deocclusion_lora(
        triplets, out, config, pipeline=tiny_kontext, val_data=triplets[:3], progress=False
    )
    return out, config, result


def _log(run, key: str) -> list[float]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r[key] for r in records if key in r]


# --- training -------------------------------------------------------------------------------


def test_tiny_training_saves_a_lora_the_deoccluder_loads(tiny_kontext, trained, triplets):
    out, config, result = trained
    losses, val_losses = _log(out, "loss"), _log(out, "val_loss")
    assert len(losses) == config.max_steps and np.all(np.isfinite(losses))
    assert len(val_losses) == 2 and np.all(np.isfinite(val_losses))
    assert result["step"] == config.max_steps and result["loss"] == losses[-1]
    assert result["val_loss"] == val_losses[-1]
    assert result["lora"] == str(out / LORA_WEIGHT_NAME) and (out / LORA_WEIGHT_NAME).is_file()
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["pipeline"] == str(tiny_kontext) and saved["rank"] == config.rank

    image, prompt = triplets[0]["input"], triplets[0]["prompt"]
    kwargs = {"model": tiny_kontext, "size": 32, "steps": 2, "max_sequence_length": 32}
    with_lora = FluxKontextDeoccluder(lora=out, **kwargs)
    # rank 4, alpha 8: the scale travels with the weights (metadata), not assumed alpha = rank
    layer = with_lora.load().transformer.transformer_blocks[0].attn.to_q
    assert next(iter(layer.scaling.values())) == pytest.approx(config.lora_alpha / config.rank)
    edited = with_lora.generate(image, prompt)
    plain = FluxKontextDeoccluder(**kwargs).generate(image, prompt)
    assert edited.shape == plain.shape == (32, 32, 3)
    assert np.abs(edited.astype(int) - plain).mean() > 1  # the trained LoRA changes the output
    completed = with_lora.complete(item_crop(triplets[0]))
    assert completed.image.shape == (32, 32, 3) and completed.mask.shape == (32, 32)


def test_resume_continues_exactly(tiny_kontext, trained, triplets, tmp_path):
    import torch
    from safetensors.torch import load_file

    out, config, _ = trained
    run = tmp_path / "run"
    half = preset("tiny", batch_size=2, max_steps=2)
    kwargs = {"pipeline": tiny_kontext, "val_data": triplets[:3], "progress": False}
    train_deocclusion_lora(triplets, run, half, **kwargs)
    state = torch.load(run / "checkpoint" / STATE_FILE, weights_only=True)
    assert state["step"] == 2 and state["optimizer"]["state"]  # Adam moments saved
    train_deocclusion_lora(triplets, run, config, **kwargs)

    # same batches, noise and weights: bit for bit
    assert _log(run, "loss") == _log(out, "loss")
    assert _log(run, "val_loss") == _log(out, "val_loss")
    resumed, straight = (load_file(r / LORA_WEIGHT_NAME) for r in (run, out))
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
    lora_state = load_file(run / "checkpoint" / LORA_STATE_FILE)
    assert torch.load(run / "checkpoint" / STATE_FILE, weights_only=True)["step"] == 4
    assert all(v.dtype == torch.float32 for v in lora_state.values())


def test_training_refuses_other_settings_and_bad_input(tiny_kontext, trained, triplets, tmp_path):
    out, _, _ = trained
    with pytest.raises(ValueError, match="other settings.*rank"):
        train_deocclusion_lora(
            triplets,
            out,
            preset("tiny", batch_size=2, rank=8),
            pipeline=tiny_kontext,
            progress=False,
        )
    with pytest.raises(ValueError, match="size must be a multiple of 2"):
        train_deocclusion_lora(
            triplets,
            tmp_path / "odd",
            preset("tiny", size=33),
            pipeline=tiny_kontext,
            progress=False,
        )
    with pytest.raises(ValueError, match="setting rank=0"):
        train_deocclusion_lora(triplets, tmp_path / "r0", preset("tiny", rank=0))
    with pytest.raises(ValueError, match="unknown de-occlusion training preset"):
        preset("huge")
    with pytest.raises(ValueError, match="triplet folder not found"):
        train_deocclusion_lora(tmp_path / "absent", tmp_path / "x", preset("tiny"))
    bad = [{**triplets[0], "target": triplets[0]["target"][..., 0]}]
    with pytest.raises(ValueError, match="'target' must be"):
        train_deocclusion_lora(bad, tmp_path / "bad", preset("tiny"), pipeline=tiny_kontext)
    with pytest.raises(MissingWeightsError, match="not found"):
        train_deocclusion_lora(triplets, tmp_path / "y", preset("tiny"), pipeline=tmp_path / "no")


def test_sigmas_follow_the_inference_shift():
    import torch

    config = preset("tiny")
    dynamic = {
        "use_dynamic_shifting": True,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "base_shift": 0.5,
        "max_shift": 1.15,
    }
    grid = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    # FLUX at 512 px (1,024 tokens): mu = 0.5 + 768 * 0.65 / 3840 = 0.63
    mu = 0.5 + 768 * 0.65 / 3840
    expected = np.exp(mu) / (np.exp(mu) + (1 / grid.numpy() - 1))
    np.testing.assert_allclose(shift_sigmas(grid, 1024, dynamic).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(shift_sigmas(grid, 256, {"shift": 1.0}).numpy(), grid.numpy())
    first = sample_sigmas(64, config, 256, dynamic, torch.Generator().manual_seed(3))
    again = sample_sigmas(64, config, 256, dynamic, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and bool(((first > 0) & (first < 1)).all())


# --- image metrics --------------------------------------------------------------------------


def _slow_ssim_map(a, b):
    """SSIM by explicit weighted sums over each pixel's 11 x 11 window (symmetric padding)."""
    a, b = np.atleast_3d(a.astype(np.float64)), np.atleast_3d(b.astype(np.float64))
    offsets = np.arange(-5, 6)
    weights = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(weights, weights) / np.outer(weights, weights).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    height, width, channels = a.shape
    out = np.zeros((height, width, channels))
    for c in range(channels):
        pa, pb = np.pad(a[..., c], 5, mode="symmetric"), np.pad(b[..., c], 5, mode="symmetric")
        for y in range(height):
            for x in range(width):
                wa, wb = pa[y : y + 11, x : x + 11], pb[y : y + 11, x : x + 11]
                mx, my = (window * wa).sum(), (window * wb).sum()
                vx = (window * (wa - mx) ** 2).sum()
                vy = (window * (wb - my) ** 2).sum()
                cov = (window * (wa - mx) * (wb - my)).sum()
                out[y, x, c] = ((2 * mx * my + c1) * (2 * cov + c2)) / (
                    (mx**2 + my**2 + c1) * (vx + vy + c2)
                )
    return out.mean(axis=2)


def test_ssim_matches_a_slow_reference(rng):
    a = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    reference = _slow_ssim_map(a, b)
    np.testing.assert_allclose(ssim_map(a, b), reference, rtol=1e-9, atol=1e-12)
    assert ssim(a, b) == pytest.approx(reference.mean(), rel=1e-9)
    mask = np.zeros((14, 17), bool)
    mask[3:9, 4:15] = True
    assert ssim(a, b, mask) == pytest.approx(reference[mask].mean(), rel=1e-9)
    gray = a[..., 0]
    np.testing.assert_allclose(
        ssim_map(gray, b[..., 0]), _slow_ssim_map(gray, b[..., 0]), rtol=1e-9, atol=1e-12
    )
    assert ssim(a, a) == pytest.approx(1.0) and 0 < ssim(a, b) < 1
    assert np.isnan(ssim(a, b, np.zeros((14, 17), bool)))
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, b[:10])


def test_psnr_known_values_and_masks(rng):
    image = rng.integers(20, 236, (16, 16, 3), dtype=np.uint8)
    assert psnr(image, image) == float("inf")
    signs = np.where(np.indices((16, 16)).sum(0) % 2 == 0, 1, -1)[..., None]
    noisy = (image.astype(int) + 10 * signs).astype(np.uint8)  # |error| = 10 everywhere
    assert psnr(image, noisy) == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-12)
    mask = np.zeros((16, 16), bool)
    mask[:4] = True
    partly = image.copy()
    partly[~mask] = 0  # errors outside the mask do not count
    partly[mask] = noisy[mask]
    assert psnr(image, partly, mask) == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-12)
    assert np.isnan(psnr(image, partly, np.zeros((16, 16), bool)))
    with pytest.raises(ValueError, match="mask has shape"):
        psnr(image, partly, mask[:3])


def test_mask_iou():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="same shape"):
        mask_iou(a, b[:2])


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    path = tmp_path_factory.mktemp("clip") / "model"
    CLIPVisionModelWithProjection(config).save_pretrained(path)
    return path


def test_clip_similarity_from_a_local_model(tiny_clip, triplets, tmp_path):
    clip = ClipSimilarity(tiny_clip)
    target, occluded = triplets[0]["target"], triplets[0]["input"]
    assert clip.similarity(target, target) == pytest.approx(1.0, abs=1e-5)
    assert clip.similarity(target, occluded) < 1 - 1e-6
    assert clip.embed([target, occluded]).shape == (2, 16)
    with pytest.raises(MissingWeightsError, match="huggingface-cli download"):
        ClipSimilarity("scenemaker-tests/no-such-clip").load()


# --- evaluation -----------------------------------------------------------------------------


def test_occlusion_bins_and_labels():
    assert occlusion_bin(0.0) == occlusion_bin(0.19) == "[0.0, 0.2)"
    assert occlusion_bin(0.2) == "[0.2, 0.4)" and occlusion_bin(0.59) == "[0.4, 0.6)"
    assert occlusion_bin(0.6) == occlusion_bin(0.8) == "[0.6, 0.8]"
    assert occlusion_bin(0.81) == "(0.8, 1.0]"
    with pytest.raises(ValueError, match="occlusion"):
        occlusion_bin(1.5)
    assert item_label({"prompt": deocclusion_prompt("red mug")}) == "red mug"
    assert item_label({"prompt": "something else", "label": "cup"}) == "cup"
    assert item_label({"prompt": "something else"}) == "object"


def test_evaluate_none_and_classical(tiny_clip):
    items = make_triplets(8, size=48, seed=1)
    methods = {"none": NoDeocclusion(), "classical": ClassicalDeoccluder()}
    results = evaluate_deocclusion(items, methods, max_items=7, clip=tiny_clip)

    assert results["items"] == 7 and results["regions"] == REGIONS
    assert "not available" in results["notes"]["lpips"]
    for name in methods:
        method = results["methods"][name]
        assert set(method["overall"]) == {"items", *METRICS}
        assert method["overall"]["items"] == 7 and len(method["items"]) == 7
        assert set(method["by_mask_type"]) == set(MASK_TYPES)
        assert sum(g["items"] for g in method["by_mask_type"].values()) == 7
        assert sum(g["items"] for g in method["by_occlusion"].values()) == 7
        bins = list(method["by_occlusion"])
        assert bins == [b for b in OCCLUSION_BINS if b in bins] and len(bins) >= 2
        assert 0 < method["overall"]["clip"] <= 1 and method["overall"]["seconds"] >= 0
    none = results["methods"]["none"]
    # the pass-through's silhouette is the visible mask: IoU = visible / amodal area
    expected_iou = np.mean([it["visible_mask"].sum() / it["amodal_mask"].sum() for it in items[:7]])
    assert none["overall"]["mask_iou"] == pytest.approx(expected_iou)
    assert none["overall"]["psnr"] == pytest.approx(
        np.mean([psnr(it["input"], it["target"]) for it in items[:7]])
    )
    # filling the hidden part helps the silhouette of these convex shapes
    assert results["methods"]["classical"]["overall"]["mask_iou"] > none["overall"]["mask_iou"]
    assert results["methods"]["classical"]["overall"]["psnr"] > none["overall"]["psnr"]

    table = format_table(results)
    assert "### Overall" in table and "### By mask type" in table and "| classical | 7 |" in table
    assert "white background included" in table and "LPIPS: not available" in table
    assert json.loads(json.dumps(results, allow_nan=False))["items"] == 7  # strict JSON


def test_evaluate_identical_output_and_errors():
    items = make_triplets(4, seed=2)
    whole = items[0]["target"]  # an unoccluded item: nothing hidden, no hidden-region value
    items.append(
        {
            **items[0],
            "input": whole.copy(),
            "visible_mask": items[0]["amodal_mask"],
            "occlusion": 0.0,
        }
    )

    class Oracle:
        name = "oracle"

        def __init__(self, items):
            self.by_input = {it["input"].tobytes(): it for it in items}

        def complete(self, crop):
            from scenemaker.deocclusion.base import AmodalCrop

            item = self.by_input[crop.image.tobytes()]
            return AmodalCrop(item["target"].copy(), item["amodal_mask"].copy(), crop, "oracle")

    results = evaluate_deocclusion(items, {"oracle": Oracle(items)}, clip=None)
    overall = results["methods"]["oracle"]["overall"]
    assert overall["psnr"] == 100.0 and overall["ssim"] == pytest.approx(1.0)
    assert overall["mask_iou"] == 1.0 and overall["clip"] is None
    assert overall["psnr_hidden"] == 100.0 and overall["ssim_hidden"] == pytest.approx(1.0)
    rows = results["methods"]["oracle"]["items"]
    assert rows[-1]["psnr_hidden"] is None and rows[-1]["ssim_hidden"] is None
    assert rows[-1]["psnr"] == 100.0
    assert "no CLIP model" in results["notes"]["clip"]["note"]
    missing = evaluate_deocclusion(
        items[:1], {"none": NoDeocclusion()}, clip="scenemaker-tests/no-such-clip"
    )
    assert missing["notes"]["clip"]["note"].startswith("not available")
    with pytest.raises(ValueError, match="methods is empty"):
        evaluate_deocclusion(items, {})
    with pytest.raises(ValueError, match="no triplet items"):
        evaluate_deocclusion([], {"none": NoDeocclusion()}, clip=None)
