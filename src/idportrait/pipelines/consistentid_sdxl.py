"""ConsistentID on an SDXL base (``ConsistentID_SDXL-v1.bin``), as a diffusers pipeline, as the release runs it.

    pipe = ConsistentIDSDXLPipeline.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
    pipe.load_consistentid("JackAILab/ConsistentID")          # 140 processors, 2048-d projector with shortcut
    face = pipe.prepare_face_inputs(photo, face_analyzer, face_parser)   # parsing at 1280x1280
    images = pipe(["a photo of a person at the beach"], face_inputs=face, generator=...).images

Loading, per-identity tokens, caption marking and the FacialEncoder fuse are `ConsistentIDMixin`'s. What the
release's SDXL inference does differently from SD1.5 (``text_encoding="release"``, the default)::

    early steps (i <= merge step):  diffusers' encode_prompt(user prompt)        [P, 77, 768 + 1280], pooled [P, 1280]
    late steps:   marked = prompt + "; Detail:" + caption ("... and a mouth.")
                  text_encoder(ids of marked, markers removed)                  [P, 77, 768]
                  text_encoder_2(tokenizer_2 ids of marked; tokenizer_2 does not know <|facial|>, so the
                                 marker's BPE pieces stay in)                    [P, 77, 1280], pooled [P, 1280]
                  -> concatenated, regions fused at the flagged class tokens    augmented [P, 77, 2048]
    negative (every step): encode_prompt's negative embeddings with the zero image's region tokens fused at the
                  positive prompt's flags; its pooled embedding as diffusers makes it (zeros for no negative prompt)
    ID tokens:    image_proj(id, CLIP(photo)) with the shortcut on                [1, 4, 2048]
    UNet added conditioning: the context's pooled embedding and time ids (height, width, 0, 0, height, width)

``text_encoding="training"`` encodes as the release trained instead: both encoders see the marked prompt with the
markers deleted (each tokenizer with its own padding), its pooled embedding in every step, and the early steps use
that same text without the fused regions (the delayed merge of SD1.5). Defaults as the release: guidance 7.5.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.pipelines.stable_diffusion_xl import StableDiffusionXLPipelineOutput
from PIL import Image

from idportrait.adapters.consistentid.text import (
    FACIAL_TOKEN,
    SDXL_FORMAT,
    FacialPrompt,
    add_consistentid_tokens,
    tokenize_with_markers,
)
from idportrait.faces.analyzer import FaceFinder, FaceParser
from idportrait.pipelines.consistentid_modes import consistentid_call, mode_pipeline
from idportrait.pipelines.consistentid_sd15 import (
    DEFAULT_MERGE_FRACTION,
    DEFAULT_STEPS,
    ConsistentIDMixin,
    PromptEmbeds,
)
from idportrait.pipelines.face_inputs import FaceInputs
from idportrait.registry import CONSISTENTID_REPO, CONSISTENTID_SDXL_FILE, CONSISTENTID_SDXL_GUIDANCE

PARSE_SIZE = 1280
"""The release's SDXL face parsing runs on the photo resized to 1280x1280 (SD1.5: 512)."""
DET_SIZE = 512
"""The release's SDXL insightface detector input size (SD1.5: 640)."""
TEXT_ENCODINGS = ("release", "training")
"""``release``: the release's SDXL inference (default); ``training``: the encoding its training used."""


class ConsistentIDSDXLPipeline(ConsistentIDMixin, StableDiffusionXLPipeline):
    """`StableDiffusionXLPipeline` + ConsistentID (load with `load_consistentid`, then call with face inputs)."""

    prompt_format = SDXL_FORMAT
    parse_size = PARSE_SIZE

    def load_consistentid(
        self,
        path_or_hub_id: str | Path | dict = CONSISTENTID_REPO,
        weight_name: str = CONSISTENTID_SDXL_FILE,
        image_encoder: str | Path | None = None,
        check_release_unet: bool = True,
    ) -> None:
        """`ConsistentIDMixin.load_consistentid` with the SDXL file as default; ``tokenizer_2`` learns ``<|image|>``
        only, as in the release."""
        super().load_consistentid(path_or_hub_id, weight_name, image_encoder, check_release_unet)
        add_consistentid_tokens(self.tokenizer_2, facial=False)

    @torch.no_grad()
    def encode_marked_prompts(
        self, facial: list[FacialPrompt], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The release's late-step text: marked prompts -> (both encoders' penultimate states [P, 77, 768 + 1280],
        ``text_encoder_2``'s pooled projection [P, 1280]).

        ``text_encoder`` gets the ids with the markers removed; ``text_encoder_2`` gets ``tokenizer_2``'s ids of the
        same text, where each marker stays as its BPE pieces (cut at 77 without an end token, else padded with
        ``tokenizer_2``'s pad token).
        """
        facial_id = self.tokenizer.convert_tokens_to_ids(FACIAL_TOKEN)
        ids_1 = torch.tensor([f.input_ids for f in facial], device=device)
        ids_2 = [tokenize_with_markers(self.tokenizer_2, f.prompt_face, facial_id=facial_id)[0] for f in facial]
        out_1 = self.text_encoder(ids_1, output_hidden_states=True)
        out_2 = self.text_encoder_2(torch.tensor(ids_2, device=device), output_hidden_states=True)
        return torch.cat([out_1.hidden_states[-2], out_2.hidden_states[-2]], dim=-1), out_2.text_embeds

    @torch.no_grad()
    def encode_prompts(
        self,
        prompts: list[str],
        negative_prompts: list[str] | None,
        face: FaceInputs,
        region_tokens: torch.Tensor,
        zero_region_tokens: torch.Tensor,
        device: torch.device,
        text_encoding: str = "release",
    ) -> PromptEmbeds:
        """(augmented, text_only, negative) [P, 77, 2048] and their pooled embeddings [3P, 1280] (rows augmented,
        text-only, negative); see the module doc for what each ``text_encoding`` feeds the encoders."""
        if text_encoding not in TEXT_ENCODINGS:
            raise ValueError(f"text_encoding must be one of {TEXT_ENCODINGS}, got {text_encoding!r}")
        facial = self.facial_prompts(prompts, face)
        release = text_encoding == "release"
        text_only, negative, pooled, negative_pooled = self.encode_prompt(
            prompts if release else [f.prompt_text_only for f in facial],
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative_prompts,
        )
        marked, marked_pooled = self.encode_marked_prompts(facial, device) if release else (text_only, pooled)
        dtype = region_tokens.dtype
        augmented, negative = self.fuse_facial(
            facial, marked.to(dtype), negative.to(dtype), face, region_tokens, zero_region_tokens
        )
        pooled_rows = torch.cat([marked_pooled, pooled, negative_pooled])
        return PromptEmbeds(augmented, text_only.to(dtype), negative, pooled_rows)

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
        guidance_scale: float = CONSISTENTID_SDXL_GUIDANCE,
        start_merge_step: int | None = None,
        merge_fraction: float = DEFAULT_MERGE_FRACTION,
        id_scale: float = 1.0,
        height: int | None = None,
        width: int | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback: Callable[[int, int], None] | None = None,
        text_encoding: str = "release",
    ) -> StableDiffusionXLPipelineOutput:
        """``len(prompts) * num_images_per_prompt`` images of one identity, prompt-major (see the module doc).

        Same arguments as `ConsistentIDPipeline.__call__` (guidance 7.5 by default, the release's);
        ``id_scale`` 0 switches the ID attention off; ``text_encoding``: ``release`` or ``training``.
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
            text_encoding=text_encoding,
        )
