"""De-occlusion triplets: the record of one planned triplet, the mask-type mix, and the rule
that selects which candidates become triplets.

Mask types: ``scene`` (real occlusion: object views with visible fraction < 0.95) and, on
fully visible object views, the paper's synthetic ``cutout`` / ``border`` / ``brush`` masks
(``masks.py``), each removing 10-70% of the object's crop pixels.

Balancing rule: per mask type, candidates fall in occlusion bins [0, .2), [.2, .4), [.4, .6),
[.6, .8) (>= 0.8: skipped); each bin keeps at most ``balance_factor`` x the smallest non-empty
bin (random subset). Then the mix: the scarcest type (relative to its share) is taken whole
and the others are cut to their share, evenly over bins; types with no candidates leave the
mix (``mix_unavailable``). Deterministic for a seed, whatever the order of the candidates.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .flux import deocclusion_prompt
from .masks import SYNTHETIC_TYPES

SCHEMA = "scenemaker.deocclusion_triplets/1"
MASK_TYPES = ("scene", *SYNTHETIC_TYPES)
DEFAULT_MIX = {"scene": 0.4, "cutout": 0.2, "border": 0.2, "brush": 0.2}
BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8)
BIN_LABELS = tuple(
    f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(BIN_EDGES[:-1], BIN_EDGES[1:], strict=True)
)
FILES = ("input", "target", "visible", "amodal")


def normalise_mix(mix: dict | None) -> dict[str, float]:
    """Shares of the mask types, summing to 1 (missing types: 0)."""
    mix = DEFAULT_MIX if mix is None else mix
    if not isinstance(mix, dict) or not mix:
        raise ValueError(f"mix must be a non-empty dict of mask type -> share, got {mix!r}")
    unknown = sorted(set(mix) - set(MASK_TYPES))
    if unknown:
        raise ValueError(f"mix: unknown mask types {unknown}; expected some of {MASK_TYPES}")
    try:
        shares = {t: float(mix.get(t, 0.0)) for t in MASK_TYPES}
    except (TypeError, ValueError):
        raise ValueError(f"mix shares must be numbers, got {mix!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"mix shares must be finite, >= 0 and not all 0, got {mix!r}")
    total = sum(shares.values())
    return {t: round(v / total, 6) for t, v in shares.items()}


def parse_mix(text: str) -> dict[str, float]:
    """``"scene=0.4,cutout=0.2,border=0.2,brush=0.2"`` (or a JSON object) -> a mix dict."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return normalise_mix(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"--mix: not valid JSON ({exc})") from None
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--mix: expected TYPE=SHARE items, got {part!r}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--mix: share of {name.strip()!r} is not a number: {value!r}"
            ) from None
    return normalise_mix(mix)


@dataclass
class Triplet:
    """One planned triplet (a manifest record without its file names)."""

    scene: str  # unique key: "<dataset folder name>-<scene folder name>"
    scene_dir: str
    source_split: str
    view: int
    instance_id: int
    mask_type: str
    occlusion: float  # 1 - visible / amodal pixels in the crop
    label: str  # cleaned
    label_cleaned: bool
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """The crop square (x0, y0, x1, y1) in image pixels (``ObjectCrop.box``)."""

    @property
    def id(self) -> str:
        return f"{self.scene}-v{self.view:03d}-i{self.instance_id:03d}-{self.mask_type}"

    @property
    def bin(self) -> int:
        return min(int(self.occlusion / 0.2), len(BIN_LABELS) - 1)

    def record(self) -> dict:
        files = {k: f"triplets/{self.id}_{k}.png" for k in FILES}
        return {
            "id": self.id,
            "input": files["input"],
            "target": files["target"],
            "visible_mask": files["visible"],
            "amodal_mask": files["amodal"],
            "prompt": deocclusion_prompt(self.label),
            "label": self.label,
            "mask_type": self.mask_type,
            "occlusion": round(self.occlusion, 5),
            "box": [round(b, 4) for b in self.box],
            "scene": self.scene,
            "scene_dir": self.scene_dir,
            "view": self.view,
            "instance_id": self.instance_id,
            "source_split": self.source_split,
        }


def select_triplets(
    candidates: list[Triplet], mix: dict, balance_factor: float | None, seed: int
) -> tuple[list[Triplet], Counter, list[str]]:
    """Balance by occlusion bin per type, then apply the mix (module docstring).

    Returns (selected sorted by id, dropped counts {"balance", "mix"}, types missing from
    the mix for want of candidates)."""
    rng = np.random.default_rng([seed, 7])
    dropped = Counter()
    pools = {}
    for kind in MASK_TYPES:
        bins = [[] for _ in BIN_LABELS]
        for c in sorted((c for c in candidates if c.mask_type == kind), key=lambda c: c.id):
            bins[c.bin].append(c)
        for b in bins:
            rng.shuffle(b)
        sizes = [len(b) for b in bins if b]
        if balance_factor and sizes:
            cap = int(balance_factor * min(sizes))
            dropped["balance"] += sum(max(0, len(b) - cap) for b in bins)
            bins = [b[:cap] for b in bins]
        pools[kind] = bins
    available = {t: sum(map(len, pools[t])) for t in MASK_TYPES if mix[t] > 0}
    unavailable = [t for t, n in available.items() if n == 0]
    usable = {t: n for t, n in available.items() if n > 0}
    total_share = sum(mix[t] for t in usable)
    budget = min((n / (mix[t] / total_share) for t, n in usable.items()), default=0.0)
    selected = []
    for kind in MASK_TYPES:
        pool = pools[kind]
        share = mix[kind] / total_share if total_share > 0 else 0.0  # no candidates at all: 0
        wanted = min(usable.get(kind, 0), int(budget * share + 1e-6))
        dropped["mix"] += sum(map(len, pool)) - wanted
        order = rng.permutation(len(pool))
        taken = []
        for level in range(max(map(len, pool), default=0)):  # evenly over bins
            taken += [pool[b][level] for b in order if level < len(pool[b])]
        selected += taken[:wanted]
    return sorted(selected, key=lambda c: c.id), dropped, unavailable


__all__ = [
    "DEFAULT_MIX",
    "MASK_TYPES",
    "SCHEMA",
    "Triplet",
    "normalise_mix",
    "parse_mix",
    "select_triplets",
]
