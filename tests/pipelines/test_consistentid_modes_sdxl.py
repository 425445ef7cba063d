"""The same mechanism on SDXL (tiny SDXL base, tiny ConsistentID-SDXL adapter): the pooled embedding switches at the
merge step with the context; with the ID branch off, SDXL inpainting and ControlNet equal diffusers' own SDXL
pipelines fed the contexts' text tokens; SDXL ControlNet inpainting is refused with a clear error."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from idportrait.errors import UserError
from idportrait.pipelines.consistentid_modes import MergeSwitch, consistentid_call, mode_pipeline
from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline
from idportrait.tiny import TINY_ADAPTER, TINY_TEXT_DIM, random_consistentid, save_tiny_sdxl, tiny_controlnet, tiny_unet

SIZE = 32
NEGATIVE = "blurry"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    """ConsistentIDSDXLPipeline from a tiny SDXL folder and a tiny random adapter (LoRA up-projections zeroed)."""
    from idportrait.adapters.consistentid.checkpoint import save_consistentid_safetensors

    folder = tmp_path_factory.mktemp("sdxl")
    base = save_tiny_sdxl(folder / "base")
    cross = 2 * TINY_TEXT_DIM
    unet = tiny_unet(cross, sdxl=True)
    facial_encoder, image_proj, processors = random_consistentid(unet, **{**TINY_ADAPTER, "cross_attention_dim": cross})
    with torch.no_grad():
        for name, p in processors.named_parameters():
            if "_lora.up." in name:
                p.zero_()
    adapter = save_consistentid_safetensors(folder / "adapter.safetensors", facial_encoder, image_proj, processors)
    pipe = ConsistentIDSDXLPipeline.from_pretrained(base)
    pipe.load_consistentid(adapter)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def face():
    from idportrait.pipelines.face_inputs import FaceInputs

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(128, generator=g)
    return FaceInputs(
        id_embedding=emb / emb.norm(),
        clip_embeds=torch.randn(257, 32, generator=g),
        region_embeds=torch.randn(5, 257, 32, generator=g),
        region_mask=torch.ones(5, dtype=torch.bool),
        region_names=["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"],
    )


@pytest.fixture(scope="module")
def controlnet():
    return tiny_controlnet(sdxl=True)


def images() -> dict:
    g = np.random.default_rng(1)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[4:20, 8:28] = 255
    return {
        "image": Image.fromarray(g.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)),
        "mask_image": Image.fromarray(mask),
    }


def test_merge_switch_swaps_the_pooled_embedding_with_the_context():
    class Target:
        do_classifier_free_guidance = True
        num_timesteps = 4

    neg, late, neg_pooled, late_pooled = (
        torch.zeros(1, 81, 8),
        torch.ones(1, 81, 8),
        torch.zeros(1, 4),
        torch.ones(1, 4),
    )
    seen = []
    switch = MergeSwitch(1, neg, late, neg_pooled, late_pooled, progress=lambda i, n: seen.append((i, n)))
    assert switch(Target(), 0, torch.tensor(0), {}) == {}
    out = switch(Target(), 1, torch.tensor(0), {})
    assert torch.equal(out["prompt_embeds"], torch.cat([neg, late]))
    assert torch.equal(out["add_text_embeds"], torch.cat([neg_pooled, late_pooled]))
    assert seen == [(1, 4), (2, 4)]


def run(pipe, mode, face, controlnet=None, **kwargs):
    target = mode_pipeline(pipe, mode, controlnet)
    inputs = images() if mode == "inpaint" else {"image": images()["image"]}
    options = {"num_inference_steps": 3, "guidance_scale": 5.0, "negative_prompt": NEGATIVE, "height": SIZE,
               "width": SIZE, "generator": torch.Generator().manual_seed(0), "output_type": "np"}  # fmt: skip
    return consistentid_call(pipe, target, "a photo of a person", face, **inputs, **{**options, **kwargs}).images


@pytest.mark.parametrize("mode", ["inpaint", "controlnet"])
def test_sdxl_modes_switch_context_and_pooled_and_equal_diffusers_with_the_id_branch_off(pipe, face, controlnet, mode):
    cn = controlnet if mode == "controlnet" else None
    seen = []
    hook = pipe.unet.register_forward_pre_hook(
        lambda _, args, kw: seen.append((kw["encoder_hidden_states"], kw["added_cond_kwargs"]["text_embeds"])),
        with_kwargs=True,
    )
    try:
        ours = run(pipe, mode, face, cn, id_scale=0.0, start_merge_step=0)
    finally:
        hook.remove()
    negative, early, late, (negative_pooled, early_pooled, late_pooled) = pipe.id_contexts(
        ["a photo of a person"], NEGATIVE, face, 1, torch.device("cpu"), torch.float32
    )
    assert len(seen) == (2 if mode == "inpaint" else 3)  # SDXL inpainting's default strength 0.9999: 2 of 3 steps
    torch.testing.assert_close(seen[0][0], torch.cat([negative, early]))
    torch.testing.assert_close(seen[0][1], torch.cat([negative_pooled, early_pooled]))
    for context, pooled in seen[1:]:
        torch.testing.assert_close(context, torch.cat([negative, late]))
        torch.testing.assert_close(pooled, torch.cat([negative_pooled, late_pooled]))

    cls = getattr(
        diffusers, "StableDiffusionXLInpaintPipeline" if mode == "inpaint" else "StableDiffusionXLControlNetPipeline"
    )
    plain_unet = tiny_unet(2 * TINY_TEXT_DIM, sdxl=True)  # the base's own UNet (same seed), no ConsistentID
    reference = cls(**{**pipe.components, "unet": plain_unet, **({"controlnet": cn} if cn else {})})
    reference.set_progress_bar_config(disable=True)
    switch = MergeSwitch(0, negative[:, :77], late[:, :77], negative_pooled, late_pooled)
    inputs = images() if mode == "inpaint" else {"image": images()["image"]}
    expected = reference(
        prompt_embeds=early[:, :77],
        negative_prompt_embeds=negative[:, :77],
        pooled_prompt_embeds=early_pooled,
        negative_pooled_prompt_embeds=negative_pooled,
        callback_on_step_end=switch,
        num_inference_steps=3,
        guidance_scale=5.0,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **inputs,
    ).images
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_sdxl_controlnet_inpainting_is_refused(pipe, controlnet):
    with pytest.raises(UserError, match="controlnet-inpaint is not available for SDXL"):
        mode_pipeline(pipe, "controlnet-inpaint", controlnet)


def test_sdxl_modes_take_the_text_encoding_option(pipe, face):
    import functools

    seen = {}
    original = pipe.encode_prompts

    @functools.wraps(original)  # the same signature: its keyword options are what the call routes to it
    def spy(*args, **kwargs):
        seen.setdefault("text_encoding", []).append(kwargs.get("text_encoding"))
        return original(*args, **kwargs)

    pipe.encode_prompts = spy
    try:
        release = run(pipe, "inpaint", face)
        training = run(pipe, "inpaint", face, text_encoding="training")
    finally:
        del pipe.encode_prompts
    assert seen["text_encoding"] == [None, "training"]  # given to the encoding, not to diffusers' pipeline
    assert not np.allclose(release, training)
