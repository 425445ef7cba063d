"""ConsistentID training objective on annotated FGID records (spec §4), on an SD1.5 or an SDXL base.

Per sample (dataset, deterministic)::

    text  = "Caption:" + first sentence of the overall caption + " Detail:" + marked facial caption + the rest
            (over 77 tokens: "Detail:" + marked facial + " Caption:" + overall)
          -> input_ids [77] (markers removed), facial_token_idx [5] + mask [5]
    regions paired with the flagged tokens: "release" (default; k-th region in region order Face, Eye, Ear,
          Nose, Lip -> k-th token in caption order, what `generate` expects) or "token" (each class word gets
          its own region); the pairing is recorded in the exported metadata
          -> region CLIP pixels [5, 3, 224, 224] (zero-padded), region masks [5, R, R], person mask [1, R, R]
    image [3, R, R], whole-photo CLIP pixels [3, 224, 224], ArcFace id [512] (normed)
    SDXL base (the release's SDXL recipe): both tokenizers get the text with the markers deleted, each padded its
          own way -> input_ids [77], input_ids_2 [77] (the flags still come from the marked text); the image's
          original size (H, W) [2] and the top-left of its centre crop in the image resized to R on its shorter
          side [2], SDXL's own convention (the release's script crops before it measures, so it always gives 0, 0)

Per step (objective, seeded RNG)::

    drop with p=0.1: text emptied (no facial tokens) and the whole-photo CLIP input zeroed
    prompt_embeds = FacialEncoder(text_encoder(ids), CLIP(regions))   ID tokens = image_proj(id, CLIP(photo))
    eps_pred = UNet(noisy, t, [prompt_embeds ; ID tokens]) with the cross-attention maps of the flagged
               tokens captured in down_blocks.1, down_blocks.2, mid_block, up_blocks.1, up_blocks.2
    SDXL: prompt_embeds from both encoders' penultimate states [B, 77, 768 + 1280]; the UNet also gets
          text_encoder_2's pooled embedding [B, 1280] and time ids (original size, crop, R, R) [B, 6]; the ID
          projector runs with its shortcut (as SDXL inference does); maps of down_blocks.2, mid_block and
          up_blocks.1 (the release's SDXL choice)
    with p=0.5 per sample: eps_pred and eps multiplied by the person mask
    loss = MSE(eps_pred, eps) + facial_weight (0.01) * localization loss (balanced L1 on those maps)

Trainable: FacialEncoder, image_proj, all LoRA, to_k_ip/to_v_ip (initialised from to_k/to_v). The export is our
safetensors layout with the caption, pairing and shortcut recorded (`idportrait convert --to release` writes the
release's keys).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from idportrait.adapters.consistentid.attention import (
    LOCALIZATION_LAYERS,
    attach_attention_capture,
    init_ip_from_base,
    install_consistentid_processors,
)
from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from idportrait.adapters.consistentid.text import (
    MAX_TOKENS,
    PAIRINGS,
    RELEASE_FORMATS,
    RELEASE_PAIRING,
    add_consistentid_tokens,
    facial_token_index,
    strip_markers,
    token_regions,
    tokenize_with_markers,
)
from idportrait.annotate.schema import load_parsing, record_at
from idportrait.errors import UserError
from idportrait.faces.labels import MAX_REGIONS
from idportrait.faces.parsing import region_images
from idportrait.faces.types import Parsing
from idportrait.imageio import load_image
from idportrait.shards.index import SampleIndex
from idportrait.training.data import centre_square, square_resize, to_pixel_values
from idportrait.training.localization_loss import localization_loss_from_token_maps
from idportrait.training.loop import TrainConfig, check_number
from idportrait.training.models import (
    base_kind,
    load_frozen_sd15,
    load_frozen_sdxl,
    noised_latents,
)
from idportrait.training.steps import stack_collate, tokenize

DROP_PROB = 0.1
SDXL_LOCALIZATION_LAYERS = ("down_blocks.2", "mid_block", "up_blocks.1")
"""The release's SDXL script localizes the middle 3 of the 7 SD1.5 block names (its SD1.5 script the middle 5)."""

_FIRST_SENTENCE = re.compile(r"^.*?[.!?](?=\s|$)", re.S)


def first_sentence(text: str) -> str:
    """The text up to and including the first ``.``/``!``/``?`` followed by a space or the end (all of it if none)."""
    match = _FIRST_SENTENCE.match(text)
    return match.group(0) if match else text


