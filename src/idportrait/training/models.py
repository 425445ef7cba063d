"""The frozen models a training run needs, loaded with the libraries' own ``from_pretrained``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from idportrait.hub import fetch

if TYPE_CHECKING:  # importing it prints transformers' torchvision notice, which belongs after the option checks
    from transformers import CLIPImageProcessor


@dataclass
class FrozenSD15:
    """SD1.5 base (+ CLIP image encoder), frozen and in eval mode; ``weight_dtype`` for the big ones."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    noise_scheduler: DDPMScheduler
    image_encoder: CLIPVisionModelWithProjection | None
    image_processor: CLIPImageProcessor

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> scaled latents [B, 4, H/f, W/f] (a sample of the posterior)."""
        return encode_latents(self.vae, pixel_values)

    @torch.no_grad()
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """token ids [B, 77] -> last hidden state [B, 77, D]."""
        return self.text_encoder(input_ids.to(self.text_encoder.device))[0]

    def encode_images(self, clip_pixels: torch.Tensor) -> torch.Tensor:
        """CLIP pixels [..., 3, 224, 224] -> penultimate hidden states [..., 257, C]."""
        return encode_clip_images(self.image_encoder, clip_pixels)


@torch.no_grad()
def encode_clip_images(image_encoder: CLIPVisionModelWithProjection, clip_pixels: torch.Tensor) -> torch.Tensor:
    """CLIP pixels [..., 3, 224, 224] -> the vision tower's penultimate hidden states [..., 257, C]."""
    lead = clip_pixels.shape[:-3]
    x = clip_pixels.reshape(-1, *clip_pixels.shape[-3:]).to(image_encoder.device, image_encoder.dtype)
    hidden = image_encoder(x, output_hidden_states=True).hidden_states[-2]
    return hidden.reshape(*lead, *hidden.shape[-2:])


def load_image_encoder(name: str, device: torch.device | str, weight_dtype: torch.dtype) -> Any:
    """A frozen CLIP vision tower (hub id or folder); failures raise `ModelNotFoundError` (`fetch`)."""
    encoder = fetch(
        "image encoder",
        name,
        "--image-encoder",
        lambda local: CLIPVisionModelWithProjection.from_pretrained(name, local_files_only=local),
    )
    encoder.requires_grad_(False).eval().to(device)
    if weight_dtype != torch.float32:
        encoder.to(dtype=weight_dtype)
    return encoder


def base_kind(base: str) -> str:
    """``"sdxl"`` for a base whose UNet takes SDXL's added text/time conditioning, else ``"sd15"`` (reads the UNet
    config only; failures raise `ModelNotFoundError`)."""
    config = fetch(
        "base model",
        base,
        "--base",
        lambda local: UNet2DConditionModel.load_config(base, subfolder="unet", local_files_only=local),
    )
    return "sdxl" if config.get("addition_embed_type") == "text_time" else "sd15"


def load_frozen_sd15(
    base: str, image_encoder: str | None, device: torch.device | str, weight_dtype: torch.dtype
) -> FrozenSD15:
    """Load the base's unet/vae/text_encoder/tokenizer/scheduler and the CLIP image encoder, all frozen.

    ``base`` and ``image_encoder`` are hub ids or local folders; failures raise `ModelNotFoundError` (`fetch`).
    """

    def load_base(local: bool) -> tuple:
        return tuple(
            cls.from_pretrained(base, subfolder=name, local_files_only=local)
            for cls, name in [
                (UNet2DConditionModel, "unet"),
                (AutoencoderKL, "vae"),
                (CLIPTextModel, "text_encoder"),
                (CLIPTokenizer, "tokenizer"),
                (DDPMScheduler, "scheduler"),
            ]
        )

    unet, vae, text_encoder, tokenizer, noise_scheduler = fetch("base model", base, "--base", load_base)
    encoder = load_image_encoder(image_encoder, device, weight_dtype) if image_encoder else None
    for model in (unet, text_encoder):
        model.requires_grad_(False).eval().to(device)
        if weight_dtype != torch.float32:
            model.to(dtype=weight_dtype)
    vae.requires_grad_(False).eval().to(device)  # kept in float32: its encoder overflows in fp16
    from idportrait.pipelines.clip_processor import clip_image_processor

    return FrozenSD15(unet, vae, text_encoder, tokenizer, noise_scheduler, encoder, clip_image_processor())


