"""Hugging Face-backed perception backends, run through their real from_pretrained paths.

Tiny random Grounding DINO / SAM / Depth Anything / MoGe models are built in code, saved to
a temporary folder and loaded back by the backends offline (HF_HUB_OFFLINE=1, conftest).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from scenemaker.errors import MissingDependencyError, MissingWeightsError
from scenemaker.hub import cpu_offload, load_pretrained, parse_dtype, resolve_device
from scenemaker.perception import Masks, PointMap
from scenemaker.perception.depth_models import (
    DepthAnythingDepth,
    DepthProDepth,
    MoGeDepth,
    depth_pro_postprocess,
    intrinsics_from_fov,
    moge_intrinsics_to_pixels,
)
from scenemaker.perception.grounded_sam import (
    DEFAULT_PROMPT,
    GroundedSAM,
    SamClicks,
    _class_token_spans,
    nms,
    normalize_prompt,
)

H, W = 128, 160  # Grounding DINO needs >= 128 px inputs
WORDS = ["chair", "table", "lamp", "sofa", "bed", "cup", "book", "vase"]


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def gd_dir(tmp_path_factory):
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        ResNetConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."])}
    vocab.update({w: len(vocab) + i for i, w in enumerate(WORDS)})
    tokenizer = BertTokenizer(vocab=vocab)  # vocab_file= is ignored in transformers 5
    backbone = ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16, 16, 16],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        use_pretrained_backbone=False,
        d_model=32,  # GroupNorm(32, d_model) inside
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=1,
        decoder_n_points=1,
        num_queries=12,
        max_text_len=32,
        disable_custom_kernels=True,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("grounding-dino")
    GroundingDinoForObjectDetection(config).save_pretrained(path)
    size = {"shortest_edge": H, "longest_edge": W}
    processor = GroundingDinoProcessor(GroundingDinoImageProcessorPil(size=size), tokenizer)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    import torch
    from transformers import (
        SamConfig,
        SamImageProcessorPil,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=16,
        output_channels=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=8,
        window_size=4,
        global_attn_indexes=[1],
        mlp_dim=32,
        num_pos_feats=8,
    )
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8)
    decoder = SamMaskDecoderConfig(
        hidden_size=16, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16
    )
    config = SamConfig(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam")
    SamModel(config).save_pretrained(path)
    image_processor = SamImageProcessorPil(
        size={"longest_edge": 64},
        pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16},
        mask_pad_size={"height": 16, "width": 16},
    )
    SamProcessor(image_processor).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def grounded(gd_dir, sam_dir):
    return GroundedSAM(
        model=gd_dir,
        sam_model=sam_dir,
        prompt="Chair, table. LAMP",
        box_threshold=0.05,
        text_threshold=0.0,
        max_objects=5,
        min_pixels=0,
    )


def _depth_anything_dir(root, kind: str):
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=56,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
        depth_estimation_type=kind,
        max_depth=20,
    )
    torch.manual_seed(0)
    path = root / kind
    DepthAnythingForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessorPil(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14
    ).save_pretrained(path)
    return path


# --- shared helpers -----------------------------------------------------------------------


def test_parse_dtype_and_device():
    import torch

    assert parse_dtype(None) is None
    assert parse_dtype("bfloat16") is torch.bfloat16
    assert parse_dtype("Float16") is torch.float16
    with pytest.raises(ValueError, match="dtype"):
        parse_dtype("float64")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_cpu_offload_moves_model_only_for_the_call():
    class Recorder:
        def __init__(self):
            self.moves = []

        def to(self, device):
            self.moves.append(str(device))
            return self

    model = Recorder()
    with cpu_offload(model, "cuda:0"):
        assert model.moves == ["cuda:0"]
    assert model.moves == ["cuda:0", "cpu"]
    with pytest.raises(RuntimeError), cpu_offload(model, "cuda:0"):
        raise RuntimeError("forward failed")
    assert model.moves[-1] == "cpu"  # back on the CPU even when the call fails
    with cpu_offload(model, "cpu"), cpu_offload(model, "cuda", enabled=False):
        pass
    assert len(model.moves) == 4


def test_missing_weights_offline_names_the_model(monkeypatch, tmp_path):
    from transformers import AutoModelForDepthEstimation

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_id = "scenemaker-test/no-such-model"
    for make in (
        lambda: GroundedSAM(model=model_id),
        lambda: SamClicks([[(1, 1)]], model=model_id),
        lambda: DepthAnythingDepth(model=model_id),
        lambda: MoGeDepth(model=model_id),
    ):
        with pytest.raises(MissingWeightsError) as info:
            make()
        message = str(info.value)
        assert "\n" not in message
        assert f"'{model_id}'" in message and "HF_HUB_OFFLINE=1" in message
        assert f"`hf download {model_id}`" in message
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_pretrained(AutoModelForDepthEstimation, tmp_path / "nowhere" / "model")
    with pytest.raises(MissingWeightsError, match="missing files"):
        load_pretrained(AutoModelForDepthEstimation, tmp_path)  # empty folder


def test_missing_weights_message_online(monkeypatch):
    from scenemaker import hub as _hf

    monkeypatch.setattr(_hf, "hub_offline", lambda: False)
    message = _hf.missing_weights_message("org/model", "404 Client Error\nmore detail")
    assert message.startswith("could not get weights for 'org/model' from the Hugging Face hub")
    assert "(404 Client Error)" in message and "\n" not in message


def test_backend_modules_import_light():
    code = (
        "import sys, scenemaker.perception.grounded_sam, scenemaker.perception.depth_models\n"
        "heavy = {'torch', 'transformers', 'moge', 'cv2'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Grounding DINO + SAM -------------------------------------------------------------------


def test_normalize_prompt():
    assert normalize_prompt("Chair, TABLE.lamp. chair") == (
        "chair. table. lamp.",
        ["chair", "table", "lamp"],
    )
    assert normalize_prompt("  teddy   Bear ") == ("teddy bear.", ["teddy bear"])
    text, classes = normalize_prompt(DEFAULT_PROMPT)
    assert text == DEFAULT_PROMPT and text.endswith(".") and len(classes) > 20
    with pytest.raises(ValueError, match="prompt"):
        normalize_prompt(" . , ")


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_nms_matches_greedy_reference(rng):
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 14], [20, 20, 30, 30]], float)
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    # IoU(1, 0) = 0.82 > 0.7: 0 goes; IoU(1, 2) = 0.64: 2 stays; 3 overlaps nothing
    assert nms(boxes, scores, 0.7).tolist() == [1, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    for _ in range(20):
        xy = rng.uniform(0, 50, (30, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (30, 2))], axis=1)
        scores = rng.permutation(30) / 30.0 + 0.01
        expected = []
        for i in np.argsort(-scores):
            if all(_iou(boxes[i], boxes[j]) <= 0.5 for j in expected):
                expected.append(i)
        assert nms(boxes, scores, 0.5).tolist() == expected


def test_grounded_sam_masks_labels_scores(grounded, image):
    masks = grounded.segment(image)
    assert isinstance(masks, Masks)
    assert masks.masks.shape[1:] == (H, W) and masks.masks.dtype == bool
    assert 1 <= len(masks) <= 5
    assert set(masks.labels) <= {"chair", "table", "lamp"}
    assert all(s > 0.05 for s in masks.scores)
    assert masks.scores == sorted(masks.scores, reverse=True)
    boxes, labels, scores = grounded.detect(image)
    assert labels == masks.labels and scores == masks.scores  # min_pixels=0 keeps every box
    assert np.all((boxes >= 0) & (boxes <= [W, H, W, H]))
    for i in range(len(boxes)):
        for j in range(i):
            assert _iou(boxes[i], boxes[j]) <= 0.7 + 1e-9
    other = grounded.segment(image, prompt="Sofa. bed")
    assert set(other.labels) <= {"sofa", "bed"} and len(other) >= 1


def test_prompt_token_spans_and_label_assignment(grounded, image, monkeypatch):
    import torch

    tokenizer = grounded.processor.tokenizer
    ids = tokenizer("chair. table. lamp.")["input_ids"]  # [CLS] chair . table . lamp . [SEP]
    assert _class_token_spans(tokenizer, ids, ["chair", "table", "lamp"]) == [[1], [3], [5]]
    assert _class_token_spans(tokenizer, ids[:4], ["chair", "table", "lamp"])[2] == []

    class Detector:  # scripted Grounding DINO output: (token, probability, box) per query
        config, dtype = grounded.detector.config, torch.float32

        def __call__(self, **inputs):
            queries = [
                (3, 0.9, [0.30, 0.50, 0.20, 0.40]),  # table
                (5, 0.6, [0.31, 0.50, 0.20, 0.40]),  # lamp on the same box: suppressed
                (1, 0.5, [0.75, 0.25, 0.10, 0.20]),  # chair elsewhere
                (0, 0.95, [0.50, 0.50, 0.50, 0.50]),  # only [CLS] fires: no object name
                (6, 0.2, [0.10, 0.10, 0.05, 0.05]),  # below box_threshold
            ]
            logits = torch.full((1, len(queries), 32), -torch.inf)
            logits[0, :, :8] = -9.0
            for q, (token, prob, _) in enumerate(queries):
                logits[0, q, token] = float(np.log(prob / (1 - prob)))
            boxes = torch.tensor([[box for _, _, box in queries]])
            return SimpleNamespace(logits=logits, pred_boxes=boxes)

    monkeypatch.setattr(grounded, "detector", Detector())
    monkeypatch.setattr(grounded, "box_threshold", 0.3)
    monkeypatch.setattr(grounded, "text_threshold", 0.25)
    boxes, labels, scores = grounded.detect(image, "chair. table. lamp.")
    assert labels == ["table", "chair"]
    np.testing.assert_allclose(scores, [0.9, 0.5], rtol=1e-5)
    np.testing.assert_allclose(boxes[0], [0.2 * W, 0.3 * H, 0.4 * W, 0.7 * H], rtol=1e-5)
    np.testing.assert_allclose(boxes[1], [0.7 * W, 0.15 * H, 0.8 * W, 0.35 * H], rtol=1e-5)
    masks = grounded.segment(image, "chair. table. lamp.")
    assert masks.labels == ["table", "chair"] and masks.masks.shape == (2, H, W)


def test_grounded_sam_empty_and_errors(grounded, image, monkeypatch):
    monkeypatch.setattr(grounded, "box_threshold", 1.01)
    empty = grounded.segment(image)
    assert len(empty) == 0 and empty.masks.shape == (0, H, W)
    monkeypatch.setattr(grounded, "box_threshold", 0.05)
    monkeypatch.setattr(grounded, "min_pixels", H * W + 1)  # every mask too small
    assert grounded.segment(image).masks.shape == (0, H, W)
    with pytest.raises(ValueError, match="prompt is .* tokens"):
        grounded.segment(image, prompt=". ".join(f"thing{i}" for i in range(20)))  # 42 tokens
    with pytest.raises(ValueError, match="image"):
        grounded.segment(image.astype(np.float32))


def test_sam_clicks(sam_dir, image):
    segmenter = SamClicks(
        [[(10, 10)], [(50, 40), (60.5, 60)]], labels=["cup", "book"], model=sam_dir
    )
    masks = segmenter.segment(image)
    assert masks.masks.shape == (2, H, W) and masks.masks.dtype == bool
    assert masks.labels == ["cup", "book"]
    assert all(isinstance(s, float) and np.isfinite(s) for s in masks.scores)
    again = segmenter.segment(image)
    assert np.array_equal(again.masks, masks.masks)
    assert SamClicks([[(0, 0)]], model=sam_dir).segment(image).labels == ["object"]
    with pytest.raises(ValueError, match=r"clicks\[1\] point \(160, 5\) is outside the 160x128"):
        SamClicks([[(1, 1)], [(5, 5), (160, 5)]], model=sam_dir).segment(image)
    with pytest.raises(ValueError, match=r"clicks\[0\]"):
        SamClicks([[]], model=sam_dir)
    with pytest.raises(ValueError, match="labels"):
        SamClicks([[(1, 1)]], labels=["a", "b"], model=sam_dir)


# --- depth ----------------------------------------------------------------------------------


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(W, H, 90.0)
    np.testing.assert_allclose(K, [[80, 0, 79.5], [0, 80, 63.5], [0, 0, 1]], atol=1e-9)
    with pytest.raises(ValueError, match="fov_x_deg"):
        intrinsics_from_fov(W, H, 180.0)


def test_depth_anything_metric(tmp_path, image):
    estimator = DepthAnythingDepth(model=_depth_anything_dir(tmp_path, "metric"), fov_x_deg=60.0)
    result = estimator.estimate(image)
    assert isinstance(result, PointMap) and result.depth.shape == (H, W)
    assert np.all(np.isfinite(result.depth))
    assert np.all((result.depth >= 0) & (result.depth <= 20.0))  # sigmoid head * max_depth
    f = W / 2 / np.tan(np.radians(30.0))
    np.testing.assert_allclose(result.K, [[f, 0, 79.5], [0, f, 63.5], [0, 0, 1]])
    K = np.array([[200.0, 0, 70], [0, 210, 60], [0, 0, 1]])
    given = estimator.estimate(image, K)
    np.testing.assert_array_equal(given.K, K)
    np.testing.assert_allclose(given.depth, result.depth)  # depth does not depend on K
    odd = np.random.default_rng(1).integers(0, 256, (37, 91, 3), dtype=np.uint8)
    assert estimator.estimate(odd).depth.shape == (37, 91)


def test_depth_anything_rejects_relative_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="metric checkpoint"):
        DepthAnythingDepth(model=_depth_anything_dir(tmp_path, "relative"))


def test_depth_pro_postprocess_fov_to_K():
    import torch

    canonical = torch.full((24, 24), 0.25)
    depth, K = depth_pro_postprocess(canonical, torch.tensor([90.0]), H, W)
    assert depth.shape == (H, W)
    np.testing.assert_allclose(K, intrinsics_from_fov(W, H, 90.0))  # f = W / 2 = 80 px
    np.testing.assert_allclose(depth, 80.0 / (W * 0.25), rtol=1e-5)  # f / (W * inverse) = 2 m
    K_given = np.array([[160.0, 0, 80], [0, 160, 64], [0, 0, 1]])
    depth, K = depth_pro_postprocess(canonical, torch.tensor([90.0]), H, W, K_given)
    np.testing.assert_array_equal(K, K_given)
    np.testing.assert_allclose(depth, 4.0, rtol=1e-5)  # twice the focal: twice the depth


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed"
)
def test_depth_pro_without_torchvision_says_so():
    with pytest.raises(MissingDependencyError, match="depth-pro needs torchvision"):
        DepthProDepth(model="apple/DepthPro-hf")


def test_moge_intrinsics_to_pixels():
    normalised = [[0.5, 0, 0.5], [0, 0.625, 0.5], [0, 0, 1]]
    K = moge_intrinsics_to_pixels(normalised, W, H)
    np.testing.assert_allclose(K, [[80, 0, 79.5], [0, 80, 63.5], [0, 0, 1]])


@pytest.fixture(scope="module")
def moge_dir(tmp_path_factory):
    import torch

    width = 32  # MoGe's res blocks use GroupNorm(channels // 32)
    head = dict(dim_in=[width] * 5, dim_res_blocks=[width] * 5, resamplers=["bilinear"] * 4)
    config = dict(
        encoder=dict(backbone="dinov2_vits14", intermediate_layers=4, dim_out=width),
        neck=dict(head, dim_in=[width + 2, 2, 2, 2, 2], dim_out=[None] * 5),
        points_head=dict(head, dim_out=[None] * 4 + [3]),
        mask_head=dict(head, dim_out=[None] * 4 + [1]),
        scale_head=dict(dims=[384, width, 1]),
        remap_output="exp",
        num_tokens_range=[16, 36],
    )
    # Only the scale head is stored (strict=False load): metric scale exp(log 2) = 2 exactly;
    # the rest keeps its random init, which needs no download (DINOv2 pretrained=False).
    state = {
        "scale_head.0.weight": torch.zeros(width, 384),
        "scale_head.0.bias": torch.zeros(width),
        "scale_head.2.weight": torch.zeros(1, width),
        "scale_head.2.bias": torch.full((1,), float(np.log(2.0))),
    }
    path = tmp_path_factory.mktemp("moge")
    torch.save({"model_config": config, "model": state}, path / "model.pt")
    return path


def test_moge_depth_and_intrinsics(moge_dir, image, tmp_path):
    estimator = MoGeDepth(model=moge_dir)  # a folder holding model.pt
    assert estimator.model.scale_head[-1].bias.item() == pytest.approx(np.log(2.0))  # loaded
    result = estimator.estimate(image)
    assert result.depth.shape == (H, W) and np.all(np.isfinite(result.depth))
    assert np.all(result.depth >= 0)
    assert result.K[0, 0] > 0 and result.K[1, 1] > 0
    assert result.K[0, 2] == pytest.approx((W - 1) / 2) and result.K[1, 2] == pytest.approx(
        (H - 1) / 2
    )
    K = intrinsics_from_fov(W, H, 55.0)
    given = estimator.estimate(image, K)
    np.testing.assert_array_equal(given.K, K)
    assert given.depth.shape == (H, W)
    with pytest.raises(MissingWeightsError, match="model.pt"):
        MoGeDepth(model=tmp_path)
