"""Segmenters backed by Hugging Face models: Grounding DINO + SAM from text, SAM from clicks.

``GroundedSAM``: Grounding DINO (open-vocabulary detector) finds boxes for the object names
of a text prompt, class-agnostic non-maximum suppression removes duplicates, and SAM turns
each box into a mask. ``SamClicks``: SAM from positive point clicks, one list per object.
Both load through transformers (``from_pretrained``: a hub id or a local folder).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..hub import (
    as_rgb,
    cpu_offload,
    load_pretrained,
    parse_dtype,
    place,
    resolve_device,
    to_device,
)
from .base import Masks

DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-tiny"  # Apache-2.0
DEFAULT_SAM = "facebook/sam-vit-base"  # Apache-2.0

# Everyday indoor objects; short enough (< 256 BERT tokens) for Grounding DINO's text encoder.
DEFAULT_CLASSES = (
    "chair", "table", "sofa", "bed", "lamp", "plant", "vase", "bottle", "cup", "bowl", "book",
    "box", "bag", "shoe", "toy", "pillow", "cabinet", "shelf", "desk", "monitor", "laptop",
    "keyboard", "mug", "clock", "picture frame", "basket", "stool", "bench", "television",
    "plate", "teddy bear", "backpack", "jar", "can", "remote control", "speaker", "bucket",
)  # fmt: skip
DEFAULT_PROMPT = ". ".join(DEFAULT_CLASSES) + "."


def normalize_prompt(prompt: str) -> tuple[str, list[str]]:
    """``"Chair, TABLE.lamp"`` -> (``"chair. table. lamp."``, ``["chair", "table", "lamp"]``).

    Grounding DINO expects lower-case object names separated by ". " and ending with ".".
    Names are split on "." and ","; duplicates are dropped (first one kept).
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string of object names, got {type(prompt).__name__}")
    classes: list[str] = []
    for part in prompt.replace(",", ".").split("."):
        name = " ".join(part.lower().split())
        if name and name not in classes:
            classes.append(name)
    if not classes:
        raise ValueError(
            f"prompt must name at least one object, e.g. 'chair. table.', got {prompt!r}"
        )
    return ". ".join(classes) + ".", classes


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.7) -> np.ndarray:
    """Class-agnostic non-maximum suppression of (N, 4) xyxy boxes.

    A box whose IoU with a higher-scored kept box exceeds ``iou_threshold`` is dropped.
    Returns the indices of the kept boxes, highest score first (OpenCV's NMSBoxes, which needs
    no torchvision).
    """
    import cv2

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes for {len(scores)} scores")
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    # NMSBoxes only ranks by score but drops scores <= its threshold (which must be >= 0):
    # shift them above zero so that every box takes part
    ranked = scores - scores.min() + 1.0
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), ranked.tolist(), 0.0, float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def _class_token_spans(tokenizer, input_ids: Sequence[int], classes: list[str]) -> list[list[int]]:
    """Positions of each class name's tokens inside the tokenized prompt (empty if cut off)."""
    ids = list(input_ids)
    spans, cursor = [], 0
    for name in classes:
        sub = tokenizer(name, add_special_tokens=False)["input_ids"]
        found = next(
            (s for s in range(cursor, len(ids) - len(sub) + 1) if ids[s : s + len(sub)] == sub),
            None,
        )
        if found is None or not sub:
            spans.append([])
            continue
        spans.append(list(range(found, found + len(sub))))
        cursor = found + len(sub)
    return spans


