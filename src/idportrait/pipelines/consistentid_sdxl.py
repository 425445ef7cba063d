"""ConsistentID on an SDXL base (``ConsistentID_SDXL-v1.bin``), as a diffusers pipeline.

    pipe = ConsistentIDSDXLPipeline.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
    pipe.load_consistentid("JackAILab/ConsistentID")          # 140 processors, 2048-d projector with shortcut
    face = pipe.prepare_face_inputs(photo, face_analyzer, face_parser)
    images = pipe(["a photo of a person at the beach"], face_inputs=face, generator=...).images

Everything identity- and prompt-related is `ConsistentIDPipeline`'s code, reused as is: loading and checking
the checkpoint, per-identity face inputs and tokens (cached), caption marking, the FacialEncoder fuse and the
delayed merge. What SDXL changes:

- text: the same token ids go through both text encoders (re-padded with ``tokenizer_2``'s pad token after
  the end token, as SDXL's own encoding does); penultimate hidden states are concatenated,
  [P, 77, 768] + [P, 77, 1280] -> [P, 77, 2048], and ``text_encoder_2``'s pooled output [P, 1280] is kept
  per context for the added conditioning;
- ID tokens: image_proj(id, CLIP) [1, 4, 2048], with the projector's shortcut on (checkpoint config);
- denoising: the UNet also gets ``text_embeds`` (pooled) and ``time_ids`` (original size, crop, target size).
  Delayed merge as in SD1.5: steps i <= the merge step use [negative, text-only] contexts (and their pooled
  embeddings), later steps [negative, augmented].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.pipelines.stable_diffusion_xl import StableDiffusionXLPipelineOutput
from PIL import Image

from idportrait.adapters.consistentid.attention import set_id_scale
from idportrait.adapters.consistentid.text import add_consistentid_tokens
from idportrait.faces.analyzer import FaceFinder, FaceParser
from idportrait.pipelines.common import decode_sdxl, denoise, last_text_only_step, sdxl_time_ids
from idportrait.pipelines.consistentid_sd15 import (
    DEFAULT_GUIDANCE,
    DEFAULT_MERGE_FRACTION,
    DEFAULT_STEPS,
    ConsistentIDMixin,
)
from idportrait.pipelines.face_inputs import FaceInputs
from idportrait.registry import CONSISTENTID_REPO, CONSISTENTID_SDXL_FILE


class ConsistentIDSDXLPipeline(ConsistentIDMixin, StableDiffusionXLPipeline):
    """`StableDiffusionXLPipeline` + ConsistentID (load with `load_consistentid`, then call with face inputs)."""

    def load_consistentid(
        self,
        path_or_hub_id: str | Path = CONSISTENTID_REPO,
        weight_name: str = CONSISTENTID_SDXL_FILE,
        image_encoder: str | Path | None = None,
    ) -> None:
        """`ConsistentIDPipeline.load_consistentid` with the SDXL file as default; both tokenizers learn the markers."""
        super().load_consistentid(path_or_hub_id, weight_name, image_encoder)
        add_consistentid_tokens(self.tokenizer_2)

    @torch.no_grad()
    def _encode_ids(self, ids: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [N, 77] -> (concatenated penultimate states of both encoders [N, 77, D1 + D2],
        ``text_encoder_2``'s pooled projection of the same rows [N, D2])."""
        ids = ids.to(device)
        ids_2 = ids.clone()
        after_end = (ids == self.tokenizer.eos_token_id).int().cumsum(1) > (ids == self.tokenizer.eos_token_id).int()
        ids_2[after_end] = self.tokenizer_2.pad_token_id
        out_1 = self.text_encoder(ids, output_hidden_states=True)
        out_2 = self.text_encoder_2(ids_2, output_hidden_states=True)
        return torch.cat([out_1.hidden_states[-2], out_2.hidden_states[-2]], dim=-1), out_2.text_embeds

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
    ) -> StableDiffusionXLPipelineOutput:
        """``len(prompts) * num_images_per_prompt`` images of one identity, prompt-major (see the module doc).

        Same arguments as `ConsistentIDPipeline.__call__`; ``id_scale`` 0 switches the ID attention off.
        """
        self._require_adapter()
        face_inputs = self._resolve_face_inputs(face_inputs, face_image, face_analyzer, face_parser)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor
        device, dtype = self._execution_device, self.unet.dtype
        batch = len(prompts) * num_images_per_prompt
        do_cfg = guidance_scale > 1.0

        # 1. identity tokens (cached), text contexts and their pooled embeddings
        negative_ctx, early_ctx, late_ctx, pooled = self.id_contexts(
            prompts, negative_prompt, face_inputs, num_images_per_prompt, device, dtype
        )
        pooled_negative, pooled_text_only, pooled_augmented = pooled
        early = (early_ctx, pooled_text_only)
        late = (late_ctx, pooled_augmented)
        negative = (negative_ctx, pooled_negative)
        if do_cfg:
            early = tuple(torch.cat([a, b]) for a, b in zip(negative, early, strict=True))
            late = tuple(torch.cat([a, b]) for a, b in zip(negative, late, strict=True))
        time_ids = sdxl_time_ids(self, height, width, dtype, device).repeat(early[0].shape[0], 1)
        set_id_scale(self.unet, id_scale)

        # 2. denoising with delayed merge
        merge_step = last_text_only_step(num_inference_steps, merge_fraction, start_merge_step)

        def predict_noise(i: int, t: torch.Tensor, model_in: torch.Tensor) -> torch.Tensor:
            ctx, text_embeds = early if i <= merge_step else late
            added = {"text_embeds": text_embeds, "time_ids": time_ids}
            return self.unet(model_in, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample

        size = (batch, height, width)
        latents = denoise(
            self, predict_noise, size, device, num_inference_steps, guidance_scale, generator, latents, callback
        )

        # 3. decode
        return decode_sdxl(self, latents, output_type)
