"""Training batches of de-occlusion triplets: the triplets to train on (a folder or a dataset
object), and batches that are pure functions of (seed, step, position in the global batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .train_config import DeocclusionTrainConfig


def open_triplets(data, config: DeocclusionTrainConfig):
    """(train, val or None) from a triplet folder (``triplet_dataset.TripletDataset``, split by
    ``config.val_fraction``) or from a dataset object (``len`` + items as dicts)."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_dir():
            raise ValueError(
                f"{path}: triplet folder not found (make it with `scenemaker data deocclusion`)"
            )
        from .triplet_dataset import TripletDataset

        dataset = TripletDataset(path)
        if config.val_fraction > 0 and len(dataset) > 1:
            return dataset.split(config.val_fraction, config.seed)
        return dataset, None
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise ValueError(
            f"triplets must be a folder or a dataset with items, got {type(data).__name__}"
        )
    return data, None


def _square_rgb(item: dict, key: str, size: int) -> np.ndarray:
    from PIL import Image

    if key not in item:
        raise ValueError(f"triplet item has no {key!r} image")
    image = np.asarray(item[key])
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"triplet {key!r} must be (S, S, 3) uint8, got {image.shape} {image.dtype}"
        )
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"triplet {key!r} must be square, got {image.shape[:2]}")
    if image.shape[0] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    return image


def load_batch(dataset, indices, step: int, offset: int, config: DeocclusionTrainConfig):
    """(inputs, targets) (B, S, S, 3) uint8 and prompts; item k of the global batch is flipped
    by its own seeded coin (``offset``: this process's first position in the global batch)."""
    inputs, targets, prompts = [], [], []
    for k, index in enumerate(indices):
        item = dataset[int(index)]
        context = _square_rgb(item, "input", config.size)
        target = _square_rgb(item, "target", config.size)
        if config.hflip and np.random.default_rng([config.seed, step, offset + k]).random() < 0.5:
            context, target = context[:, ::-1], target[:, ::-1]
        inputs.append(context)
        targets.append(target)
        prompts.append(_prompt(item))
    return np.stack(inputs), np.stack(targets), prompts


def _prompt(item: dict) -> str:
    prompt = item.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"triplet item has no prompt string, got {prompt!r}")
    return prompt


def distinct_prompts(dataset) -> list[str]:
    """Every prompt of a dataset, once: from its manifest ``records`` (TripletDataset) when
    it has them, else read item by item."""
    records = getattr(dataset, "records", None)
    if records is not None:
        prompts = [_prompt(record) for record in records]
    else:
        prompts = [_prompt(dataset[i]) for i in range(len(dataset))]
    return sorted(set(prompts))
