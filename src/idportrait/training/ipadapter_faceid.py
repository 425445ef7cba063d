"""IP-Adapter-FaceID(-Plus) training objective on curated FaceID shards.

Per step::

    image [B, 3, R, R] --VAE--> latents; noise, t ~ U{0..999}
    drop (per sample, uniform r): r < 0.05 ID dropped, r < 0.10 text dropped, r < 0.15 both   (IP-Adapter recipe)
    caption --text encoder--> text [B, 77, D];  id [B, 512] (+ CLIP of the aligned face [B, 257, C] for Plus)
    ID tokens = image_proj(...) [B, 4, D];  eps_pred = UNet(noisy, t, [text ; ID tokens])
    loss = MSE(eps_pred, eps)

Trainable: the projector, all LoRA (rank 128) and to_k_ip/to_v_ip (initialised from to_k/to_v).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from idportrait.adapters.consistentid.attention import init_ip_from_base, install_consistentid_processors
from idportrait.adapters.ipadapter_faceid import FACEID_VARIANTS, build_image_proj, save_faceid_adapter
from idportrait.errors import UserError
from idportrait.shards.reader import FaceIDSamples
from idportrait.training.data import (
    decode_sample_image,
    face_embedding,
    sample_face,
    square_resize,
    to_pixel_values,
)
from idportrait.training.loop import TrainConfig
from idportrait.training.models import load_frozen_sd15, noised_latents
from idportrait.training.steps import sample_drops, stack_collate, tokenize

DROP_ID, DROP_TEXT, DROP_BOTH = 0.05, 0.05, 0.05


class FaceIDModel(nn.Module):
    """Trainable parts; ``forward`` runs the frozen UNet (held outside the state dict) with them."""

    def __init__(self, unet: nn.Module, image_proj: nn.Module, adapter_modules: nn.ModuleList, plus: bool) -> None:
        super().__init__()
        self.image_proj = image_proj
        self.adapter_modules = adapter_modules
        self.plus = plus
        object.__setattr__(self, "unet", unet)

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        text_embeds: torch.Tensor,
        id_embeds: torch.Tensor,
        clip_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """noisy [B, 4, h, w], t [B], text [B, 77, D], id [B, 512], clip [B, 257, C] -> eps_pred [B, 4, h, w]."""
        id_tokens = self.image_proj(id_embeds, clip_embeds) if self.plus else self.image_proj(id_embeds)
        context = torch.cat([text_embeds, id_tokens.to(text_embeds.dtype)], dim=1)
        return self.unet(noisy_latents, timesteps, encoder_hidden_states=context).sample


class FaceIDShardDataset(torch.utils.data.Dataset):
    """FaceID samples (read when asked for) -> image [3, R, R], caption ids [77], face embedding [512]
    (and the aligned face's CLIP pixels [3, 224, 224] for Plus). Runs in the DataLoader workers."""

    def __init__(self, samples: FaceIDSamples, tokenizer: Any, processor: Any, resolution: int, plus: bool) -> None:
        self.samples = samples
        self.tokenizer = tokenizer
        self.processor = processor
        self.resolution = resolution
        self.plus = plus

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        face = sample_face(sample)
        image = decode_sample_image(sample)
        item = {
            "key": sample.name,
            "pixel_values": to_pixel_values(square_resize(image, self.resolution)),
            "input_ids": tokenize(self.tokenizer, sample.caption),
            "id_embeds": face_embedding(sample.record),
        }
        if self.plus:
            from idportrait.faces.align import norm_crop

            aligned = norm_crop(np.asarray(image), np.asarray(face["kps"], dtype=np.float32), 224)
            item["clip_pixels"] = self.processor(images=aligned, return_tensors="pt").pixel_values[0]
        return item


class FaceIDObjective:
    """Builds the FaceID model on a frozen SD1.5 base and computes its loss (see module docstring)."""

    name = "ipadapter-faceid"
    data_kind = "faceid"
    embedding_size = 512  # ArcFace, the released projectors' input

    @staticmethod
    def check_options(options: dict[str, Any]) -> None:
        variant = options.get("variant", "faceid")
        if variant not in FACEID_VARIANTS:
            raise UserError(f"unknown IP-Adapter-FaceID variant {variant!r}; use one of {', '.join(FACEID_VARIANTS)}")

    def __init__(
        self, config: TrainConfig, data: FaceIDSamples, device: torch.device, weight_dtype: torch.dtype
    ) -> None:
        variant = config.method_options.get("variant", "faceid")
        self.plus = variant == "faceid-plus"
        self.frozen = load_frozen_sd15(
            config.base_model, config.image_encoder if self.plus else None, device, weight_dtype
        )
        self.variant = variant
        unet = self.frozen.unet
        clip_dim = self.frozen.image_encoder.config.hidden_size if self.plus else 1280
        image_proj = build_image_proj(variant, unet.config.cross_attention_dim, clip_dim)
        adapter_modules = install_consistentid_processors(unet, rank=config.lora_rank, num_tokens=4)
        init_ip_from_base(unet)
        self.model = FaceIDModel(unet, image_proj, adapter_modules.float(), self.plus).to(device)
        self.dataset = FaceIDShardDataset(
            data, self.frozen.tokenizer, self.frozen.image_processor, config.resolution, self.plus
        )
        self.empty_ids = tokenize(self.frozen.tokenizer, "")

    collate = staticmethod(stack_collate)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        frozen = self.frozen
        device = batch["pixel_values"].device
        latents, noisy, noise, t = noised_latents(frozen, batch["pixel_values"])
        drop_id, drop_text = sample_drops(latents.shape[0], device, DROP_ID, DROP_TEXT, DROP_BOTH)
        input_ids = torch.where(drop_text[:, None], self.empty_ids.to(device), batch["input_ids"])
        text = frozen.encode_text(input_ids)
        id_embeds = batch["id_embeds"] * (~drop_id)[:, None]
        clip_embeds = None
        if self.plus:
            clip_pixels = batch["clip_pixels"] * (~drop_id)[:, None, None, None]
            clip_embeds = frozen.encode_images(clip_pixels).float()
        pred = model(noisy, t, text, id_embeds, clip_embeds)
        loss = F.mse_loss(pred.float(), noise.float())
        return loss, {"loss": loss.item(), "mse": loss.item()}

    def export(self, model: nn.Module, path: Path) -> Path:
        """The released ``{"image_proj", "ip_adapter"}`` layout (diffusers' ``load_ip_adapter`` reads it)."""
        metadata = {"format": "ip-adapter-faceid", "variant": self.variant, "lora_rank": str(_rank(model))}
        return save_faceid_adapter(path, model.image_proj, model.adapter_modules, metadata)


def _rank(model: FaceIDModel) -> int:
    return int(model.adapter_modules[0].to_q_lora.down.weight.shape[0])
