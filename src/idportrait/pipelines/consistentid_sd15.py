"""ConsistentID on any SD1.5-family base, as a diffusers pipeline.

    pipe = ConsistentIDPipeline.from_pretrained(base)                  # any SD1.5 diffusers folder / hub id
    pipe.load_consistentid("JackAILab/ConsistentID")                   # FacialEncoder + ID projector + processors
    face = pipe.prepare_face_inputs(photo, face_analyzer, face_parser)  # once per identity
    images = pipe(["a photo of a person at the beach", ...], face_inputs=face, generator=...).images

Data flow of one call (spec §3.4-3.7)::

    identity (cached per FaceInputs):  image_proj(id, CLIP(photo))             id_tokens      [1, 4, D]
                                       FacialEncoder.encode_regions(regions)   region_tokens  [1, 5, D]
    pipeline (cached once):            image_proj(0, CLIP(zero image))         uncond_tokens  [1, 4, D]
    per prompt:  caption marking + prompt assembly -> ids, class-token flags, text-only ids
                 text encoder -> fuse(region_tokens at flags)          augmented   [P, 77, D]
                 text encoder (text-only ids)                          text_only   [P, 77, D]
                 text encoder (negative) -> fuse(zero-image tokens)    negative    [P, 77, D]
    contexts (81 tokens): [negative; uncond_tokens], [text_only; id_tokens], [augmented; id_tokens]
    denoising: diffusers' StableDiffusionPipeline with these contexts (`consistentid_modes.consistentid_call`):
               step i <= merge step (0.6 of the steps) uses the text-only context, later the augmented one;
               CFG batches [negative, positive] in one UNet call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from diffusers import StableDiffusionPipeline
from diffusers.pipelines.stable_diffusion import StableDiffusionPipelineOutput
from PIL import Image

from idportrait.adapters.consistentid.attention import install_consistentid_processors
from idportrait.adapters.consistentid.text import (
    PAIRINGS,
    RELEASE_PAIRING,
    SD15_FORMAT,
    FacialPrompt,
    PromptFormat,
    add_consistentid_tokens,
    build_facial_prompt,
    token_regions,
)
from idportrait.errors import CheckpointError, UserError
from idportrait.faces.analyzer import FaceFinder, FaceParser
from idportrait.hub import fetch, hub_file
from idportrait.pipelines.common import broadcast_prompts
from idportrait.pipelines.consistentid_modes import consistentid_call, mode_pipeline
from idportrait.pipelines.face_inputs import FaceInputs, compute_face_inputs, zero_image_embeds
from idportrait.registry import CLIP_VIT_H, CONSISTENTID_GUIDANCE, CONSISTENTID_REPO, CONSISTENTID_SD15_FILE

DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = CONSISTENTID_GUIDANCE
DEFAULT_MERGE_FRACTION = 0.6
"""Release demo values: 50 Euler steps, CFG 5.0, fused facial prompt from step 31 on (``start_merge_step=30``,
0.6 of the schedule; the release's call signature defaults to 0, i.e. only step 0 uses the text-only prompt)."""


class PromptEmbeds(NamedTuple):
    """One text-encoder call's prompt embeddings, each [P, 77, D]; ``pooled`` [3P, D2] (rows augmented,
    text-only, negative) from an SDXL second encoder, None for SD1.5."""

    augmented: torch.Tensor
    text_only: torch.Tensor
    negative: torch.Tensor
    pooled: torch.Tensor | None


class IDContexts(NamedTuple):
    """The UNet contexts of one call, each [B, 81, D] (prompt embeddings + ID tokens); ``pooled`` for SDXL:
    the matching pooled embeddings, each [B, D2]."""

    negative: torch.Tensor
    text_only: torch.Tensor
    augmented: torch.Tensor
    pooled: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None


class ConsistentIDMixin:
    """ConsistentID's loading, per-identity tokens and prompt handling, shared by the SD1.5 and SDXL pipelines.

    Mixed into a diffusers pipeline with ``unet``, ``tokenizer``, ``image_encoder`` and ``feature_extractor``;
    the pipeline supplies ``encode_prompts`` (its text encoders, built on `facial_prompts` and `fuse_facial`).
    ``prompt_format``: the base's release prompt assembly; ``parse_size``: the square size face parsing runs at
    (None: the parser's own, 512 for BiSeNet).
    """

    facial_encoder: torch.nn.Module | None = None
    image_proj: torch.nn.Module | None = None
    prompt_format: PromptFormat = SD15_FORMAT
    parse_size: int | None = None

    # ------------------------------------------------------------------ loading
    def load_consistentid(
        self,
        path_or_hub_id: str | Path | dict = CONSISTENTID_REPO,
        weight_name: str = CONSISTENTID_SD15_FILE,
        image_encoder: str | Path | None = None,
        check_release_unet: bool = True,
    ) -> None:
        """Load a ConsistentID checkpoint (release ``.bin`` or our safetensors) and install its processors.

        ``path_or_hub_id``: a checkpoint file, a folder holding ``weight_name``, a hub repo id, or the release's
        nested dict itself (``{"FacialEncoder": ..., "image_proj_model": ..., "adapter_modules": ...}``).
        ``image_encoder``: CLIP vision tower (path or hub id); default: the base's own ``image_encoder``
        when it has one, else ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``.
        ``check_release_unet=False`` skips the check of ``adapter_modules`` against the release base's UNet (for
        a base with another UNet of the same width, such as a small test world); the processors are then checked
        strictly against this pipeline's UNet only.
        Raises `CheckpointError` for a checkpoint of another method or one that does not fit the base.
        """
        from idportrait.adapters.consistentid.checkpoint import (
            build_consistentid,
            load_adapter_modules,
            load_consistentid_weights,
            weights_from_release_state,
        )

        if isinstance(path_or_hub_id, dict):
            path = "<state dict>"
            weights = weights_from_release_state(path_or_hub_id, path, check_release_unet)
        else:
            path = hub_file(str(path_or_hub_id), weight_name, "ConsistentID checkpoint", "--adapter")
            weights, _ = load_consistentid_weights(path, check_release_unet)
        facial_encoder, image_proj, config = build_consistentid(weights, path)
        cross_dim = self.unet.config.cross_attention_dim
        if config["cross_attention_dim"] != cross_dim:
            raise CheckpointError(
                f"ConsistentID checkpoint for cross-attention dim {config['cross_attention_dim']}, but the base "
                f"UNet has {cross_dim} (SD1.5 needs 768; SDXL checkpoints need an SDXL base)",
                path,
            )
        if config["pairing"] not in PAIRINGS:
            raise CheckpointError(
                f"unknown region/token pairing {config['pairing']!r} (expected one of {PAIRINGS})", path
            )
        processors = install_consistentid_processors(
            self.unet, rank=config["rank"], num_tokens=config["num_tokens"], scale=1.0
        )
        load_adapter_modules(processors, weights, path)
        self.set_consistentid(facial_encoder, image_proj, dict(config, checkpoint=str(path)), image_encoder)

    def set_consistentid(
        self,
        facial_encoder: torch.nn.Module,
        image_proj: torch.nn.Module,
        config: dict[str, Any],
        image_encoder: str | Path | None = None,
    ) -> None:
        """Attach built ConsistentID modules (the processors must already be installed on ``self.unet``)."""
        param = next(self.unet.parameters())
        self.facial_encoder = facial_encoder.to(param.device, param.dtype).eval()
        self.image_proj = image_proj.to(param.device, param.dtype).eval()
        self.consistentid_config = config
        add_consistentid_tokens(self.tokenizer)
        self._uncond_cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}
        self._zero_clip: torch.Tensor | None = None
        if image_encoder is not None or self.image_encoder is None:
            self._load_image_encoder(str(image_encoder or CLIP_VIT_H))
        if self.feature_extractor is None:
            from transformers import CLIPImageProcessor

            self.register_modules(feature_extractor=CLIPImageProcessor())

    def _load_image_encoder(self, name: str) -> None:
        from transformers import CLIPVisionModelWithProjection

        param = next(self.unet.parameters())
        encoder = fetch(
            "CLIP image encoder",
            name,
            "--image-encoder",
            lambda local: CLIPVisionModelWithProjection.from_pretrained(
                name, dtype=param.dtype, local_files_only=local
            ),
        )
        self.register_modules(image_encoder=encoder.to(param.device).eval())

    # ------------------------------------------------------------------ per identity
    def zero_clip_embeds(self) -> torch.Tensor:
        """CLIP features of the zero image [257, C], computed once per pipeline."""
        if self._zero_clip is None:
            self._zero_clip = zero_image_embeds(self.image_encoder)
        return self._zero_clip

    def prepare_face_inputs(
        self,
        image: Image.Image,
        face_analyzer: FaceFinder,
        face_parser: FaceParser,
        source: str = "<image>",
        allow_no_face: bool = False,
    ) -> FaceInputs:
        """Face embedding, parsing, region images and CLIP features of one photo (see `FaceInputs`).

        No face raises `NoFaceError`; with ``allow_no_face`` the photo gets a zero identity embedding and no
        regions instead (the release's silent behaviour).
        """
        self._require_adapter()
        id_dim = self.consistentid_config.get("id_dim") if allow_no_face else None
        return compute_face_inputs(
            image,
            face_analyzer,
            face_parser,
            self.image_encoder,
            self.feature_extractor,
            self.zero_clip_embeds(),
            source,
            no_face_id_dim=id_dim,
            parse_size=self.parse_size,
        )

    @torch.no_grad()
    def identity_tokens(self, face: FaceInputs, device: torch.device, dtype: torch.dtype) -> tuple:
        """(id_tokens [1, 4, D], region_tokens [1, 5, D]) for one identity, cached on the `FaceInputs`."""
        key = ("consistentid", id(self.image_proj), id(self.facial_encoder), str(device), dtype)
        if key not in face.cache:
            check_face_inputs(face, self.consistentid_config)
            id_embed = face.id_embedding[None].to(device, dtype)
            shortcut = bool(self.consistentid_config.get("image_proj_shortcut", False))
            id_tokens = self.image_proj(id_embed, face.clip_embeds[None].to(device, dtype), shortcut=shortcut)
            region_tokens = self.facial_encoder.encode_regions(face.region_embeds[None].to(device, dtype))
            face.cache.clear()
            face.cache[key] = (id_tokens, region_tokens)
        return face.cache[key]

    @torch.no_grad()
    def uncond_tokens(self, id_dim: int, device: torch.device, dtype: torch.dtype) -> tuple:
        """(uncond ID tokens [1, 4, D] = image_proj(0, CLIP(zero)), zero-image region tokens [1, 5, D])."""
        key = (id_dim, str(device), dtype)
        if key not in self._uncond_cache:
            zero = self.zero_clip_embeds()[None].to(device, dtype)
            shortcut = bool(self.consistentid_config.get("image_proj_shortcut", False))
            uncond_id = self.image_proj(torch.zeros(1, id_dim, device=device, dtype=dtype), zero, shortcut=shortcut)
            zero_regions = self.facial_encoder.encode_regions(zero[:, None].expand(1, 5, -1, -1))
            self._uncond_cache[key] = (uncond_id, zero_regions)
        return self._uncond_cache[key]

    def _resolve_face_inputs(
        self,
        face_inputs: FaceInputs | None,
        face_image: Image.Image | None,
        face_analyzer: FaceFinder | None,
        face_parser: FaceParser | None,
    ) -> FaceInputs:
        """The call's face inputs: ``face_inputs`` as given, or computed from ``face_image``."""
        if face_inputs is not None:
            return face_inputs
        if face_image is None or face_analyzer is None or face_parser is None:
            raise ValueError("pass face_inputs, or face_image with face_analyzer and face_parser")
        return self.prepare_face_inputs(face_image, face_analyzer, face_parser)

    def id_contexts(
        self,
        prompts: list[str],
        negative_prompt: str | list[str] | None,
        face: FaceInputs,
        num_images_per_prompt: int,
        device: torch.device,
        dtype: torch.dtype,
        **encode_options: Any,
    ) -> IDContexts:
        """Contexts [B, 81, D]: prompt embeddings [P, 77, D] repeated per image, then the ID tokens [1, 4, D]
        (zero-image tokens for the negative); SDXL's pooled embeddings repeated the same way.
        ``encode_options`` go to the pipeline's ``encode_prompts``."""
        n = len(prompts)
        negatives = None if negative_prompt is None else broadcast_prompts(negative_prompt, n, "negative_prompt")
        self.facial_encoder.to(device, dtype)
        self.image_proj.to(device, dtype)
        id_tokens, region_tokens = self.identity_tokens(face, device, dtype)
        uncond_id, zero_regions = self.uncond_tokens(face.id_embedding.shape[-1], device, dtype)
        embeds = self.encode_prompts(prompts, negatives, face, region_tokens, zero_regions, device, **encode_options)

        def context(text: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            text = text.repeat_interleave(num_images_per_prompt, dim=0)
            return torch.cat([text.to(dtype), ids.to(dtype).expand(text.shape[0], -1, -1)], dim=1)

        pooled = None
        if embeds.pooled is not None:
            per_image = embeds.pooled.to(dtype).repeat_interleave(num_images_per_prompt, dim=0)
            augmented, text_only, negative = per_image.chunk(3)
            pooled = (negative, text_only, augmented)
        return IDContexts(
            context(embeds.negative, uncond_id),
            context(embeds.text_only, id_tokens),
            context(embeds.augmented, id_tokens),
            pooled,
        )

    def _require_adapter(self) -> None:
        if self.facial_encoder is None or self.image_proj is None:
            raise RuntimeError("call load_consistentid(...) before generating")

    # ------------------------------------------------------------------ text
    def facial_prompts(self, prompts: list[str], face: FaceInputs) -> list[FacialPrompt]:
        """Each prompt marked with the face's regions: the checkpoint's caption (default the base's release caption)
        joined as the base's release does (`prompt_format`)."""
        caption = self.consistentid_config.get("caption", self.prompt_format.caption)
        joiner = self.prompt_format.joiner
        return [build_facial_prompt(self.tokenizer, p, face.region_names, caption, joiner) for p in prompts]

    def fuse_facial(
        self,
        facial: list[FacialPrompt],
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor,
        face: FaceInputs,
        region_tokens: torch.Tensor,
        zero_region_tokens: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(augmented, negative) [P, 77, D]: region tokens fused at each prompt's flagged class tokens, and the zero
        image's region tokens at the same positions of the negative prompt's embeddings.

        The checkpoint's pairing decides which region each flagged class token is fused with (release: the k-th
        region kept by caption marking; token: the class word's own region); flags lost to truncation drop their
        regions.
        """
        n = len(facial)
        device = prompt_embeds.device
        flags = torch.tensor([f.class_tokens_mask for f in facial], device=device)
        valid = torch.tensor([f.facial_token_idx_mask for f in facial], device=device)
        regions = zero_region_tokens.expand(n, -1, -1).clone()
        pairing = self.consistentid_config.get("pairing", RELEASE_PAIRING)
        for k, f in enumerate(facial):
            keys = token_regions(f.regions, int(valid[k].sum()), pairing)
            rows = [face.region_names.index(key) for key in keys]
            regions[k, : len(rows)] = region_tokens[0, rows]
        augmented = self.facial_encoder.fuse(prompt_embeds, regions, flags, valid)
        negative = self.facial_encoder.fuse(negative_embeds, zero_region_tokens.expand(n, -1, -1), flags, valid)
        return augmented, negative


class ConsistentIDPipeline(ConsistentIDMixin, StableDiffusionPipeline):
    """`StableDiffusionPipeline` + ConsistentID (load with `load_consistentid`, then call with face inputs)."""

    @torch.no_grad()
    def encode_prompts(
        self,
        prompts: list[str],
        negative_prompts: list[str] | None,
        face: FaceInputs,
        region_tokens: torch.Tensor,
        zero_region_tokens: torch.Tensor,
        device: torch.device,
    ) -> PromptEmbeds:
        """(augmented, text_only, negative) prompt embeddings, each [P, 77, D], in one text-encoder call.

        text_only: the marked prompt with the markers deleted; augmented: the marked prompt's ids (markers removed)
        with the regions fused (`fuse_facial`); negative: the negative prompt ("" when None) with the zero image's
        region tokens at the positive prompt's flags.
        """
        facial = self.facial_prompts(prompts, face)
        negatives = negative_prompts if negative_prompts is not None else [""] * len(prompts)
        neg_ids = self.tokenizer(
            negatives, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids
        ids = torch.cat(
            [
                torch.tensor([f.input_ids for f in facial]),
                torch.tensor([f.text_only_input_ids for f in facial]),
                neg_ids,
            ]
        )
        embeds = self.text_encoder(ids.to(device))[0].to(region_tokens.dtype)
        n = len(prompts)
        augmented, text_only, negative = embeds[:n], embeds[n : 2 * n], embeds[2 * n :]
        augmented, negative = self.fuse_facial(facial, augmented, negative, face, region_tokens, zero_region_tokens)
        return PromptEmbeds(augmented, text_only, negative, None)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        face_inputs: FaceInputs | None = None,
        face_image: Image.Image | None = None,
        face_analyzer: FaceFinder | None = None,
        face_parser: FaceParser | None = None,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = DEFAULT_STEPS,
        guidance_scale: float = DEFAULT_GUIDANCE,
        start_merge_step: int | None = None,
        merge_fraction: float = DEFAULT_MERGE_FRACTION,
        id_scale: float = 1.0,
        height: int | None = None,
        width: int | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback: Callable[[int, int], None] | None = None,
    ) -> StableDiffusionPipelineOutput:
        """Generate ``len(prompts) * num_images_per_prompt`` images of one identity (prompt-major order).

        Pass ``face_inputs`` (from `prepare_face_inputs` or `FaceInputs.load`) or ``face_image`` with a face
        analyzer and parser. ``generator``: one, or a list with one per image. Delayed merge: steps up to
        ``round(merge_fraction * num_inference_steps)`` use the text-only prompt (`last_text_only_step`;
        ``start_merge_step`` overrides it with a step index). ``id_scale`` scales the ID
        attention branch (0 = the same pipeline without ID tokens). ``callback(step, total)`` after each step.
        Returns images (PIL list, or a [B, 3, H, W] tensor in [0, 1] for ``output_type="pt"``).

        The denoising is diffusers' own `StableDiffusionPipeline` fed ConsistentID's contexts
        (`idportrait.pipelines.consistentid_modes`, the mechanism every other mode uses too).
        """
        self._require_adapter()
        face_inputs = self._resolve_face_inputs(face_inputs, face_image, face_analyzer, face_parser)
        return consistentid_call(
            self,
            mode_pipeline(self, "text2img"),
            prompt,
            face_inputs,
            negative_prompt,
            num_images_per_prompt,
            num_inference_steps,
            start_merge_step,
            merge_fraction,
            id_scale,
            callback=callback,
            generator=generator,
            guidance_scale=guidance_scale,
            height=height,
            width=width,
            latents=latents,
            output_type=output_type,
        )


def check_face_inputs(face: FaceInputs, config: dict[str, Any]) -> None:
    """Raise `UserError` when the face inputs were made for another face backend or image encoder."""
    id_dim, clip_dim = face.id_embedding.shape[-1], face.clip_embeds.shape[-1]
    if config.get("id_dim", id_dim) != id_dim:
        raise UserError(
            f"{face.source}: {id_dim}-D face embedding, but the adapter expects {config['id_dim']}-D "
            "(ArcFace 512-D: --face-backend insightface:buffalo_l; dlib gives 128-D)"
        )
    if config.get("clip_dim", clip_dim) != clip_dim:
        raise UserError(
            f"{face.source}: CLIP features of width {clip_dim}, but the adapter expects {config['clip_dim']} "
            "(face inputs made with another image encoder)"
        )
