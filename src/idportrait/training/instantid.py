"""InstantID training objective on curated FaceID shards (SDXL base).

Per step::

    image [B, 3, R, R] --VAE--> latents; noise, t ~ U{0..999}
    drop (per sample, uniform r): r < 0.05 face dropped, r < 0.10 text dropped, r < 0.15 both
    caption --both text encoders--> text [B, 77, 2048], pooled [B, 1280]; time ids (R, R, 0, 0, R, R)
    face embedding [B, 512] --Resampler--> face tokens [B, 16, 2048]
    keypoints (rescaled with the crop) --draw_kps--> control image [B, 3, R, R] in [0, 1]
    IdentityNet(noisy, t, face tokens only, control) -> residuals
    eps_pred = UNet(noisy, t, text, residuals, decoupled attention over the face tokens)
    loss = MSE(eps_pred, eps)

Trainable: the Resampler, to_k_ip/to_v_ip (initialised from to_k/to_v) and IdentityNet (initialised from the
UNet, as ControlNets are). Export: ``adapter.safetensors`` in the released ``ip-adapter.bin`` layout
(``image_proj.*``, ``ip_adapter.{i}.to_k_ip.weight``; diffusers' ``load_ip_adapter`` and `load_instantid` read
it) and IdentityNet as a diffusers ``ControlNetModel/`` folder beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from idportrait import registry
from idportrait.adapters.consistentid.resampler import PerceiverResampler
from idportrait.adapters.instantid.checkpoint import NUM_TOKENS, RELEASE_RESAMPLER
from idportrait.adapters.instantid.kps import draw_kps
from idportrait.errors import UserError
from idportrait.shards.reader import FaceIDSamples
from idportrait.training.data import (
    centre_square,
    decode_sample_image,
    face_embedding,
    sample_face,
    square_resize,
    to_pixel_values,
)
from idportrait.training.loop import TrainConfig
from idportrait.training.models import load_frozen_sdxl, noised_latents
from idportrait.training.steps import sample_drops, stack_collate, tokenize

DROP_FACE, DROP_TEXT, DROP_BOTH = 0.05, 0.05, 0.05
CONTROL_CHANNELS = (16, 32, 96, 256)
"""ControlNet conditioning-embedding widths; one block per factor 2 of the VAE's downsampling (SDXL: 8 -> 4)."""


