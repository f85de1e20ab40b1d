"""Every stage's backend and settings (saved as ``config.json`` beside the outputs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import InputError

DTYPES = ("float32", "bfloat16", "float16")
STAGES = ("perception", "deocclusion", "object3d", "pose", "refine", "export")
PIPELINE_SCHEMA = "scenemaker.pipeline/1"


@dataclass
class PipelineConfig:
    """Every stage's backend and settings; saved as ``config.json`` beside the outputs."""

    segmenter: str = "auto"
    """"auto" (user masks if given, else grounded-sam), "user", "grounded-sam", "sam-clicks"."""
    masks: str | None = None
    """User masks: label PNG, folder of per-object PNGs, or COCO RLE JSON."""
    prompt: str | None = None
    """Text prompt for grounded-sam (default: a generic list of everyday objects)."""
    clicks: list | None = None
    """sam-clicks: one list of (x, y) pixel clicks per object."""
    segmenter_model: str | None = None
    depth: str = "auto"
    """"auto" (user depth if given, else moge), "user", "moge", "depth-anything", "depth-pro"."""
    depth_file: str | None = None
    """User depth (RGB-D): 16-bit PNG (units per metre = depth_scale), EXR or NPY."""
    depth_scale: float = 1000.0
    invalid_depth: float = 0.0
    K: str | None = None
    """Intrinsics "fx,fy,cx,cy" in pixels of the input image."""
    fov: float | None = None
    """Horizontal field of view in degrees (principal point at the centre)."""
    depth_model: str | None = None
    deocclusion: str = "classical"
    """"classical" (OpenCV, embedded), "flux-kontext", "none"."""
    deocclusion_model: str | None = None
    lora: str | None = None
    generator: str = "retrieval"
    """"retrieval" (embedded), "lift" (embedded), "oracle", "shap-e", "hunyuan3d", "external"."""
    generator_model: str | None = None
    mesh_candidates: int = 2
    """Meshes the retrieval generator proposes per object (its best matches); the refine
    stage searches a placement for each and keeps the one that explains the photo best."""
    external_command: str | None = None
    external_timeout: float = 600.0
    pose: str = "dit"
    """"dit" (shipped PoseDiT), "box_fit", "registration", "initial" (the generator's)."""
    pose_weights: str | None = None
    pose_steps: int | None = None
    guidance: float | None = None
    pose_samples: int = 8
    """Samples the pose model draws per scene (its hypotheses for the refine stage)."""
    refine: str = "render"
    """"render" (render-and-compare over the pose model's hypotheses, size included),
    "fit" (4 headings per object, ICP, best fit to the depth image), "icp", "overlap"
    (fit, then overlapping objects pushed apart), "none"."""
    stretch: str = "auto"
    """"auto" (the render refiner also fits the proportions of retrieved meshes, another
    object of the category, refine/stretch.py; not the oracle's, the objects' own, nor the
    lift's, made from the observation: there it lowered validation IoU-B), "on", "off"."""
    refine_workers: int = 0
    """Processes the render refiner searches objects in, side by side (0: one per core, up to
    8; 1: the main process only). The poses do not depend on it."""
    usd: bool = False
    device: str = "cpu"
    dtype: str | None = None
    cpu_offload: bool = False
    max_side: int = 2048
    seed: int = 0

    def to_dict(self) -> dict:
        return {"schema": PIPELINE_SCHEMA, **asdict(self)}

    def validate(self) -> None:
        """One-line InputError naming the option for a value no stage can use (checked before
        any stage runs)."""
        import math
        import re

        def bad(option, value, expected):
            raise InputError(f"--{option} {value!r}: expected {expected}")

        if self.dtype is not None and self.dtype not in DTYPES:
            bad("dtype", self.dtype, " | ".join(DTYPES))
        if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", str(self.device)):
            bad("device", self.device, "cpu | cuda | cuda:N | mps | auto")
        finite_positive = {
            "depth-scale": self.depth_scale,
            "external-timeout": self.external_timeout,
        }
        for option, value in finite_positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                bad(option, value, "a finite number > 0")
        if not (
            isinstance(self.invalid_depth, (int, float)) and not math.isnan(self.invalid_depth)
        ):
            bad("invalid-depth", self.invalid_depth, "a number")
        if self.guidance is not None and not (
            math.isfinite(self.guidance) and 0 <= self.guidance <= 100
        ):
            bad("guidance", self.guidance, "a finite number in 0..100")
        if self.fov is not None and not (math.isfinite(self.fov) and 0 < self.fov < 180):
            bad("fov", self.fov, "degrees in (0, 180)")
        if self.pose_steps is not None and not 1 <= self.pose_steps <= 1000:
            bad("steps", self.pose_steps, "an integer in 1..1000")
        if self.stretch not in ("auto", "on", "off"):
            bad("stretch", self.stretch, "auto | on | off")
        if isinstance(self.refine_workers, bool) or not (
            isinstance(self.refine_workers, int) and 0 <= self.refine_workers <= 1024
        ):
            bad("refine-workers", self.refine_workers, "an integer in 0..1024 (0: one per core)")
        if isinstance(self.mesh_candidates, bool) or not (
            isinstance(self.mesh_candidates, int) and 1 <= self.mesh_candidates <= 16
        ):
            bad("mesh-candidates", self.mesh_candidates, "an integer in 1..16")
        if not 1 <= self.pose_samples <= 256:
            bad("pose-samples", self.pose_samples, "an integer in 1..256")
        if not 64 <= self.max_side <= 16384:
            bad("max-side", self.max_side, "pixels in 64..16384")
        if not 0 <= self.seed < 2**32:
            bad("seed", self.seed, "an integer in 0..2^32-1")

    @property
    def stretches(self) -> bool:
        """Whether the render refiner fits each mesh's proportions (``stretch``)."""
        return self.stretch == "on" or (self.stretch == "auto" and self.generator == "retrieval")

    @classmethod
    def from_dict(cls, d: dict) -> PipelineConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def parse_clicks(text: str | None) -> list | None:
    """``--clicks`` 'x,y;x,y|x,y' (objects split by |, clicks by ;, pixels) as lists of points."""
    if not text:
        return None
    try:
        return [
            [tuple(float(v) for v in point.split(",")) for point in obj.split(";") if point.strip()]
            for obj in text.split("|")
        ]
    except ValueError:
        raise InputError(f"--clicks {text!r}: expected 'x,y;x,y|x,y' in pixels") from None
