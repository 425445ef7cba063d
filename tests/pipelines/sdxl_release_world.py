"""The public SDXL fixture's world (../shared/fixtures/consistentid_sdxl/README.md), built from its configs.

    world = build_world()                      # diffusers components, every tensor from the recipe
    pipe = world_pipeline(world)               # ConsistentIDSDXLPipeline + the release-layout checkpoint
    face = pipe.prepare_face_inputs(world_photo(), FixedFace(), stand_in_parser())
    expected = load_expected("steps5_merge3_g6_seed3")

The photo, identity embedding and parsing are the README's inputs; the face analyzer and BiSeNet are replaced
by stand-ins that return them, so every other step runs through the real code.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import torch
from PIL import Image

from recipe import FIXTURES_SDXL, sdxl_recipe_tensor

WORLD = FIXTURES_SDXL / "world"
PREFIXES = {"text_encoder": "te.", "text_encoder_2": "te2.", "unet": "unet.", "vae": "vae.", "image_encoder": "clip."}
LAYOUT = [  # (label, cu, cv, ru, rv) ellipses in painting order; later wins
    (17, 0.5, 0.45, 0.45, 0.5),
    (1, 0.5, 0.5, 0.32, 0.4),
    (7, 0.16, 0.5, 0.05, 0.09),
    (8, 0.84, 0.5, 0.05, 0.09),
    (4, 0.37, 0.42, 0.07, 0.035),
    (5, 0.63, 0.42, 0.07, 0.035),
    (10, 0.5, 0.56, 0.05, 0.09),
    (12, 0.5, 0.7, 0.11, 0.025),
    (13, 0.5, 0.75, 0.11, 0.025),
]
CASES = {
    "steps5_merge3_g6_seed3": {
        "prompt": "a portrait of a man in a suit, studio lighting",
        "negative_prompt": "blurry, lowres, bad anatomy",
        "num_inference_steps": 5,
        "start_merge_step": 3,
        "guidance_scale": 6.0,
        "seed": 3,
    }
}


def fill_from_recipe(module: torch.nn.Module, prefix: str) -> None:
    """Set every tensor of ``module.state_dict()`` from the recipe (key ``prefix + name``), and the
    non-persistent ``position_ids`` buffers to ``arange`` as the recipe has them."""
    state = {k: sdxl_recipe_tensor(prefix + k, v.shape) for k, v in module.state_dict().items()}
    module.load_state_dict(state, strict=True)
    for name, buffer in module.named_buffers():
        if name.endswith("position_ids"):
            buffer.copy_(sdxl_recipe_tensor(name, buffer.shape))


def build_world() -> dict[str, Any]:
    """The world's pipeline components (float32, CPU, eval), keyed as diffusers names them."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    with torch.device("meta"):
        models = {
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(WORLD / "text_encoder")),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(WORLD / "text_encoder_2")),
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(WORLD / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(WORLD / "vae")),
            "image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig.from_pretrained(WORLD / "image_encoder")),
        }
    for name, model in models.items():
        model.to_empty(device="cpu")
        fill_from_recipe(model, PREFIXES[name])
        model.eval().requires_grad_(False)
    config = EulerDiscreteScheduler.load_config(WORLD / "scheduler")
    return {
        **models,
        "tokenizer": CLIPTokenizer.from_pretrained(WORLD / "tokenizer"),
        "tokenizer_2": CLIPTokenizer.from_pretrained(WORLD / "tokenizer_2"),
        "scheduler": EulerDiscreteScheduler.from_config(config),
    }


def release_checkpoint() -> dict[str, dict[str, torch.Tensor]]:
    """``ConsistentID_SDXL-v1.bin`` of the world: the manifest's keys and shapes, tensors from the recipe."""
    manifest = json.loads((FIXTURES_SDXL / "release_checkpoint_manifest.json").read_text())
    return {
        group: {
            key: sdxl_recipe_tensor(f"{group}.{key}", shape, 0.05 if "lora" in key or "_ip" in key else 0.02)
            for key, shape in entries
        }
        for group, entries in manifest.items()
    }


def world_pipeline(world: dict[str, Any], **load_options: Any):
    """`ConsistentIDSDXLPipeline` of the world with the recipe checkpoint, loaded from memory.

    The world's UNet is tiny, so its processors are checked against that UNet instead of the real SDXL one.
    """
    from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline

    pipe = ConsistentIDSDXLPipeline(**world, feature_extractor=None, force_zeros_for_empty_prompt=True)
    pipe.load_consistentid(release_checkpoint(), check_release_unet=False, **load_options)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def world_photo() -> Image.Image:
    """scikit-image's astronaut, rows 0:300, columns 100:400, resized to 512x512 (PIL bicubic)."""
    from skimage import data

    return Image.fromarray(data.astronaut()[0:300, 100:400]).resize((512, 512), Image.BICUBIC)


def identity_embedding() -> np.ndarray:
    """The README's identity embedding: ``recipe("arcface.embedding", (512,), scale=1.0)``, unit norm."""
    emb = sdxl_recipe_tensor("arcface.embedding", (512,), 1.0)
    return (emb / emb.norm()).numpy()


class FixedFace:
    """Face analyzer stand-in: one face covering the photo, with the README's identity embedding."""

    def largest_face(self, image, path_for_errors=None):
        from idportrait.faces.types import Face

        w, h = image.size
        return Face(bbox=[0, 0, w, h], kps=np.zeros((5, 2)), score=1.0, embedding=identity_embedding())


@cache
def layout_labels(height: int, width: int) -> np.ndarray:
    """The README's label layout drawn at ``height`` x ``width`` (uint8 [H, W], CelebAMask-HQ ids)."""
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    labels = np.zeros((height, width), np.uint8)
    for label, cu, cv, ru, rv in LAYOUT[:2]:
        labels[((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1] = label
    labels[(v > 0.85) & (np.abs(u - 0.5) < 0.15)] = 14
    for label, cu, cv, ru, rv in LAYOUT[2:]:
        labels[((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1] = label
    return labels


class LayoutNet(torch.nn.Module):
    """BiSeNet stand-in: one-hot logits (x10) of the layout at the input's resolution, as BiSeNet's outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the parser a device to read

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        labels = torch.from_numpy(layout_labels(x.shape[-2], x.shape[-1])).long()
        logits = 10.0 * torch.nn.functional.one_hot(labels, 19).permute(2, 0, 1)[None].float()
        return logits, logits, logits


def stand_in_parser():
    """`BiSeNetParser` around `LayoutNet`: the real parsing code (size, argmax, regions) on the README's layout."""
    from idportrait.faces.parsing import BiSeNetParser

    return BiSeNetParser(LayoutNet())


def load_expected(case: str) -> dict[str, torch.Tensor]:
    """The release's tensors of one case, without the case prefix."""
    from safetensors.torch import load_file

    tensors = load_file(FIXTURES_SDXL / "release_expected.safetensors")
    return {k.removeprefix(f"{case}."): v for k, v in tensors.items() if k.startswith(f"{case}.")}
