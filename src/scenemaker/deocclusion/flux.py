"""De-occlusion with FLUX.1-Kontext-dev (diffusers) and, optionally, our de-occlusion LoRA.

As in the paper: the crop (object on white, the occluded parts white too) is edited by the
image-editing model with the prompt "complete the {label} in the image. remove the white
occlusion. smooth the edge.", 28 steps, guidance 3.5. The completed object's silhouette is
read back from the output (everything not white, see ``silhouette.py``), united with the
visible mask, and the visible pixels are pasted back unchanged: the model only adds pixels.

FLUX.1 [dev] weights are gated on the Hugging Face Hub under the FLUX.1 [dev] Non-Commercial
License; the pipeline is loaded on first use (or by ``load()``), never at construction.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependencyError, MissingWeightsError
from ..hub import looks_like_path
from .base import CROP_SIZE, AmodalCrop, ObjectCrop, validate_crop
from .silhouette import WHITE_THRESHOLD, foreground_mask

DEFAULT_MODEL = "black-forest-labs/FLUX.1-Kontext-dev"
PROMPT_TEMPLATE = "complete the {label} in the image. remove the white occlusion. smooth the edge."
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights name
LORA_ADAPTER = "deocclusion"
MAX_LABEL_CHARS = 64
_DTYPES = ("float32", "bfloat16", "float16")


def clean_label(label: object, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A label safe to put in a prompt: control / format characters and braces become spaces,
    whitespace runs collapse to one space, at most ``max_chars`` (cut at a word boundary when
    there is one), surrounding punctuation stripped; empty -> "object"."""
    text = "" if label is None else str(label)
    text = "".join(
        " " if ch in "{}" or unicodedata.category(ch).startswith("C") else ch for ch in text
    )
    text = " ".join(text.split())
    if len(text) > max_chars:
        cut = text[: max_chars + 1]
        text = cut.rsplit(" ", 1)[0] if " " in cut else text[:max_chars]
    text = text.strip(" .,;:!?-_'\"")
    return text or "object"


def deocclusion_prompt(label: object, template: str = PROMPT_TEMPLATE) -> str:
    """The editing instruction for one object (``template`` must contain ``{label}``)."""
    if "{label}" not in template:
        raise ValueError(f"prompt template must contain '{{label}}', got {template!r}")
    return template.replace("{label}", clean_label(label))