class _SamRunner:
    """SAM (transformers ``SamModel`` + ``SamProcessor``): masks from boxes or points."""

    def __init__(self, model: str, device: str, dtype, offload: bool):
        from transformers import SamModel, SamProcessor

        self.model_id = str(model)
        self.device, self.offload = device, offload
        self.processor = load_pretrained(SamProcessor, model)
        self.model = place(load_pretrained(SamModel, model), device, dtype, offload)

    def _run(self, image: np.ndarray, multimask: bool, **prompts) -> tuple[np.ndarray, np.ndarray]:
        import torch

        inputs = self.processor(images=image, return_tensors="pt", **prompts)
        sizes = (inputs.pop("original_sizes"), inputs.pop("reshaped_input_sizes"))
        with torch.inference_mode(), cpu_offload(self.model, self.device, self.offload):
            out = self.model(
                **to_device(inputs, self.device, self.model.dtype), multimask_output=multimask
            )
        pred_iou = out.iou_scores[0].float().cpu()  # (N, M)
        masks = self.processor.post_process_masks(
            out.pred_masks.float().cpu(), *sizes, binarize=True
        )[0]  # (N, M, H, W) bool
        best = pred_iou.argmax(dim=1)
        index = torch.arange(len(best))
        return masks[index, best].numpy().astype(bool), pred_iou[index, best].numpy()

    def from_boxes(self, image: np.ndarray, boxes: np.ndarray):
        """(N, 4) xyxy pixel boxes -> (N, H, W) bool masks, (N,) predicted IoU."""
        return self._run(image, True, input_boxes=[np.asarray(boxes, float).tolist()])

    def from_points(self, image: np.ndarray, clicks: list[np.ndarray]):
        """Positive clicks, one (P_i, 2) xy array per object -> masks, predicted IoU."""
        most = max(len(c) for c in clicks)
        # -10 marks padding: SAM's prompt encoder gives those points a zero embedding
        points = [np.pad(c, ((0, most - len(c)), (0, 0))).tolist() for c in clicks]
        labels = [[1] * len(c) + [-10] * (most - len(c)) for c in clicks]
        # several clicks on one object are unambiguous: one mask; a single click: best of three
        return self._run(image, most == 1, input_points=[points], input_labels=[labels])


class GroundedSAM:
    """Open-vocabulary instance masks: Grounding DINO boxes from a text prompt, SAM masks.

    ``prompt``: object names separated by "." (lower-cased; default: a list of everyday
    objects, ``DEFAULT_PROMPT``). A detection is kept when its best token probability exceeds
    ``box_threshold`` and the best-matching object name's probability exceeds
    ``text_threshold``; its label is that name. Duplicates across labels are suppressed (IoU
    above ``nms_iou`` keeps the higher score), at most ``max_objects`` are kept, and masks
    smaller than ``min_pixels`` are dropped. Returns masks sorted by detection score; an image
    with no detection gives ``Masks.empty``. Licences: Grounding DINO and SAM weights Apache-2.0.
    """

    name = "grounded-sam"

    def __init__(
        self,
        model: str = DEFAULT_DETECTOR,
        sam_model: str = DEFAULT_SAM,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        prompt: str = DEFAULT_PROMPT,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        nms_iou: float = 0.7,
        max_objects: int = 20,
        min_pixels: int = 100,
    ):
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        if max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {max_objects}")
        if min_pixels < 0:
            raise ValueError(f"min_pixels must be >= 0, got {min_pixels}")
        if not 0.0 <= nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in [0, 1], got {nms_iou}")
        self.prompt = normalize_prompt(prompt)[0]
        self.box_threshold, self.text_threshold = float(box_threshold), float(text_threshold)
        self.nms_iou, self.max_objects, self.min_pixels = float(nms_iou), max_objects, min_pixels
        self.device, self.cpu_offload = resolve_device(device), bool(cpu_offload)
        torch_dtype = parse_dtype(dtype)
        self.model_id, self.sam_model_id = str(model), str(sam_model)
        self.processor = load_pretrained(AutoProcessor, model)
        detector = load_pretrained(AutoModelForZeroShotObjectDetection, model)
        self.detector = place(detector, self.device, torch_dtype, self.cpu_offload)
        self.sam = _SamRunner(sam_model, self.device, torch_dtype, self.cpu_offload)

    def detect(self, image: np.ndarray, prompt: str | None = None):
        """Boxes (N, 4) xyxy pixels, labels, scores: thresholded, NMS'd, best first."""
        import torch

        image = as_rgb(image)
        height, width = image.shape[:2]
        text, classes = normalize_prompt(prompt if prompt is not None else self.prompt)
        inputs = self.processor(images=image, text=text, return_tensors="pt")
        max_len = self.detector.config.max_text_len
        if inputs["input_ids"].shape[1] > max_len:
            raise ValueError(
                f"prompt is {inputs['input_ids'].shape[1]} tokens long but the detector reads "
                f"at most {max_len}: name fewer objects"
            )
        with torch.inference_mode(), cpu_offload(self.detector, self.device, self.cpu_offload):
            out = self.detector(**to_device(inputs, self.device, self.detector.dtype))
        token_probs = out.logits[0].float().sigmoid().cpu()  # (Q, max_text_len); pads are 0
        spans = _class_token_spans(self.processor.tokenizer, inputs["input_ids"][0], classes)
        class_probs = torch.stack(
            [token_probs[:, s].amax(dim=1) if s else torch.zeros(len(token_probs)) for s in spans],
            dim=1,
        )  # (Q, C)
        best_prob, best_class = class_probs.max(dim=1)
        scores = token_probs.amax(dim=1)
        keep = (scores > self.box_threshold) & (best_prob > self.text_threshold)
        if not bool(keep.any()):
            return np.zeros((0, 4)), [], []
        cx, cy, w, h = out.pred_boxes[0].float().cpu()[keep].unbind(-1)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        boxes = (boxes * torch.tensor([width, height, width, height])).numpy().astype(np.float64)
        boxes = np.clip(boxes, 0.0, [width, height, width, height])
        scores, labels = scores[keep].numpy(), best_class[keep].numpy()
        order = nms(boxes, scores, self.nms_iou)[: self.max_objects]
        return boxes[order], [classes[i] for i in labels[order]], [float(s) for s in scores[order]]

    def segment(self, image: np.ndarray, prompt: str | None = None) -> Masks:
        """Visible masks of the objects named in ``prompt`` (default: the constructor's)."""
        image = as_rgb(image)
        height, width = image.shape[:2]
        boxes, labels, scores = self.detect(image, prompt)
        if len(boxes) == 0:
            return Masks.empty(height, width)
        masks, _ = self.sam.from_boxes(image, boxes)
        big = masks.reshape(len(masks), -1).sum(axis=1) >= max(self.min_pixels, 1)
        if not big.any():
            return Masks.empty(height, width)
        keep = np.flatnonzero(big)
        return Masks(masks[keep], [labels[i] for i in keep], [scores[i] for i in keep])


