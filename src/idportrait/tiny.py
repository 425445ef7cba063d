"""Tiny, randomly initialised models with the real architectures, built in code (no download).

Used by `idportrait demo`, the tests and the CPU benchmarks, never by production code. Each builder returns
the same classes (or released checkpoint layouts) the real checkpoints load into, and the ``save_*`` helpers
write the standard on-disk layout, so code under test loads them back through its real ``from_pretrained`` path.

Sizes: SD1.5-shaped pipeline with 32/64 UNet channels, a 2-layer 32-d CLIP text encoder with the real
SD1.5 vocabulary (49408 tokens), a 2-layer 32-d CLIP vision tower that still returns 257 tokens at 224 px,
and a VAE that downsamples by 2 (so a 32x32 latent decodes to 64x64 pixels).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from idportrait.adapters.instantid.checkpoint import RESAMPLER_DEPTH, resampler_layout
from idportrait.adapters.ipadapter_layout import image_proj_layout, ip_adapter_layout
from idportrait.pipelines.clip_processor import clip_image_processor

TINY_TEXT_DIM = 32
TINY_VISION_DIM = 32
TINY_ADAPTER = {"cross_attention_dim": 32, "clip_dim": 32, "id_dim": 128, "rank": 4, "num_tokens": 4}
"""Tiny ConsistentID dims: text/cross 32 (tiny SD1.5), CLIP 32 (tiny vision tower), 128-D dlib descriptor."""
SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


def _bpe_vocab_path() -> Path:
    """open_clip's ``bpe_simple_vocab_16e6.txt.gz`` (shipped inside the open-clip-torch wheel)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open-clip-torch is not installed (it ships the CLIP BPE vocabulary)")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> dict[int, str]:
    """The CLIP/GPT-2 reversible byte -> unicode symbol table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def clip_tokenizer_from_bpe(out_dir: str | Path) -> CLIPTokenizer:
    """Write the SD1.5 (openai/clip-vit-large-patch14) tokenizer files and load them back.

    Rebuilt from open_clip's BPE file the standard CLIP way: merges = lines 1..48894; vocab = the 256
    byte symbols, the same with ``</w>``, one entry per merge, then ``<|startoftext|>`` (49406) and
    ``<|endoftext|>`` (49407). ``model_max_length`` 77, pad = ``<|endoftext|>``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(_bpe_vocab_path()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (out_dir / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "do_lower_case": True,
                "tokenizer_class": "CLIPTokenizer",
            }
        )
    )
    return CLIPTokenizer.from_pretrained(out_dir)


def tiny_text_encoder(projection: bool = False, hidden_size: int = TINY_TEXT_DIM, seed: int = 0) -> CLIPTextModel:
    """2-layer CLIP text encoder with the real 49408-token vocabulary, [B, 77] -> [B, 77, hidden_size]."""
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=49408,
        max_position_embeddings=77,
        projection_dim=hidden_size,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(config).eval()


def tiny_image_encoder(hidden_size: int = TINY_VISION_DIM, seed: int = 0) -> CLIPVisionModelWithProjection:
    """2-layer CLIP vision tower at 224 px / patch 14: hidden_states[-2] is [B, 257, hidden_size]."""
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=224,
        patch_size=14,
        projection_dim=hidden_size,
    )
    return CLIPVisionModelWithProjection(config).eval()


def tiny_unet(
    cross_attention_dim: int = TINY_TEXT_DIM, sdxl: bool = False, seed: int = 0, in_channels: int = 4
) -> UNet2DConditionModel:
    """SD1.5-shaped (or SDXL-shaped) UNet with 32/64 channels: latents [B, 4, h, w] -> noise [B, 4, h, w].

    ``in_channels`` 9: an inpainting UNet (latents, mask, masked-image latents concatenated: [B, 4 + 1 + 4, h, w]).
    """
    torch.manual_seed(seed)
    kwargs: dict = {}
    if sdxl:
        kwargs = {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 6 * 8 + TINY_TEXT_DIM,
            "transformer_layers_per_block": (1, 2),
            "use_linear_projection": True,
        }
    return UNet2DConditionModel(
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D") if sdxl else ("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D") if sdxl else ("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
        **kwargs,
    ).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    """Two-block KL VAE (downsampling factor 2): pixels [B, 3, 2h, 2w] <-> latents [B, 4, h, w]."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    ).eval()


def tiny_scheduler() -> EulerDiscreteScheduler:
    """The Euler scheduler with the SD1.5 noise schedule (what the ConsistentID release uses)."""
    return EulerDiscreteScheduler(**SD15_SCHEDULER_CONFIG)


@dataclass
class TinySD15:
    """The components of a StableDiffusionPipeline, plus the CLIP image encoder the adapters use."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: EulerDiscreteScheduler
    image_encoder: CLIPVisionModelWithProjection
    feature_extractor: CLIPImageProcessor


def tiny_sd15(tokenizer_dir: str | Path, seed: int = 0, unet_in_channels: int = 4) -> TinySD15:
    """All SD1.5 pipeline components, tiny. The tokenizer files are written to ``tokenizer_dir``."""
    return TinySD15(
        unet=tiny_unet(seed=seed, in_channels=unet_in_channels),
        vae=tiny_vae(seed=seed),
        text_encoder=tiny_text_encoder(seed=seed),
        tokenizer=clip_tokenizer_from_bpe(tokenizer_dir),
        scheduler=tiny_scheduler(),
        image_encoder=tiny_image_encoder(seed=seed),
        feature_extractor=clip_image_processor(),
    )