def training_text(tokenizer: Any, overall: str, marked_facial: str) -> str:
    """Spec §4 training text (with ``<|facial|>`` markers); the caption-last form when over 77 tokens."""
    head = first_sentence(overall)
    text = "Caption:" + head + " Detail:" + marked_facial + overall[len(head) :]
    if len(tokenizer(text, truncation=False).input_ids) > MAX_TOKENS:
        text = "Detail:" + marked_facial + " Caption:" + overall
    return text


def crop_top_left(width: int, height: int, size: int) -> tuple[int, int]:
    """(top, left) of `square_resize`'s centre crop, in the image resized to ``size`` on its shorter side (SDXL)."""
    left, top, side = centre_square(width, height)
    return round(top * size / side), round(left * size / side)


def resize_mask(mask: np.ndarray, image_size: tuple[int, int], size: int) -> torch.Tensor:
    """bool mask at parser resolution -> float [size, size]: stretched to the photo, then `square_resize`."""
    photo = Image.fromarray(mask.astype(np.uint8) * 255).resize(image_size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(square_resize(photo.convert("RGB"), size), dtype=np.float32)[..., 0] / 255.0)


class FGIDDataset(torch.utils.data.Dataset):
    """Annotated FGID records (one line of a folder's records.jsonl read when asked for) -> ConsistentID training
    tensors (see module docstring); SDXL items (plain token ids for both encoders, original size and crop) when
    given the second tokenizer. Runs in the DataLoader workers."""

    def __init__(self, records: SampleIndex, tokenizer: Any, processor: Any, resolution: int,
                 pairing: str = RELEASE_PAIRING, tokenizer_2: Any = None) -> None:  # fmt: skip
        self.pairing = pairing
        self.records = records
        self.tokenizer = tokenizer
        self.tokenizer_2 = tokenizer_2
        add_consistentid_tokens(self.tokenizer)
        self.processor = processor
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        root, record = record_at(self.records, index)
        image = load_image(root / record["image"])
        parsing = load_parsing(root, record)
        text = training_text(self.tokenizer, record["caption"], record["marked_facial_caption"])
        ids, positions = tokenize_with_markers(self.tokenizer, text)
        token_idx, token_mask = facial_token_index(positions)
        regions = token_regions(record["marked_regions"], sum(token_mask), self.pairing)
        ordered = Parsing(parsing.labels, {k: parsing.regions[k] for k in regions}, parsing.person_mask)

        size = self.resolution
        region_pixels = torch.zeros(MAX_REGIONS, 3, 224, 224)
        region_masks = torch.zeros(MAX_REGIONS, size, size)
        for k, (key, crop) in enumerate(zip(regions, region_images(image, ordered), strict=True)):
            region_pixels[k] = self.processor(images=crop, return_tensors="pt").pixel_values[0]
            region_masks[k] = resize_mask(ordered.regions[key], image.size, size)
        embedding = torch.tensor(record["face"]["embedding"], dtype=torch.float32)
        item = {
            "key": record["key"],
            "pixel_values": to_pixel_values(square_resize(image, size)),
            "clip_pixels": self.processor(images=image, return_tensors="pt").pixel_values[0],
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "facial_token_idx": torch.tensor(token_idx, dtype=torch.long),
            "facial_token_idx_mask": torch.tensor(token_mask, dtype=torch.bool),
            "region_pixels": region_pixels,
            "region_masks": region_masks,
            "person_mask": resize_mask(parsing.person_mask, image.size, size)[None],
            "id_embeds": embedding / embedding.norm().clamp_min(1e-12),
        }
        if self.tokenizer_2 is not None:
            plain = strip_markers(text)
            item["input_ids"] = tokenize(self.tokenizer, plain)
            item["input_ids_2"] = tokenize(self.tokenizer_2, plain)
            item["original_size"] = torch.tensor([image.height, image.width])
            item["crop_top_left"] = torch.tensor(crop_top_left(image.width, image.height, size))
        return item


