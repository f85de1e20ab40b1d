"""What the render-and-compare search is told (its settings, chosen on validation scenes) and
what it reports per object."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field

import numpy as np

from ..scene import Pose
from .scoring import ScoreSettings


@dataclass
class RenderCompareSettings:
    """Search settings; the defaults were chosen on validation scenes (benchmarks/)."""

    turns: int = 12
    """Headings tried about each pool pose's up axis (30 degree steps)."""
    faces: bool = True
    """Also lay each pool pose on the other five faces of its box."""
    dedupe_deg: float = 5.0
    """Rotation hypotheses closer than this to an earlier one are dropped."""
    coarse_tile: int = 40
    """Crop resolution (px, longer side) of the rotation stage."""
    tile: int = 64
    """Crop resolution of the size and local stages."""
    keep: int = 10
    """Distinct rotations carried from the rotation stage into the size stage."""
    sizes: tuple[float, ...] = (0.65, 0.8, 0.9, 1.0, 1.12, 1.3, 1.5)
    """Size factors tried for each rotation carried into the size stage (the pose model's
    size is often off by 10-20 %, more for occluded objects)."""
    stretch_sizes: tuple[float, ...] | None = (0.75, 0.9, 1.0, 1.12, 1.3)
    """With ``stretch`` (a mesh that is not the object's own), these factors instead, in both
    searches: a wider ladder lets a wrong shape grow or shrink to fit (validation retrieval
    pipeline IoU-B 0.647 with the wider ones, 0.675 with these; None: ``sizes``)."""
    stretch_box_weight: float | None = 0.5
    """With ``stretch``, the score's ``box_weight`` (how far the rendered silhouette's ends
    miss the visible mask's, refine/scoring.py) is this instead (None: the score's own): a
    wrong shape's thin parts otherwise stick out or fall short at little cost, and its box
    with them. Validation (another instance's mesh, 16 procedural scenes): IoU-B 0.580 without,
    0.595 / 0.604 / 0.570 at 0.2 / 0.5 / 1; with the objects' own meshes 0.5 lost 0.007
    (pybullet 0.956 to 0.936), so it is off there."""
    rotation_sizes: tuple[float, ...] = (1.0,)
    """Factors of the first size at which each rotation is placed and scored in the rotation
    stage; with more than one, the size stage starts from each rotation's best (the third
    search's, ``hidden_sizes``)."""
    size_icp: int = 2
    """ICP rounds for every size hypothesis before it is scored."""
    local: int = 4
    """Hypotheses refined by ICP and the local search."""
    steps: int = 10
    perturbations: int = 16
    rotation_step: tuple[float, float] = (8.0, 1.0)
    """Perturbation standard deviation, degrees, first -> last round."""
    translation_step: tuple[float, float] = (0.05, 0.005)
    """Share of the object's size, first -> last round."""
    size_step: tuple[float, float] = (0.08, 0.01)
    """Standard deviation of log size, first -> last round."""
    local_repeat: bool = True
    """A hypothesis whose last local round improved also tries that step again, once and
    twice over (refine/local_search.py). Validation IoU-B 0.945 / 0.950 / 0.939 vs 0.938 /
    0.950 / 0.939 without (benchmarks/)."""
    icp_iterations: int = 8
    coarse_icp: int = 2
    """ICP rounds for every rotation hypothesis before it is scored (0: none). 2 rather than
    3 (with ``place_rounds`` 2): validation IoU-B 0.942 vs 0.945, 14 % less time."""
    plane_up: str = "both"
    """Where a support plane was found, tilt each pool pose so its up axis is the plane's
    normal: "only" (tilted poses replace the pool's), "both", or "none"."""
    consistency: bool = False
    """Afterwards separate interpenetrating objects along their viewing rays where the image
    allows (refine/consistency.py); off: it did not raise validation IoU-B (benchmarks/)."""
    contact_samples: int = 128
    """Surface samples per candidate for the support-plane terms."""
    support_plane: bool = True
    """Estimate the floor / table plane from the depth image's background and use it."""
    icp_points: int = 96
    coarse_icp_points: int = 48
    """Rendered and observed points per candidate in each ICP round."""
    place_rounds: int = 2
    """Rounds of centring each candidate's rendered surface on the observed points."""
    place_tol: float = 0.1
    """A candidate takes another centring round while its last step was longer than this
    share of its size."""
    place_visible: bool = False
    """Centre only the rendered pixels the camera would see (not those behind another
    object's or the floor's observed surface)."""
    size_floor: float = 0.7
    """Each rotation's first size is at least this share of the pool's median size (and at
    least what covers the observed points' extent)."""
    max_faces: int = 3000
    """Meshes are decimated to this many faces for scoring (outputs keep the full mesh)."""
    coarse_faces: int = 800
    """Faces of the (further decimated) mesh of the rotation stage."""
    dense_iterations: int = 6
    """Rounds of dense point-to-plane alignment (every pixel of the crop) of the refined
    hypotheses, before and after the local search (0: none)."""
    dense_scale: bool = True
    """Let the dense alignment change the size too."""
    precise_tile: int = 192
    """After the search, the chosen pose is aligned densely once more at a crop of up to this
    many px (longer side; at most one sample per image pixel) and kept where it scores better
    there (refine/alignment.py ``polish``; 0: off; not for a stretched mesh). The searches'
    64 px crops sample a large object every few pixels, and its sub-percent errors move a
    scene's normalised boxes. Validation IoU-B (procedural / pybullet / any face) first sets
    0.967 / 0.964 / 0.913 -> 0.980 / 0.967 / 0.925 (128 px: 0.978 / 0.966 / 0.924; 256 px:
    0.980 / 0.967 / 0.926), seed-1 sets 0.941 / 0.956 / 0.909 -> 0.955 / 0.960 / 0.926,
    held-out 0.965 / 0.955 / 0.840 -> 0.972 / 0.962 / 0.867 (benchmarks/)."""
    precise_iterations: int = 8
    """Rounds of that final dense alignment."""
    min_points: int = 8
    """Objects with fewer observed points keep their given pose."""
    distinct_deg: float = 20.0
    pool_exit_score: float | None = 0.3
    """Adaptive rotation stage: first only the pool's own rotations (each turned about its up
    axis with ``pool_exit_turns``, but on no other face) go through it; only when none of
    them scores below this are the other rotations (other faces) tried too (None: all are
    always tried). Chosen on validation: 0.3 kept IoU-B and cut renders by a third; 0.7 lost
    0.1 IoU-B on the any-face scenes (benchmarks/)."""
    pool_exit_turns: bool = True
    """That first try also turns the pool's rotations about their up axes (off: the pool's
    rotations only; fewer objects then exit)."""
    local_margin: float | None = 0.1
    """Adaptive local search: from its halfway round on, hypotheses scoring more than this
    above the object's best are no longer searched (they keep their pose; None: all are
    searched every round). It did not change validation IoU-B."""
    early_exit_score: float | None = None
    """Adaptive local stage: when the size stage's best score is below this (and beats the
    next distinct rotation by ``early_exit_margin``), only the best ``early_exit_local``
    hypotheses go through ICP and the local search, for ``early_exit_steps`` rounds (None:
    never). Off: 0.1 with one hypothesis lost 0.02 IoU-B on the any-face validation scenes
    (the size stage's score does not tell which hypothesis the local search will make best)."""
    early_exit_margin: float = 0.0
    early_exit_local: int = 1
    early_exit_steps: int | None = None
    """Local-search rounds after an early exit (None: ``steps``)."""
    rescue_score: float | None = 0.1
    """Objects whose best pose scores above this get a second, wider search (``rescue``
    overrides these settings for it, and every face is tried; the better result wins; None:
    never). Chosen on validation: it raised mean IoU-B from 0.921 to 0.945; 0.05 gained the
    same with 65 % more objects searched twice (benchmarks/). Its wider size ladder (0.5-2 x)
    finds objects whose pose-model size is far off (see also ``hidden_score``)."""
    rescue: dict = field(
        default_factory=lambda: {
            "size_floor": 1.0, "place_visible": True, "place_tol": 0.03, "place_rounds": 5,
            "keep": 16, "seed": 1, "sizes": (0.5, 0.65, 0.8, 0.9, 1.0, 1.12, 1.3, 1.6, 2.0),
        }
    )  # fmt: skip
    hidden_score: float | None = 0.05
    """An object hidden or cut on some side of its mask (``CropObservation.free``) whose best
    pose still scores above this after the second search gets a third: the second's settings
    with each rotation also tried at ``hidden_sizes`` x its first size (its extent behind
    the occluder is unknown), and the best of the three wins (None: never). An object 6 %
    visible behind another was placed at 0.43 x its size, turned 120 degrees: at the pool's
    too small size its right rotation scored worse than 150 others; with the third search it
    is found (benchmarks/)."""
    hidden_sizes: tuple[float, ...] = (1.0, 1.4, 2.0)
    stretch: bool = False
    """Afterwards scale the chosen mesh along its own axes where that fits the observation
    better (a retrieved or generated mesh is rarely the object itself; refine/stretch.py).
    The pipeline turns it on for retrieved meshes (``--stretch auto``): on validation it
    raised the retrieval pipeline's IoU-B from 0.586 to 0.656 and another instance's from
    0.545 to 0.565, left perturbed meshes level (0.749 / 0.752) and lowered the lift
    generator's (0.401 to 0.360) and true meshes' (0.942 to 0.936: it also fits a wrongly
    turned mesh better)."""
    stretch_score: float | None = None
    """Only objects whose best pose scores above this are stretched (None: every object)."""
    stretch_hypotheses: int = 4
    """The best this many refined hypotheses are each stretched; the best stretched wins
    (validation retrieval pipeline IoU-B 0.656 with 4, 0.612 with 1)."""
    stretch_weight: float = 0.1
    """Penalty per unit of sum |log scale - mean log scale| over the three axes."""
    stretch_min_gain: float = 0.01
    """A stretch is kept only when it lowers the score by at least this much."""
    stretch_rounds: int = 8
    stretch_step: tuple[float, float] = (0.15, 0.02)
    """Standard deviation of each axis' log scale, first -> last round."""
    stretch_max: float = 0.7
    """Largest |log scale| per axis (0.7: half to double)."""
    score: ScoreSettings = field(default_factory=ScoreSettings)
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.score, dict):
            unknown = set(self.score) - set(ScoreSettings.__dataclass_fields__)
            if unknown:
                raise ValueError(f"render refiner: score has no {', '.join(sorted(unknown))}")
            self.score = ScoreSettings(**self.score)
        if not isinstance(self.score, ScoreSettings):
            raise ValueError(f"render refiner: score must be score settings, got {self.score!r}")
        for name, value in asdict(self.score).items():
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value >= 0):
                raise ValueError(
                    f"render refiner: score.{name} must be a number >= 0, got {value!r}"
                )
        if 0 < self.score.size_range < 1:  # a factor either way: 1/2 is the same as 2
            raise ValueError(
                f"render refiner: score.size_range must be 0 (no limit) or >= 1, got "
                f"{self.score.size_range!r}"
            )
        unknown = set(self.rescue) - set(self.__dataclass_fields__) | {"rescue", "score"} & set(
            self.rescue
        )
        if unknown:
            raise ValueError(f"render refiner: rescue cannot set {', '.join(sorted(unknown))}")
        for name in ("sizes", "stretch_sizes", "rotation_sizes", "hidden_sizes"):
            value = getattr(self, name)
            if name == "stretch_sizes" and value is None:
                continue
            try:
                factors = tuple(float(f) for f in value)
            except (TypeError, ValueError):
                factors = ()
            if not factors or not all(np.isfinite(f) and f > 0 for f in factors):
                raise ValueError(f"render refiner: {name} must be positive factors, got {value!r}")
            setattr(self, name, factors)
        for name in ("turns", "keep", "local", "perturbations", "max_faces", "early_exit_local",
                     "stretch_hypotheses"):  # fmt: skip
            if int(getattr(self, name)) < 1:
                raise ValueError(f"render refiner: {name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "steps",
            "icp_iterations",
            "coarse_icp",
            "size_icp",
            "place_rounds",
            "dense_iterations",
            "stretch_rounds",
            "precise_iterations",
        ):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"render refiner: {name} must be >= 0, got {getattr(self, name)}")
        if self.early_exit_steps is not None and int(self.early_exit_steps) < 0:
            raise ValueError(
                f"render refiner: early_exit_steps must be >= 0, got {self.early_exit_steps}"
            )
        if not 8 <= self.coarse_tile <= 256 or not 8 <= self.tile <= 256:
            raise ValueError(
                f"render refiner: tiles must be 8..256 px, got {self.coarse_tile}, {self.tile}"
            )
        if (
            not isinstance(self.precise_tile, numbers.Integral)
            or isinstance(self.precise_tile, bool)
            or (self.precise_tile != 0 and not 8 <= self.precise_tile <= 512)
        ):
            raise ValueError(
                f"render refiner: precise_tile must be 0 (off) or 8..512 px, got {self.precise_tile!r}"
            )
        if self.plane_up not in ("none", "only", "both"):
            raise ValueError(
                f"render refiner: plane_up is none | only | both, got {self.plane_up!r}"
            )
        if not isinstance(self.local_repeat, bool):
            raise ValueError(
                f"render refiner: local_repeat must be true or false, got {self.local_repeat!r}"
            )
        if not isinstance(self.stretch, bool):
            raise ValueError(f"render refiner: stretch must be true or false, got {self.stretch!r}")
        steps = tuple(self.stretch_step) if isinstance(self.stretch_step, list | tuple) else ()
        if len(steps) != 2 or not all(
            isinstance(f, numbers.Real) and np.isfinite(f) and f > 0 for f in steps
        ):
            raise ValueError(
                f"render refiner: stretch_step must be two numbers > 0, got {self.stretch_step!r}"
            )
        self.stretch_step = tuple(float(f) for f in steps)
        for name in ("place_tol", "size_floor", "stretch_max"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
                raise ValueError(f"render refiner: {name} must be a number > 0, got {value!r}")
        for name in ("rescue_score", "hidden_score", "pool_exit_score", "local_margin",
                     "early_exit_score", "stretch_score", "stretch_weight", "stretch_min_gain",
                     "stretch_box_weight"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, numbers.Real) and np.isfinite(value) and value >= 0
            ):
                raise ValueError(
                    f"render refiner: {name} must be a number >= 0 or None, got {value!r}"
                )
        if self.rescue:  # the wider search's settings must be valid settings too
            from dataclasses import replace

            try:
                replace(self, rescue={}, **self.rescue)
            except (ValueError, TypeError) as exc:
                why = str(exc).removeprefix("render refiner: ")
                raise ValueError(f"render refiner: rescue: {why}") from None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ObjectRefinement:
    """What the refiner decided for one object, and why."""

    pose: Pose | None
    score: float | None = None
    iou: float | None = None
    residual: float | None = None
    confidence: float | None = None
    alternatives: list = field(default_factory=list)  # [{"pose": Pose, "score": float}]
    hypotheses: int = 0
    renders: int = 0
    note: str | None = None
    stretch: list | None = None
    """Scale per canonical axis applied to the mesh (refine/stretch.py: ``apply_stretch``);
    ``pose`` then places the stretched, re-canonicalised mesh. None: the mesh as given."""
    mesh_choice: int | None = None
    """Which candidate mesh ``pose`` places (0: the first; None: there was only one)."""
    mesh_scores: dict | None = None
    """Final score of each candidate mesh searched (candidate index -> score)."""

    def to_dict(self) -> dict:
        return {
            "pose": None if self.pose is None else self.pose.to_dict(),
            "score": self.score,
            "iou": self.iou,
            "residual": self.residual,
            "confidence": self.confidence,
            "alternatives": [
                {"pose": a["pose"].to_dict(), "score": a["score"]} for a in self.alternatives
            ],
            "hypotheses": self.hypotheses,
            "renders": self.renders,
            "note": self.note,
            "stretch": self.stretch,
            "mesh_choice": self.mesh_choice,
            "mesh_scores": None
            if self.mesh_scores is None  # a non-finite score is written as null (valid JSON)
            else {
                str(j): s if s is not None and np.isfinite(s) else None
                for j, s in self.mesh_scores.items()
            },  # fmt: skip
        }
