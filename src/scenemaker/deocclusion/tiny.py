"""A tiny random FLUX.1-Kontext pipeline built offline, for tests and CPU smoke runs.

Same classes and code path as the real model (diffusers ``FluxKontextPipeline`` with a
``FluxTransformer2DModel``, ``AutoencoderKL``, CLIP + T5 text encoders and a flow-matching
Euler scheduler), with every width cut down to a few channels so that one sampling step
runs in milliseconds on a CPU. Both tokenizers are built in code from a character-level
vocabulary, so nothing is downloaded. Its outputs are noise: it checks plumbing (loading,
LoRA, shapes, seeds), never image quality.
"""

from __future__ import annotations

from pathlib import Path

# letters, digits and the punctuation of the de-occlusion prompt; anything else maps to unk
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,'-")
# whole words of the prompt get BPE merges, so the CLIP tokenizer exercises its merges
_WORDS = ("complete", "the", "in", "image", "remove", "white", "occlusion", "smooth", "edge")
TINY_SIZE = 32  # pixels: a side the tiny model handles (its VAE does not downsample)


def build_tiny_flux_kontext(path: str | Path | None = None, seed: int = 0):
    """A tiny random ``FluxKontextPipeline`` (float32, CPU); saved to ``path`` when given.

    Sizes: transformer 1 double + 1 single block, 2 heads of 16 channels, text width 32;
    VAE with one 4-channel level and 1 latent channel (no downsampling, so any even side
    works, e.g. 32 or 64 px); CLIP text encoder and T5 encoder of 2 layers, width 32.
    Call it with ``_auto_resize=False, max_area=H * W`` so that the pipeline keeps the
    requested size instead of resizing to Kontext's preferred ~1 megapixel resolutions.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,  # 1 latent channel packed in 2x2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # = the T5 width
        pooled_projection_dim=32,  # = the CLIP width
        guidance_embeds=True,  # as FLUX.1 [dev]: guidance is an input, not CFG
        axes_dims_rope=(4, 4, 8),  # sums to the head width
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        sample_size=TINY_SIZE,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )

    clip_tokenizer = _clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tokenizer.get_vocab()),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
            max_position_embeddings=clip_tokenizer.model_max_length,
            bos_token_id=clip_tokenizer.bos_token_id,
            eos_token_id=clip_tokenizer.eos_token_id,
            pad_token_id=clip_tokenizer.pad_token_id,
            hidden_act="gelu",
        )
    )
    t5_tokenizer = _t5_tokenizer()
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer.get_vocab()),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            is_encoder_decoder=False,
            use_cache=False,
            pad_token_id=t5_tokenizer.pad_token_id,
            eos_token_id=t5_tokenizer.eos_token_id,
        )
    )
    pipe = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    if path is not None:
        pipe.save_pretrained(str(path))
    return pipe


def _clip_tokenizer():
    """Byte-pair tokenizer over single characters plus merges that spell the prompt words."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _CHARS:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []  # transformers 5 wants (left, right) tuples
    for word in _WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            pieces = [pair[0] + pair[1], *pieces[2:]]
            vocab.setdefault(pieces[0], len(vocab))
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=77,  # FLUX reads the CLIP context length from here
    )


def _t5_tokenizer():
    """Unigram tokenizer over characters, with and without the word-start marker."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(char, -3.0) for char in _CHARS]
    pieces += [("\u2581" + char, -3.5) for char in _CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)