class ConsistentIDModel(nn.Module):
    """Trainable parts; ``forward`` runs the frozen UNet (held outside the state dict) with them.

    ``image_proj_shortcut``: the ID projector adds its first ID tokens to the resampler's (SDXL).
    """

    def __init__(
        self,
        unet: nn.Module,
        facial_encoder: FacialEncoder,
        image_proj: ProjPlusModel,
        adapter_modules: nn.ModuleList,
        image_proj_shortcut: bool = False,
    ) -> None:
        super().__init__()
        self.facial_encoder = facial_encoder
        self.image_proj = image_proj
        self.adapter_modules = adapter_modules
        self.image_proj_shortcut = image_proj_shortcut
        object.__setattr__(self, "unet", unet)

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        prompt_embeds: torch.Tensor,
        region_embeds: torch.Tensor,
        facial_token_idx: torch.Tensor,
        facial_token_idx_mask: torch.Tensor,
        id_embeds: torch.Tensor,
        clip_embeds: torch.Tensor,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """noisy [B, 4, h, w], t [B], prompt [B, 77, D], regions [B, 5, 257, C], idx/mask [B, 5], id [B, 512],
        clip [B, 257, C] (SDXL: ``added_cond_kwargs`` text_embeds [B, 1280], time_ids [B, 6]) -> eps_pred
        [B, 4, h, w]."""
        class_mask = torch.zeros(prompt_embeds.shape[:2], dtype=torch.bool, device=prompt_embeds.device)
        class_mask.scatter_(1, facial_token_idx, facial_token_idx_mask)
        text = self.facial_encoder(prompt_embeds.float(), region_embeds.float(), class_mask, facial_token_idx_mask)
        id_tokens = self.image_proj(id_embeds, clip_embeds.float(), shortcut=self.image_proj_shortcut)
        context = torch.cat([text, id_tokens], dim=1).to(self.unet.dtype)
        return self.unet(
            noisy_latents, timesteps, encoder_hidden_states=context, added_cond_kwargs=added_cond_kwargs
        ).sample


ADAPTER_SIZES = ("release", "small")


def build_adapter(cross_dim: int, clip_dim: int, id_dim: int, size: str) -> tuple[FacialEncoder, ProjPlusModel]:
    """FacialEncoder + ProjPlusModel at the release's size, or "small" (2 layers, 4 heads of 16; for tiny bases)."""
    if size == "release":
        facial = FacialEncoder(embed_dim=cross_dim, clip_dim=clip_dim)
        return facial, ProjPlusModel(
            cross_attention_dim=cross_dim, id_embeddings_dim=id_dim, clip_embeddings_dim=clip_dim
        )
    if size != "small":
        raise ValueError(f"unknown adapter size {size!r}; expected one of {ADAPTER_SIZES}")
    facial = FacialEncoder(embed_dim=cross_dim, clip_dim=clip_dim, latent_dim=64, depth=2, dim_head=16, heads=4)
    proj = ProjPlusModel(
        cross_attention_dim=cross_dim,
        id_embeddings_dim=id_dim,
        clip_embeddings_dim=clip_dim,
        depth=2,
        dim_head=16,
        heads=4,
    )
    return facial, proj


