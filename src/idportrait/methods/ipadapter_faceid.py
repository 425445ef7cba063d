"""IP-Adapter-FaceID, -Plus and -PlusV2 (SD1.5 and SDXL) through diffusers' own ``load_ip_adapter``.

The released ``h94/IP-Adapter-FaceID`` files are torch pickles ``{"image_proj": ..., "ip_adapter": ...}``.
We read them with ``weights_only=True``, check every key and shape against the UNet they are loaded into
(`check_faceid_checkpoint`), and hand the dict to ``pipe.load_ip_adapter``, which builds
``IPAdapterFaceIDImageProjection`` / ``IPAdapterFaceIDPlusImageProjection``, the decoupled attention
processors and the LoRA (peft adapter ``faceid_0``).

Embeddings come from our face layer: the ArcFace ``normed_embedding`` of the largest face ([1, 1, 512]),
averaged over several reference photos; the Plus variants also take CLIP ``hidden_states[-2]`` of the
5-point aligned 224 px face crop ([1, 1, 257, 1280]). PlusV2 adds the ID tokens as a shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from idportrait import registry
from idportrait.adapters.ipadapter_layout import check_faceid_checkpoint
from idportrait.errors import CheckpointError
from idportrait.faces.analyzer import FaceDetector
from idportrait.faces.types import Face
from idportrait.methods.base import SizeWH, seed_generators, size_options
from idportrait.methods.references import as_photo_list, largest_faces, mean_identity
from idportrait.pipelines.accelerators import ADAPTER_NAME as ACCELERATOR_ADAPTER
from idportrait.pipelines.accelerators import set_accelerator_scale
from idportrait.pipelines.speed import fuse_peft_loras

VARIANTS = ("faceid", "faceid-plus", "faceid-plusv2")


def released_file(variant: str, sdxl: bool) -> str:
    """File name of a released checkpoint in ``h94/IP-Adapter-FaceID``."""
    name = registry.IP_ADAPTER_FACEID_FILES.get((variant, sdxl))
    if name is None:
        raise CheckpointError(f"IP-Adapter-{variant} has no released {'SDXL' if sdxl else 'SD1.5'} checkpoint")
    return name


@dataclass
class FaceIDReference:
    """What `IPAdapterFaceIDMethod.prepare` extracts from the reference photo(s).

    id_embeds: [1, 1, 512] mean normed ArcFace embedding; clip_embeds: [1, 1, 257, D] mean CLIP
    penultimate states of the aligned face crops (Plus variants only); faces: the face used per photo.
    """

    id_embeds: torch.Tensor
    clip_embeds: torch.Tensor | None
    faces: list[Face] = field(default_factory=list)


DEFAULTS = {"num_inference_steps": 30, "guidance_scale": 7.5, "negative_prompt": registry.DEFAULT_NEGATIVE_PROMPT}
"""Default pipeline call keywords (the release demo's)."""


@dataclass
class IPAdapterFaceIDMethod:
    """A diffusers SD1.5/SDXL pipeline with a FaceID adapter loaded, plus the face detector it needs.

    ``scale`` weights the identity attention; ``lora_scale`` the adapter's LoRA (the release uses 1.0).
    Both at 0 give the base model's output exactly. ``defaults``: pipeline call keywords.
    """

    pipe: Any
    detect: FaceDetector
    variant: str = "faceid"
    name: str = "ipadapter-faceid"
    scale: float = 1.0
    lora_scale: float = 1.0
    size: SizeWH | None = None
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    multi_reference: ClassVar[bool] = True
    _uncond_clip: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def plus(self) -> bool:
        return self.variant != "faceid"

    def prepare(self, reference: Image.Image | list[Image.Image], source: str = "<image>") -> FaceIDReference:
        """Detect the largest face in each photo and average their embeddings (several photos allowed)."""
        from idportrait.faces import norm_crop

        photos = as_photo_list(reference)
        faces = largest_faces(self.detect, photos, source)
        id_embeds = mean_identity(faces)[None, None]
        clip_embeds = None
        if self.plus:
            crops = [norm_crop(photo, face.kps, 224) for photo, face in zip(photos, faces, strict=True)]
            pixels = self.pipe.feature_extractor(images=crops, return_tensors="pt").pixel_values
            clip_embeds = self._clip_hidden_states(pixels).mean(0, keepdim=True)[:, None]
        return FaceIDReference(id_embeds=id_embeds, clip_embeds=clip_embeds, faces=faces)

    def _clip_hidden_states(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP-preprocessed pixels [N, 3, 224, 224] -> ``hidden_states[-2]`` [N, 257, D] (float32, CPU)."""
        encoder = self.pipe.image_encoder
        with torch.no_grad():
            states = encoder(pixels.to(encoder.device, encoder.dtype), output_hidden_states=True).hidden_states[-2]
        return states.float().cpu()

    def generate(self, prepared: FaceIDReference, prompts: list[str], seeds: list[int], **options) -> list[Image.Image]:
        """One image per (prompt, seed), prompt-major; ``options`` go to the diffusers pipeline call."""
        pipe = self.pipe
        n = len(prompts) * len(seeds)
        device, dtype = pipe.unet.device, pipe.unet.dtype
        id_pos = prepared.id_embeds  # [1, 1, D]: the pipeline repeats it for all n images
        id_embeds = torch.cat([torch.zeros_like(id_pos), id_pos]).to(device, dtype)
        pipe.set_ip_adapter_scale(self.scale)
        loras = pipe.get_list_adapters().get("unet", [])
        if ACCELERATOR_ADAPTER in loras:  # the few-step LoRA stays on next to FaceID's
            set_accelerator_scale(pipe, 1.0, {"faceid_0": self.lora_scale} if "faceid_0" in loras else None)
        elif "faceid_0" in loras:
            fuse_peft_loras(pipe, {"faceid_0": self.lora_scale})
        if self.plus:
            if self._uncond_clip is None:  # CLIP of the zero image: the same for every call
                self._uncond_clip = self._clip_hidden_states(torch.zeros(1, 3, 224, 224))[:, None]
            uncond = self._uncond_clip
            layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
            clip = torch.cat([uncond.expand(n, -1, -1, -1), prepared.clip_embeds.expand(n, -1, -1, -1)])
            layer.clip_embeds = clip.to(device, dtype)
            layer.shortcut = self.variant == "faceid-plusv2"
        kwargs = {**size_options(self.size), **self.defaults, **options}
        if kwargs.get("negative_prompt") is not None:
            kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(prompts)
        out = pipe(
            prompt=list(prompts),
            num_images_per_prompt=len(seeds),
            ip_adapter_image_embeds=[id_embeds],
            generator=seed_generators(prompts, seeds),
            **kwargs,
        )
        return out.images


def load_ipadapter_faceid_method(
    base: str | Path | None = None,
    variant: str = "faceid",
    sdxl: bool = False,
    adapter: str | Path | None = None,
    image_encoder: str | Path | None = None,
    face_backend: str = registry.FACE_BACKEND_CONSISTENTID,
    detect: FaceDetector | None = None,
    scale: float = 1.0,
    lora_scale: float = 1.0,
    size: SizeWH | None = None,
    device: str = "auto",
    dtype: str = "auto",
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    **defaults: Any,
) -> IPAdapterFaceIDMethod:
    """Load the base pipeline, the FaceID checkpoint and the face analyzer; ``None`` = registry default.

    base: diffusers folder or hub id (default SD1.5 / SDXL base). adapter: checkpoint file, folder holding the
    released file, or hub repo (default `registry.IP_ADAPTER_FACEID_REPO`). image_encoder: CLIP vision tower
    of the Plus variants (default `registry.CLIP_VIT_H`). detect: overrides ``face_backend`` (an analyzer
    whose faces carry identity embeddings). ``scale`` / ``lora_scale`` / ``size``: see `IPAdapterFaceIDMethod`;
    ``defaults`` become default pipeline call keywords over `DEFAULTS` (e.g. ``num_inference_steps``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options` (the
    accelerator's steps and guidance override `DEFAULTS`).
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPVisionModelWithProjection

    from idportrait.adapters.ipadapter_faceid import load_faceid_adapter
    from idportrait.devices import resolve_device
    from idportrait.hub import fetch, hub_file
    from idportrait.methods.base import apply_speed_options

    if variant not in VARIANTS:
        raise CheckpointError(f"unknown IP-Adapter-FaceID variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    device, torch_dtype = resolve_device(device, dtype)
    checkpoint = hub_file(
        str(adapter or registry.IP_ADAPTER_FACEID_REPO), released_file(variant, sdxl), "FaceID checkpoint", "--adapter"
    )
    state = load_faceid_adapter(checkpoint)
    kwargs: dict = {"torch_dtype": torch_dtype}
    if variant != "faceid":
        encoder = str(image_encoder or registry.CLIP_VIT_H)
        kwargs["image_encoder"] = fetch(
            "image encoder",
            encoder,
            "--image-encoder",
            lambda local: CLIPVisionModelWithProjection.from_pretrained(
                encoder, dtype=torch_dtype, local_files_only=local
            ),
        )
    if not sdxl:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipeline_cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    base = str(base or (registry.SDXL_BASE if sdxl else registry.SD15_REFERENCE_BASE))
    pipe = fetch(
        "base model", base, "--base", lambda local: pipeline_cls.from_pretrained(base, local_files_only=local, **kwargs)
    )
    check_faceid_checkpoint(state, pipe.unet, checkpoint)
    if ("perceiver_resampler.proj_in.weight" in state["image_proj"]) != (variant != "faceid"):
        raise CheckpointError(f"this checkpoint does not hold an IP-Adapter-{variant} projection", checkpoint)
    pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
    if variant != "faceid" and pipe.feature_extractor is None:  # SDXL bases ship without one
        from idportrait.pipelines.clip_processor import clip_image_processor

        pipe.register_modules(feature_extractor=clip_image_processor())
    pipe.to(device)
    recipe = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling)
    pipe.set_progress_bar_config(disable=True)
    if detect is None:
        from idportrait.faces import get_face_analyzer

        detect = get_face_analyzer(face_backend, device=device).detect
    return IPAdapterFaceIDMethod(
        pipe=pipe,
        detect=detect,
        variant=variant,
        scale=scale,
        lora_scale=lora_scale,
        size=size,
        defaults={**DEFAULTS, **recipe, **defaults},
    )