def save_tiny_sd15(out_dir: str | Path, seed: int = 0, unet_in_channels: int = 4) -> Path:
    """Write a tiny SD1.5 base in the diffusers folder layout (loadable by ``from_pretrained``).

    Layout: ``unet/ vae/ text_encoder/ tokenizer/ scheduler/ image_encoder/ feature_extractor/
    model_index.json``; the image encoder doubles as the adapters' CLIP vision tower. ``unet_in_channels`` 9: an
    inpainting base (the other models are those of the 4-channel base of the same seed).
    """
    from diffusers import StableDiffusionPipeline

    out_dir = Path(out_dir)
    c = tiny_sd15(out_dir / "tokenizer", seed=seed, unet_in_channels=unet_in_channels)
    pipe = StableDiffusionPipeline(
        vae=c.vae,
        text_encoder=c.text_encoder,
        tokenizer=c.tokenizer,
        unet=c.unet,
        scheduler=c.scheduler,
        safety_checker=None,
        feature_extractor=c.feature_extractor,
        image_encoder=c.image_encoder,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def tiny_controlnet(sdxl: bool = False, seed: int = 0) -> Any:
    """A ControlNet of the tiny (SD1.5- or SDXL-shaped) UNet, every weight random (its zero convolutions too).

    Its condition embedding downsamples by 2, as the tiny VAE does: a control image [B, 3, H, W] meets latents
    [B, 4, H/2, W/2].
    """
    from diffusers import ControlNetModel

    unet = tiny_unet(cross_attention_dim=2 * TINY_TEXT_DIM if sdxl else TINY_TEXT_DIM, sdxl=sdxl, seed=seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    torch.manual_seed(seed + 1)
    zero_convs = [controlnet.controlnet_cond_embedding.conv_out, controlnet.controlnet_mid_block]
    with torch.no_grad():
        for conv in [*zero_convs, *controlnet.controlnet_down_blocks]:
            conv.weight.copy_(torch.randn_like(conv.weight) / conv.weight[0].numel() ** 0.5)
    return controlnet.eval()


def save_tiny_sdxl(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny SDXL base (two text encoders of 32 d, cross-attention 64 d) in the diffusers layout."""
    from diffusers import StableDiffusionXLPipeline

    out_dir = Path(out_dir)
    tokenizer = clip_tokenizer_from_bpe(out_dir / "tokenizer")
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(seed=seed),
        text_encoder=tiny_text_encoder(seed=seed),
        text_encoder_2=tiny_text_encoder(projection=True, seed=seed + 1),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=tiny_unet(cross_attention_dim=2 * TINY_TEXT_DIM, sdxl=True, seed=seed),
        scheduler=tiny_scheduler(),
        image_encoder=tiny_image_encoder(seed=seed),
        feature_extractor=clip_image_processor(),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def random_consistentid(
    unet: Any,
    cross_attention_dim: int,
    clip_dim: int,
    id_dim: int,
    rank: int,
    num_tokens: int = 4,
    full_size: bool = False,
    seed: int = 0,
) -> tuple[Any, Any, Any]:
    """Random ConsistentID modules for ``unet`` (processors installed in place), every weight non-zero.

    ``full_size``: the release architecture (FacialEncoder 1024-d x 8 layers, projector depth 4); otherwise
    one small layer each. Returns (facial_encoder, image_proj, processors ModuleList).
    """
    from idportrait.adapters.consistentid.attention import install_consistentid_processors
    from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
    from idportrait.adapters.consistentid.image_proj import ProjPlusModel

    torch.manual_seed(seed)
    if full_size:
        facial_encoder = FacialEncoder(embed_dim=cross_attention_dim, clip_dim=clip_dim)
        image_proj = ProjPlusModel(cross_attention_dim, id_dim, clip_dim, num_tokens)
    else:
        facial_encoder = FacialEncoder(cross_attention_dim, clip_dim, latent_dim=64, depth=1, dim_head=16, heads=4)
        image_proj = ProjPlusModel(cross_attention_dim, id_dim, clip_dim, num_tokens, depth=1, dim_head=8, heads=4)
    processors = install_consistentid_processors(unet, rank=rank, num_tokens=num_tokens)
    with torch.no_grad():
        for module in (facial_encoder, image_proj, processors):
            for name, p in module.named_parameters():
                if p.ndim > 1 and not name.endswith("latents"):
                    p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    return facial_encoder.eval(), image_proj.eval(), processors


def random_faceid_checkpoint(
    unet: torch.nn.Module,
    id_dim: int = 512,
    clip_dim: int | None = None,
    heads: int = 1,
    lora_rank: int | None = 4,
    seed: int = 0,
    std: float = 0.3,
) -> dict:
    """A released-layout checkpoint with random weights for ``unet`` (tiny demos and tests).

    ``clip_dim`` set -> a Plus projection; ``lora_rank`` None -> no LoRA.
    """
    g = torch.Generator().manual_seed(seed)
    layout = {
        "image_proj": image_proj_layout(unet.config.cross_attention_dim, id_dim, clip_dim, heads),
        "ip_adapter": ip_adapter_layout(unet, lora_rank),
    }
    return {
        group: {k: std * torch.randn(shape, generator=g) for k, shape in keys.items()} for group, keys in layout.items()
    }


def random_instantid_checkpoint(
    unet: torch.nn.Module, dim: int = 64, heads: int = 1, embedding_dim: int = 512, seed: int = 0
) -> dict:
    """Released-layout adapter with random weights for ``unet`` (tiny demos and tests)."""
    g = torch.Generator().manual_seed(seed)
    layout = {
        "image_proj": resampler_layout(dim, RESAMPLER_DEPTH, heads, embedding_dim, unet.config.cross_attention_dim),
        "ip_adapter": ip_adapter_layout(unet, None),
    }
    return {
        group: {k: torch.randn(shape, generator=g) / shape[-1] ** 0.5 for k, shape in keys.items()}
        for group, keys in layout.items()
    }