class ConsistentIDObjective:
    """Builds ConsistentID on a frozen SD1.5 or SDXL base (told apart by its UNet) and computes its loss (see
    module docstring)."""

    name = "consistentid"
    data_kind = "fgid"
    embedding_size = None  # the ID projector is built for the records' embedding size

    @staticmethod
    def check_options(options: dict[str, Any]) -> None:
        check_number("--facial-weight", options.get("facial_weight", 0.01), minimum=0)
        check_number("--mask-loss-prob", options.get("mask_loss_prob", 0.5), minimum=0, maximum=1)
        for key, option, allowed in (("pairing", "--region-pairing", PAIRINGS),
                                     ("adapter_size", "--adapter-size", ADAPTER_SIZES)):  # fmt: skip
            value = options.get(key, allowed[0])
            if value not in allowed:
                raise UserError(f"{option} {value}: use one of {', '.join(allowed)}")

    def __init__(self, config: TrainConfig, data: SampleIndex, device: torch.device, weight_dtype: torch.dtype) -> None:
        options = config.method_options
        self.facial_weight = float(options.get("facial_weight", 0.01))
        self.mask_loss_prob = float(options.get("mask_loss_prob", 0.5))
        self.pairing = options.get("pairing", RELEASE_PAIRING)
        self.kind = base_kind(config.base_model)
        self.sdxl = self.kind == "sdxl"
        if self.sdxl:
            self.frozen = load_frozen_sdxl(config.base_model, device, weight_dtype, config.image_encoder)
        else:
            self.frozen = load_frozen_sd15(config.base_model, config.image_encoder, device, weight_dtype)
        self.dataset = FGIDDataset(
            data,
            self.frozen.tokenizer,
            self.frozen.image_processor,
            config.resolution,
            self.pairing,
            getattr(self.frozen, "tokenizer_2", None),
        )
        id_dim = len(record_at(data, 0)[1]["face"]["embedding"])
        unet = self.frozen.unet
        clip_dim = self.frozen.image_encoder.config.hidden_size
        size = options.get("adapter_size", "release")
        facial_encoder, image_proj = build_adapter(unet.config.cross_attention_dim, clip_dim, id_dim, size)
        adapter_modules = install_consistentid_processors(unet, rank=config.lora_rank, num_tokens=image_proj.num_tokens)
        init_ip_from_base(unet)
        self.capture = attach_attention_capture(unet, SDXL_LOCALIZATION_LAYERS if self.sdxl else LOCALIZATION_LAYERS)
        self.model = ConsistentIDModel(
            unet, facial_encoder, image_proj, adapter_modules.float(), image_proj_shortcut=self.sdxl
        ).to(device)
        self.empty_ids = torch.tensor(
            self.frozen.tokenizer("", max_length=MAX_TOKENS, padding="max_length", truncation=True).input_ids
        )
        self.empty_ids_2 = tokenize(self.frozen.tokenizer_2, "") if self.sdxl else None

    collate = staticmethod(stack_collate)

    def predict(
        self, model: nn.Module, batch: dict[str, Any], noisy: torch.Tensor, t: torch.Tensor, drop: torch.Tensor
    ):
        """eps_pred [B, 4, h, w] and the captured maps {layer: [B, heads, Nq, 5]} for one batch."""
        frozen = self.frozen
        keep = ~drop
        input_ids = torch.where(drop[:, None], self.empty_ids.to(drop.device), batch["input_ids"])
        token_mask = batch["facial_token_idx_mask"] & keep[:, None]
        added = None
        if self.sdxl:
            input_ids_2 = torch.where(drop[:, None], self.empty_ids_2.to(drop.device), batch["input_ids_2"])
            prompt_embeds, pooled = frozen.encode_text(input_ids, input_ids_2)
            target_size = torch.full_like(batch["original_size"], batch["pixel_values"].shape[-1])
            time_ids = torch.cat([batch["original_size"], batch["crop_top_left"], target_size], dim=1)
            added = {"text_embeds": pooled, "time_ids": time_ids.to(pooled.dtype)}
        else:
            prompt_embeds = frozen.encode_text(input_ids)
        region_embeds = frozen.encode_images(batch["region_pixels"])
        clip_embeds = frozen.encode_images(batch["clip_pixels"] * keep[:, None, None, None])
        self.capture.token_idx = batch["facial_token_idx"]
        try:
            pred = model(noisy, t, prompt_embeds, region_embeds, batch["facial_token_idx"], token_mask,
                         batch["id_embeds"], clip_embeds, added)  # fmt: skip
        finally:
            self.capture.token_idx = None
        return pred, self.capture.pop(), token_mask

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        frozen = self.frozen
        latents, noisy, noise, t = noised_latents(frozen, batch["pixel_values"])
        b = latents.shape[0]
        drop = torch.rand(b, device=latents.device) < DROP_PROB
        pred, maps, token_mask = self.predict(model, batch, noisy, t, drop)

        pred, target = pred.float(), noise.float()
        use_mask = (torch.rand(b, device=latents.device) < self.mask_loss_prob)[:, None, None, None]
        person = F.interpolate(batch["person_mask"], size=latents.shape[-2:], mode="bilinear", antialias=True)
        weight = torch.where(use_mask, person, torch.ones_like(person))
        mse = F.mse_loss(pred * weight, target * weight)
        loc = localization_loss_from_token_maps(maps, batch["region_masks"], token_mask)
        loss = mse + self.facial_weight * loc
        return loss, {"loss": loss.item(), "mse": mse.item(), "localization": loc.item()}

    def export(self, model: nn.Module, path: Path) -> Path:
        """Our ConsistentID safetensors layout (what ``idportrait generate`` loads), with the pairing, the base's
        release caption and the projector's shortcut recorded."""
        from idportrait.adapters.consistentid.checkpoint import save_consistentid_safetensors

        return save_consistentid_safetensors(
            path,
            model.facial_encoder,
            model.image_proj,
            model.adapter_modules,
            image_proj_shortcut=model.image_proj_shortcut,
            pairing=self.pairing,
            caption=RELEASE_FORMATS[self.kind].caption,
        )