@dataclass
class FrozenSDXL:
    """SDXL base parts (+ a CLIP image encoder when the method needs one), frozen and in eval mode."""

    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    noise_scheduler: Any
    image_encoder: Any = None
    image_processor: Any = None

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> scaled latents [B, 4, H/f, W/f]."""
        return encode_latents(self.vae, pixel_values)

    @torch.no_grad()
    def encode_text(self, ids: torch.Tensor, ids_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, 77] of each tokenizer -> (penultimate states concatenated [B, 77, D1 + D2], pooled [B, D2])."""
        out_1 = self.text_encoder(ids.to(self.text_encoder.device), output_hidden_states=True)
        out_2 = self.text_encoder_2(ids_2.to(self.text_encoder_2.device), output_hidden_states=True)
        return torch.cat([out_1.hidden_states[-2], out_2.hidden_states[-2]], dim=-1), out_2.text_embeds

    def encode_images(self, clip_pixels: torch.Tensor) -> torch.Tensor:
        """CLIP pixels [..., 3, 224, 224] -> penultimate hidden states [..., 257, C]."""
        return encode_clip_images(self.image_encoder, clip_pixels)


def load_frozen_sdxl(
    base: str, device: torch.device | str, weight_dtype: torch.dtype, image_encoder: str | None = None
) -> FrozenSDXL:
    """Every part of an SDXL base (hub id or diffusers folder) and, when named, a CLIP image encoder (with the
    OpenAI CLIP preprocessing); failures raise `ModelNotFoundError`."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    def load(local: bool) -> FrozenSDXL:
        return FrozenSDXL(
            unet=UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=local),
            vae=AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=local),
            text_encoder=CLIPTextModel.from_pretrained(base, subfolder="text_encoder", local_files_only=local),
            text_encoder_2=CLIPTextModelWithProjection.from_pretrained(
                base, subfolder="text_encoder_2", local_files_only=local
            ),
            tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", local_files_only=local),
            tokenizer_2=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer_2", local_files_only=local),
            noise_scheduler=DDPMScheduler.from_pretrained(base, subfolder="scheduler", local_files_only=local),
        )

    parts = fetch("SDXL base", base, "--base", load)
    for model in (parts.unet, parts.text_encoder, parts.text_encoder_2):
        model.requires_grad_(False).eval().to(device, dtype=weight_dtype)
    parts.vae.requires_grad_(False).eval().to(device)  # float32: the SDXL VAE overflows in fp16
    if image_encoder:
        from idportrait.pipelines.clip_processor import clip_image_processor

        parts.image_encoder = load_image_encoder(image_encoder, device, weight_dtype)
        parts.image_processor = clip_image_processor()
    return parts


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, pixel_values: torch.Tensor) -> torch.Tensor:
    """pixels [B, 3, H, W] in [-1, 1] -> scaled latents [B, 4, H/f, W/f] (a sample of the VAE posterior)."""
    dist = vae.encode(pixel_values.to(vae.dtype)).latent_dist
    return dist.sample() * vae.config.scaling_factor


def add_noise(noise_scheduler: DDPMScheduler, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DDPM forward process with t ~ U{0..T-1}: returns (noisy latents, noise, timesteps [B])."""
    noise = torch.randn_like(latents)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device)
    return noise_scheduler.add_noise(latents, noise, t), noise, t


def noised_latents(
    frozen: Any, pixel_values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training step's diffusion inputs from pixels [B, 3, H, W] (``frozen``: `FrozenSD15` or SDXL's).

    Returns (latents, noisy latents, noise, timesteps [B]); latents in the UNet's dtype.
    """
    latents = frozen.encode_latents(pixel_values).to(frozen.unet.dtype)
    return (latents, *add_noise(frozen.noise_scheduler, latents))
