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

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idportrait import registry
from idportrait.errors import CheckpointError, NoFaceError
from idportrait.faces.types import Face

VARIANTS = ("faceid", "faceid-plus", "faceid-plusv2")
LORA_PARAMS = ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora")

FaceDetector = Callable[[Image.Image], list[Face]]
"""RGB image -> faces, largest first (``get_face_analyzer(...).detect``)."""


def released_file(variant: str, sdxl: bool) -> str:
    """File name of a released checkpoint in ``h94/IP-Adapter-FaceID``."""
    name = registry.IP_ADAPTER_FACEID_FILES.get((variant, sdxl))
    if name is None:
        raise CheckpointError(f"IP-Adapter-{variant} has no released {'SDXL' if sdxl else 'SD1.5'} checkpoint")
    return name


def ip_adapter_layout(unet: torch.nn.Module, lora_rank: int | None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released ``ip_adapter`` dict for ``unet`` (processor order = registration order).

    Odd indices (cross-attention) carry ``to_k_ip`` / ``to_v_ip`` [hidden, cross_dim]; with ``lora_rank``
    every processor carries ``{q,k,v,out}_lora.down`` [rank, in] and ``.up`` [out, rank].
    """
    layout: dict[str, tuple[int, ...]] = {}
    modules = dict(unet.named_modules())
    for i, name in enumerate(unet.attn_processors):
        attn = modules[name.removesuffix(".processor")]
        hidden, context = attn.to_q.in_features, attn.to_k.in_features
        if lora_rank:
            for param, (n_in, n_out) in zip(
                LORA_PARAMS, [(hidden, hidden), (context, hidden), (context, hidden), (hidden, hidden)], strict=True
            ):
                layout[f"{i}.{param}.down.weight"] = (lora_rank, n_in)
                layout[f"{i}.{param}.up.weight"] = (n_out, lora_rank)
        if name.endswith("attn2.processor"):
            layout[f"{i}.to_k_ip.weight"] = (hidden, context)
            layout[f"{i}.to_v_ip.weight"] = (hidden, context)
    return layout


def check_faceid_checkpoint(state: dict, unet: torch.nn.Module, path: str | Path) -> None:
    """Raise `CheckpointError` unless ``state`` is a released-layout FaceID checkpoint that fits ``unet``."""
    if not isinstance(state, dict) or set(state) != {"image_proj", "ip_adapter"}:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"expected the dict keys ['image_proj', 'ip_adapter'], found {found}", path)
    ip = state["ip_adapter"]
    down = ip.get("0.to_q_lora.down.weight")
    expected = ip_adapter_layout(unet, None if down is None else down.shape[0])
    missing, unexpected = sorted(set(expected) - set(ip)), sorted(set(ip) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"ip_adapter keys do not match this UNet: missing {missing[:4]} ({len(missing)}), "
            f"unexpected {unexpected[:4]} ({len(unexpected)})",
            path,
        )
    for key, shape in expected.items():
        if tuple(ip[key].shape) != shape:
            raise CheckpointError(f"ip_adapter.{key} has shape {tuple(ip[key].shape)}, expected {shape}", path)
    proj = state["image_proj"]
    if "norm.weight" not in proj or "proj.0.weight" not in proj:
        raise CheckpointError("image_proj is neither a FaceID nor a FaceID-Plus projection", path)


def load_faceid_checkpoint(path: str | Path) -> dict:
    """Read a released ``.bin`` (pickle, weights only) or our ``.safetensors`` (``image_proj.*``/``ip_adapter.*``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(path)
        state: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            group, _, rest = key.partition(".")
            state.setdefault(group, {})[rest] = value
        return state
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"not a weights-only torch checkpoint ({type(err).__name__})", path) from None


@dataclass
class FaceIDReference:
    """What `IPAdapterFaceID.prepare` extracts from the reference photo(s).

    id_embeds: [1, 1, 512] mean normed ArcFace embedding; clip_embeds: [1, 1, 257, D] mean CLIP
    penultimate states of the aligned face crops (Plus variants only); faces: the face used per photo.
    """

    id_embeds: torch.Tensor
    clip_embeds: torch.Tensor | None
    faces: list[Face] = field(default_factory=list)


@dataclass
class IPAdapterFaceID:
    """A diffusers SD1.5/SDXL pipeline with a FaceID adapter loaded, plus the face detector it needs.

    ``scale`` weights the identity attention; ``lora_scale`` the adapter's LoRA (the release uses 1.0).
    Both at 0 give the base model's output exactly.
    """

    pipe: object
    detect: FaceDetector
    variant: str = "faceid"
    scale: float = 1.0
    lora_scale: float = 1.0
    steps: int = 30
    guidance_scale: float = 7.5
    negative_prompt: str = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"
    size: tuple[int, int] | None = None

    @property
    def plus(self) -> bool:
        return self.variant != "faceid"

    def prepare(self, references: list[Image.Image] | Image.Image) -> FaceIDReference:
        """Detect the largest face in each photo and average their embeddings (several photos allowed)."""
        from idportrait.faces import norm_crop

        references = [references] if isinstance(references, Image.Image) else list(references)
        faces, crops = [], []
        for i, image in enumerate(references):
            found = self.detect(image)
            if not found:
                raise NoFaceError("no face found in the reference photo", getattr(image, "filename", None) or f"#{i}")
            if found[0].embedding is None:
                raise NoFaceError("the face analyzer returned no identity embedding", f"#{i}")
            faces.append(found[0])
            if self.plus:
                crops.append(norm_crop(image, found[0].kps, 224))
        id_embeds = torch.from_numpy(np.stack([f.normed_embedding for f in faces]).mean(0))[None, None]
        clip_embeds = None
        if self.plus:
            pixels = self.pipe.feature_extractor(images=crops, return_tensors="pt").pixel_values
            clip_embeds = self._clip_hidden_states(pixels).mean(0, keepdim=True)[:, None]
        return FaceIDReference(id_embeds=id_embeds, clip_embeds=clip_embeds, faces=faces)

    def _clip_hidden_states(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP-preprocessed pixels [N, 3, 224, 224] -> ``hidden_states[-2]`` [N, 257, D] (float32, CPU)."""
        encoder = self.pipe.image_encoder
        with torch.no_grad():
            states = encoder(pixels.to(encoder.device, encoder.dtype), output_hidden_states=True).hidden_states[-2]
        return states.float().cpu()

    def generate(self, prepared: FaceIDReference, prompts: list[str], seeds: list[int], **kwargs) -> list[Image.Image]:
        """One image per (prompt, seed) pair, [B] -> B PIL images."""
        pipe = self.pipe
        n = len(prompts)
        device, dtype = pipe.unet.device, pipe.unet.dtype
        id_pos = prepared.id_embeds.expand(n, 1, -1)
        id_embeds = torch.cat([torch.zeros_like(id_pos), id_pos]).to(device, dtype)
        pipe.set_ip_adapter_scale(self.scale)
        if "faceid_0" in pipe.get_list_adapters().get("unet", []):
            pipe.set_adapters(["faceid_0"], adapter_weights=[self.lora_scale])
        if self.plus:
            uncond = self._clip_hidden_states(torch.zeros(1, 3, 224, 224))
            clip_pos = prepared.clip_embeds.expand(n, -1, -1, -1)
            layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
            layer.clip_embeds = torch.cat([uncond[:, None].expand(n, -1, -1, -1), clip_pos]).to(device, dtype)
            layer.shortcut = self.variant == "faceid-plusv2"
        height, width = self.size or (None, None)
        out = pipe(
            prompt=list(prompts),
            negative_prompt=[self.negative_prompt] * n,
            ip_adapter_image_embeds=[id_embeds],
            num_inference_steps=kwargs.pop("steps", self.steps),
            guidance_scale=kwargs.pop("guidance_scale", self.guidance_scale),
            generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
            height=height,
            width=width,
            **kwargs,
        )
        return out.images


def load_ipadapter_faceid(
    base: str | Path,
    variant: str = "faceid",
    sdxl: bool = False,
    checkpoint: str | Path | None = None,
    image_encoder: str | Path | None = None,
    detect: FaceDetector | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    **settings,
) -> IPAdapterFaceID:
    """Load ``base`` (diffusers folder or hub id), the FaceID checkpoint and the face analyzer.

    checkpoint: local file; default the released file of ``variant`` from `registry.IP_ADAPTER_FACEID_REPO`.
    image_encoder: CLIP vision tower for the Plus variants (default `registry.CLIP_VIT_H`).
    detect: face detector returning faces with embeddings (default insightface ``buffalo_l``).
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPVisionModelWithProjection

    if variant not in VARIANTS:
        raise CheckpointError(f"unknown IP-Adapter-FaceID variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if checkpoint is None:
        from huggingface_hub import hf_hub_download

        checkpoint = hf_hub_download(registry.IP_ADAPTER_FACEID_REPO, released_file(variant, sdxl))
    state = load_faceid_checkpoint(checkpoint)
    extra = {}
    if variant != "faceid":
        extra["image_encoder"] = CLIPVisionModelWithProjection.from_pretrained(
            image_encoder or registry.CLIP_VIT_H, dtype=dtype
        )
    pipeline_cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    if not sdxl:
        extra.update(safety_checker=None, requires_safety_checker=False)
    pipe = pipeline_cls.from_pretrained(str(base), dtype=dtype, **extra)
    check_faceid_checkpoint(state, pipe.unet, checkpoint)
    pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    if detect is None:
        from idportrait.faces import get_face_analyzer

        detect = get_face_analyzer(f"insightface:{registry.INSIGHTFACE_CONSISTENTID}", device=device).detect
    return IPAdapterFaceID(pipe=pipe, detect=detect, variant=variant, **settings)
