"""LoRA setup for de-occlusion finetuning: the FluxKontextPipeline to finetune, the prompt
embeddings (computed once, before the text encoders are released), the adapter on the
transformer's attention projections and its optimizer."""

from __future__ import annotations

from pathlib import Path

from .train_config import TINY_MODEL, DeocclusionTrainConfig


def source_name(source, config: DeocclusionTrainConfig) -> str:
    if source is None:
        return config.model
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__} object>"


def load_pipeline(source, config: DeocclusionTrainConfig):
    """The FluxKontextPipeline to finetune: ``source`` None -> ``config.model``; a hub id /
    folder; or a pipeline object (used as it is: the LoRA is added to its transformer)."""
    import torch

    dtype = getattr(torch, config.weight_dtype)
    if source is not None and not isinstance(source, (str, Path)):
        if not all(hasattr(source, name) for name in ("transformer", "vae", "encode_prompt")):
            raise ValueError(
                "pipeline must be a FluxKontextPipeline, an id or a folder, got "
                f"{type(source).__name__}"
            )
        return source
    name = source_name(source, config)
    if name == TINY_MODEL:
        from .tiny import build_tiny_flux_kontext

        pipe = build_tiny_flux_kontext(seed=0)  # float32
        return pipe if dtype == torch.float32 else pipe.to(dtype)
    from diffusers import FluxKontextPipeline

    from .flux import _from_pretrained

    return _from_pretrained(FluxKontextPipeline, name, dtype)


def encode_prompts(pipe, prompts: list[str], device, max_sequence_length: int) -> dict:
    """{prompt: (T5 embeddings (L, D), CLIP pooled (P,))} on the CPU, plus the text ids."""
    import torch

    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        encoder.to(device)
    table = {}
    with torch.no_grad():
        for start in range(0, len(prompts), 16):
            chunk = prompts[start : start + 16]
            embeds, pooled, text_ids = pipe.encode_prompt(
                prompt=chunk, prompt_2=None, device=device, max_sequence_length=max_sequence_length
            )
            for k, prompt in enumerate(chunk):
                table[prompt] = (embeds[k].cpu(), pooled[k].cpu())
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        encoder.to("cpu")
    return {"prompts": table, "text_ids": text_ids.cpu()}


def add_lora(transformer, config: DeocclusionTrainConfig) -> list:
    """Freeze the transformer, add the LoRA adapter (seeded init); its float32 parameters."""
    import torch
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(config.seed)
    transformer.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.lora_alpha,
            init_lora_weights=True,  # B = 0: training starts from the base model
            target_modules=list(config.target_modules),
        )
    )
    params = [p for _, p in transformer.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"target_modules {list(config.target_modules)} match no layer")
    for param in params:
        param.data = param.data.float()
    return params


def make_optimizer(params, config: DeocclusionTrainConfig):
    import torch

    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as error:
            from ..errors import MissingDependencyError

            raise MissingDependencyError(
                "optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes"
            ) from error
        cls = bnb.optim.AdamW8bit
    else:
        cls = torch.optim.AdamW
    return cls(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