class SamClicks:
    """Masks from positive point clicks: ``clicks[i]`` lists (x, y) pixels on object i.

    One mask per object, in the order given, whatever its size (the user asked for it).
    With a single click SAM's three candidate masks are ranked by its predicted IoU; with
    several clicks SAM predicts one mask. ``labels`` name the objects ("object" when omitted);
    scores are SAM's predicted IoU. The ``prompt`` of ``segment`` is ignored: the clicks are
    the prompt. Licence: SAM weights Apache-2.0.
    """

    name = "sam-clicks"

    def __init__(
        self,
        clicks: Sequence[Sequence[tuple[float, float]]],
        labels: Sequence[str] | None = None,
        model: str = DEFAULT_SAM,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
    ):
        self.clicks = self._check_clicks(clicks)
        if labels is None:
            labels = ["object"] * len(self.clicks)
        labels = [str(label) for label in labels]
        if len(labels) != len(self.clicks):
            raise ValueError(
                f"labels has {len(labels)} names for {len(self.clicks)} clicked objects"
            )
        self.labels = labels
        self.device, self.cpu_offload = resolve_device(device), bool(cpu_offload)
        self.model_id = str(model)
        self.sam = _SamRunner(model, self.device, parse_dtype(dtype), self.cpu_offload)

    @staticmethod
    def _check_clicks(clicks) -> list[np.ndarray]:
        if isinstance(clicks, str | bytes) or not isinstance(clicks, Sequence) or not clicks:
            raise ValueError("clicks must be a non-empty list of objects, each a list of (x, y)")
        checked = []
        for i, points in enumerate(clicks):
            try:
                arr = np.asarray(points, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.zeros((0, 3))
            if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
                raise ValueError(f"clicks[{i}] must be a non-empty list of (x, y) pixel pairs")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"clicks[{i}] contains NaN or infinite coordinates")
            checked.append(arr)
        return checked

    def segment(self, image: np.ndarray, prompt: str | None = None) -> Masks:
        image = as_rgb(image)
        height, width = image.shape[:2]
        for i, points in enumerate(self.clicks):
            outside = (points[:, 0] < 0) | (points[:, 0] >= width)
            outside |= (points[:, 1] < 0) | (points[:, 1] >= height)
            if outside.any():
                x, y = points[np.argmax(outside)]
                raise ValueError(
                    f"clicks[{i}] point ({x:g}, {y:g}) is outside the {width}x{height} image"
                )
        masks, pred_iou = self.sam.from_points(image, self.clicks)
        if (masks.reshape(len(masks), -1).sum(axis=1) == 0).any():
            warnings.warn("SAM returned an empty mask for a clicked object", stacklevel=2)
        return Masks(masks, list(self.labels), [float(s) for s in pred_iou])