def install_ip_processors(unet: nn.Module, num_tokens: int = NUM_TOKENS) -> dict[int, nn.Module]:
    """diffusers' decoupled-attention processors on every cross-attention (to_k_ip/to_v_ip from to_k/to_v).

    Returns processor index (``unet.attn_processors`` order, the ``ip_adapter`` key prefix) -> processor.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0, IPAdapterAttnProcessor2_0

    processors, trainable = {}, {}
    for i, name in enumerate(unet.attn_processors):
        attn = unet.get_submodule(name.removesuffix(".processor"))
        if not attn.is_cross_attention:
            processors[name] = AttnProcessor2_0()
            continue
        proc = IPAdapterAttnProcessor2_0(
            hidden_size=attn.to_k.out_features,
            cross_attention_dim=attn.to_k.in_features,
            num_tokens=[num_tokens],
        )
        with torch.no_grad():
            proc.to_k_ip[0].weight.copy_(attn.to_k.weight)
            proc.to_v_ip[0].weight.copy_(attn.to_v.weight)
        processors[name] = proc.to(next(unet.parameters()).device)
        trainable[i] = processors[name]
    unet.set_attn_processor(processors)
    return trainable


class InstantIDModel(nn.Module):
    """Trainable parts; ``forward`` runs the frozen UNet (held outside the state dict) with them."""

    def __init__(self, unet: nn.Module, resampler: nn.Module, ip_processors: dict[int, nn.Module], identitynet):
        super().__init__()
        from diffusers.models.embeddings import MultiIPAdapterImageProjection

        self.resampler = resampler
        self.ip_processors = nn.ModuleDict({str(i): p for i, p in ip_processors.items()})
        self.identitynet = identitynet
        unet.encoder_hid_proj = MultiIPAdapterImageProjection([resampler])
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        object.__setattr__(self, "unet", unet)

    def forward(self, noisy, t, text, pooled, time_ids, id_embeds, control) -> torch.Tensor:
        """noisy [B, 4, h, w], t [B], text [B, 77, D], pooled [B, P], time_ids [B, 6], id [B, E],
        control [B, 3, H, W] -> eps_pred [B, 4, h, w]."""
        added = {"text_embeds": pooled, "time_ids": time_ids}
        tokens = self.resampler(id_embeds[:, None].to(text.dtype))
        down, mid = self.identitynet(
            noisy, t, encoder_hidden_states=tokens, controlnet_cond=control, added_cond_kwargs=added, return_dict=False
        )
        return self.unet(
            noisy,
            t,
            encoder_hidden_states=text,
            added_cond_kwargs={**added, "image_embeds": [id_embeds[:, None, None].to(text.dtype)]},
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample


class InstantIDShardDataset(torch.utils.data.Dataset):
    """FaceID samples (read when asked for) -> square image [3, R, R], keypoint control image [3, R, R], token ids
    of both tokenizers [77] each, face embedding [512]. Runs in the DataLoader workers."""

    def __init__(self, samples: FaceIDSamples, tokenizers: tuple[Any, Any], resolution: int) -> None:
        self.samples = samples
        self.tokenizers = tokenizers
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        face = sample_face(sample)
        image = decode_sample_image(sample)
        res = self.resolution
        left, top, side = centre_square(*image.size)
        square = square_resize(image, res)
        kps = (np.asarray(face["kps"], np.float32) - [left, top]) * (res / side)
        control = torch.from_numpy(np.asarray(draw_kps((res, res), kps), np.float32) / 255.0).permute(2, 0, 1)
        ids = [tokenize(tok, sample.caption) for tok in self.tokenizers]
        return {
            "key": sample.name,
            "pixel_values": to_pixel_values(square),
            "control": control,
            "input_ids": ids[0],
            "input_ids_2": ids[1],
            "id_embeds": face_embedding(sample.record),
        }


class InstantIDObjective:
    """Builds InstantID on a frozen SDXL base and computes its loss (see the module docstring)."""

    name = "instantid"
    data_kind = "faceid"
    embedding_size = RELEASE_RESAMPLER["embedding_dim"]

    @staticmethod
    def check_options(options: dict[str, Any]) -> None:
        for key, option in (("dim", "--resampler-dim"), ("heads", "--resampler-heads")):
            value = options.get(key, RELEASE_RESAMPLER[key])
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{option} {value}: must be a whole number of at least 1")

    def __init__(
        self, config: TrainConfig, data: FaceIDSamples, device: torch.device, weight_dtype: torch.dtype
    ) -> None:
        from diffusers import ControlNetModel

        self.frozen = load_frozen_sdxl(config.base_model, device, weight_dtype)
        unet, vae = self.frozen.unet, self.frozen.vae
        blocks = len(vae.config.block_out_channels)  # one conditioning block per VAE level
        identitynet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONTROL_CHANNELS[:blocks])
        options = {**RELEASE_RESAMPLER, **config.method_options}
        resampler = PerceiverResampler(
            dim=options["dim"],
            depth=options["depth"],
            dim_head=64,
            heads=options["heads"],
            embedding_dim=options["embedding_dim"],
            output_dim=unet.config.cross_attention_dim,
            num_latents=NUM_TOKENS,
        )
        ip_processors = install_ip_processors(unet)
        self.model = InstantIDModel(unet, resampler, ip_processors, identitynet.float().train()).to(device)
        self.dataset = InstantIDShardDataset(data, (self.frozen.tokenizer, self.frozen.tokenizer_2), config.resolution)
        self.resolution = config.resolution
        self.empty_ids = (tokenize(self.frozen.tokenizer, ""), tokenize(self.frozen.tokenizer_2, ""))

    collate = staticmethod(stack_collate)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        frozen = self.frozen
        device = batch["pixel_values"].device
        latents, noisy, noise, t = noised_latents(frozen, batch["pixel_values"])
        drop_face, drop_text = sample_drops(latents.shape[0], device, DROP_FACE, DROP_TEXT, DROP_BOTH)
        ids = torch.where(drop_text[:, None], self.empty_ids[0].to(device), batch["input_ids"])
        ids_2 = torch.where(drop_text[:, None], self.empty_ids[1].to(device), batch["input_ids_2"])
        text, pooled = frozen.encode_text(ids, ids_2)
        res = self.resolution
        time_ids = torch.tensor([[res, res, 0, 0, res, res]], device=device, dtype=text.dtype)
        id_embeds = batch["id_embeds"] * (~drop_face)[:, None]
        pred = model(noisy, t, text, pooled, time_ids.expand(len(t), -1), id_embeds, batch["control"])
        loss = F.mse_loss(pred.float(), noise.float())
        return loss, {"loss": loss.item(), "mse": loss.item()}

    def export(self, model: nn.Module, path: Path) -> Path:
        """``path``: the face adapter in the released layout; IdentityNet beside it in the release's folder name
        (``path.parent / registry.INSTANTID_CONTROLNET_SUBFOLDER``)."""
        from idportrait.imageio import write_safetensors

        flat = {f"image_proj.{k}": v.detach().cpu().contiguous() for k, v in model.resampler.state_dict().items()}
        for i, proc in model.ip_processors.items():
            flat[f"ip_adapter.{i}.to_k_ip.weight"] = proc.to_k_ip[0].weight.detach().cpu().contiguous()
            flat[f"ip_adapter.{i}.to_v_ip.weight"] = proc.to_v_ip[0].weight.detach().cpu().contiguous()
        write_safetensors(path, flat, {"format": "instantid-ip-adapter", "num_tokens": str(NUM_TOKENS)})
        model.identitynet.save_pretrained(Path(path).parent / registry.INSTANTID_CONTROLNET_SUBFOLDER)
        return Path(path)