class FluxKontextDeoccluder:
    """FLUX.1-Kontext (+ LoRA) image editing of white-occluded object crops.

    model: hub id or local folder of a diffusers ``FluxKontextPipeline``.
    lora: local folder holding ``pytorch_lora_weights.safetensors`` (or any single
        ``*.safetensors``), a ``.safetensors`` file, or a hub id; ``lora_scale`` weights it.
    dtype: "float32" / "bfloat16" / "float16"; default bfloat16 on CUDA, float32 elsewhere.
    cpu_offload: keep weights in CPU memory and move each component to ``device`` while it
        runs (``enable_model_cpu_offload``; ~24 GB of GPU memory becomes ~12). Ignored on CPU.
    size: side the crop is edited at; the result is resized back to the crop's side.
    max_area / auto_resize: passed to the pipeline (``max_area`` defaults to ``size**2``;
        ``auto_resize`` lets diffusers snap the input to Kontext's preferred resolutions).
    """

    name = "flux-kontext"

    def __init__(
        self,
        model: str | Path | None = DEFAULT_MODEL,
        lora: str | Path | None = None,
        lora_scale: float = 1.0,
        device: str = "cpu",
        dtype: str | None = None,
        cpu_offload: bool = False,
        seed: int = 0,
        steps: int = 28,
        guidance: float = 3.5,
        size: int = CROP_SIZE,
        max_area: int | None = None,
        auto_resize: bool = False,
        prompt_template: str = PROMPT_TEMPLATE,
        max_sequence_length: int = 512,
        white_threshold: int = WHITE_THRESHOLD,
    ):
        self.model = str(model) if model else DEFAULT_MODEL
        self.lora = str(lora) if lora else None
        self.device = str(device)
        if self.device.strip().lower() == "auto":  # the GPU torch sees, else the CPU
            from ..hub import resolve_device

            self.device = resolve_device("auto")
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        if not re.fullmatch(r"(cpu|cuda|xpu)(:\d+)?|mps", self.device):
            raise ValueError(f"device must be cpu, cuda, cuda:N, mps or xpu, got {device!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if size < 16:
            raise ValueError(f"size must be >= 16 pixels, got {size}")
        if max_area is not None and max_area < 256:
            raise ValueError(f"max_area must be >= 256 pixels, got {max_area}")
        deocclusion_prompt("object", prompt_template)  # validates the template
        self.dtype = dtype
        self.lora_scale = float(lora_scale)
        self.cpu_offload = bool(cpu_offload)
        self.seed = int(seed)
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.size = int(size)
        self.max_area = int(max_area) if max_area is not None else self.size**2
        self.auto_resize = bool(auto_resize)
        self.prompt_template = prompt_template
        self.max_sequence_length = int(max_sequence_length)
        self.white_threshold = int(white_threshold)
        self._pipe = None

    def prompt(self, label: object) -> str:
        return deocclusion_prompt(label, self.prompt_template)

    def load(self):
        """Load the pipeline (and LoRA) now; returns it. Raises MissingWeightsError."""
        if self._pipe is not None:
            return self._pipe
        import torch

        try:
            from diffusers import FluxKontextPipeline
        except ImportError as error:
            raise MissingDependencyError(
                "flux-kontext needs diffusers>=0.34 with FluxKontextPipeline: "
                "pip install -U 'diffusers>=0.34'"
            ) from error
        kind = self.device.split(":")[0]
        if kind != "cpu" and not getattr(torch, kind).is_available():
            raise ValueError(f"device {self.device!r} requested but torch finds no {kind} device")
        pipe = _from_pretrained(FluxKontextPipeline, self.model, getattr(torch, self.dtype))
        if self.lora is not None:
            _load_lora(pipe, self.lora, self.lora_scale)
        if self.cpu_offload and not self.device.startswith("cpu"):
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return pipe

    def generate(self, image: np.ndarray, prompt: str) -> np.ndarray:
        """Run the editing model once: (H, W, 3) uint8 in, (h, w, 3) uint8 out, where (h, w)
        is the pipeline's output size (``max_area`` at the input's aspect ratio)."""
        import torch
        from PIL import Image

        pipe = self.load()
        height, width = np.asarray(image).shape[:2]
        generator = torch.Generator("cpu").manual_seed(self.seed)  # same noise on any device
        with torch.inference_mode():
            result = pipe(
                image=Image.fromarray(np.asarray(image, dtype=np.uint8)),
                prompt=prompt,
                height=height,
                width=width,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                generator=generator,
                max_sequence_length=self.max_sequence_length,
                max_area=self.max_area,
                _auto_resize=self.auto_resize,
                output_type="np",
            )
        output = np.asarray(result.images[0], dtype=np.float32)
        return (np.clip(output, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def complete(self, crop: ObjectCrop) -> AmodalCrop:
        side = validate_crop(crop)
        image = np.asarray(crop.image)
        visible = np.asarray(crop.visible_mask, dtype=bool)
        generated = self.generate(_resize(image, self.size), self.prompt(crop.label))
        generated = _resize(generated, side)
        amodal = foreground_mask(generated, self.white_threshold, seed_mask=visible) | visible
        out = generated.copy()
        out[~amodal] = 255
        out[visible] = image[visible]
        return AmodalCrop(out, amodal, crop, method=self.name)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == (side, side):
        return image
    resized = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Errors from_pretrained raises when weights are missing: OSError covers the hub's HTTP,
    offline and not-cached errors; the rest are hub errors that are not OSErrors."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub.errors import EntryNotFoundError, HFValidationError

        errors += [EntryNotFoundError, HFValidationError]
    except ImportError:  # older huggingface_hub: its errors are OSErrors
        pass
    return tuple(errors)


def _missing(model: str, what: str, error: BaseException | None = None) -> MissingWeightsError:
    """One line naming the model: the hub helpers' message (``scenemaker.hub``), plus the
    FLUX licence step for gated weights."""
    from ..hub import missing_weights_message

    if looks_like_path(model):
        reason = f" ({str(error).splitlines()[0][:200]})" if error is not None else ""
        return MissingWeightsError(f"{what} {model!r} not found or incomplete{reason}")
    gated = (
        " (FLUX.1 weights are gated: accept the licence on the Hub and log in first)"
        if what.startswith("FLUX")
        else ""
    )
    reason = str(error) if error is not None else ""
    return MissingWeightsError(f"{what}: {missing_weights_message(model, reason)}{gated}")


def _from_pretrained(pipeline_cls, model: str, torch_dtype):
    if looks_like_path(model) and not Path(model).expanduser().is_dir():
        raise _missing(model, "FLUX.1-Kontext model")
    source = str(Path(model).expanduser()) if looks_like_path(model) else model
    try:
        return pipeline_cls.from_pretrained(source, **_dtype_kwarg(torch_dtype))
    except _hub_errors() as error:
        raise _missing(model, "FLUX.1-Kontext model", error) from error


def _dtype_kwarg(torch_dtype) -> dict:
    """diffusers >= 0.36 names it ``dtype`` (``torch_dtype`` is deprecated); older: ``torch_dtype``
    (an unknown ``dtype`` there would be dropped silently, loading float32)."""
    from diffusers.utils import deprecation_utils

    if hasattr(deprecation_utils, "_resolve_dtype"):
        return {"dtype": torch_dtype}
    return {"torch_dtype": torch_dtype}


def _load_lora(pipe, lora: str, scale: float) -> None:
    """Load a diffusers-format FLUX LoRA (safetensors only: nothing is unpickled)."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise MissingDependencyError("loading a LoRA needs peft: pip install peft")
    path = Path(lora).expanduser()
    if path.is_dir():
        folder, weight_name = path, LORA_WEIGHT_NAME
        if not (path / weight_name).is_file():
            candidates = sorted(path.glob("*.safetensors"))
            if len(candidates) != 1:
                raise MissingWeightsError(
                    f"LoRA folder {lora!r} holds no {LORA_WEIGHT_NAME} "
                    f"(and {len(candidates)} other .safetensors files)"
                )
            weight_name = candidates[0].name
        source = str(folder)
    elif path.is_file():
        if path.suffix != ".safetensors":
            raise InputError(f"LoRA file {lora!r} must be .safetensors (pickles are not loaded)")
        source, weight_name = str(path.parent), path.name
    elif looks_like_path(lora):
        raise _missing(lora, "LoRA")
    else:
        source, weight_name = lora, LORA_WEIGHT_NAME  # a hub id
    local = Path(source) / weight_name
    if local.is_file():  # a damaged or pickled file: one line naming it, nothing unpickled
        from ..io_utils import check_safetensors

        check_safetensors(local)
    try:
        pipe.load_lora_weights(source, weight_name=weight_name, adapter_name=LORA_ADAPTER)
    except _hub_errors() as error:
        raise _missing(lora, "LoRA", error) from error
    except (ValueError, KeyError, RuntimeError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise InputError(f"LoRA {lora!r} does not fit this FLUX model: {reason}") from error
    pipe.set_adapters([LORA_ADAPTER], adapter_weights=[scale])
