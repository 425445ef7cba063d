"""ConsistentID on diffusers' own img2img, inpaint (4- and 9-channel UNets), ControlNet, ControlNet img2img and
ControlNet-inpaint pipelines, on tiny models loaded through the real loaders.

- With the ID branch off (``id_scale`` 0, a no-op LoRA, no facial regions to fuse) every mode equals diffusers' own
  pipeline of that mode run on the text prompt.
- With it on, the output changes; the merge step switches the UNet's context in every mode (counted over the steps
  that run, so ``strength`` shortens the schedule), and a ControlNet sees the 77 text tokens only.
"""

from __future__ import annotations

import dataclasses

import diffusers
import numpy as np
import pytest
import torch
from consistentid_pipes import load_pipe
from PIL import Image

from idportrait.adapters.consistentid.text import build_facial_prompt
from idportrait.errors import UserError
from idportrait.pipelines.consistentid_modes import (
    MODES,
    consistentid_call,
    mode_for,
    mode_pipeline,
    steps_to_run,
)
from idportrait.tiny import save_tiny_sd15, tiny_controlnet

STEPS = 3
SIZE = 32
NEGATIVE = "blurry, lowres"
PROMPT = "a photo of a person in a garden"
CASES = {  # case -> (mode, 9-channel UNet)
    "img2img": ("img2img", False),
    "inpaint-4ch": ("inpaint", False),
    "inpaint-9ch": ("inpaint", True),
    "controlnet": ("controlnet", False),
    "controlnet-img2img": ("controlnet-img2img", False),
    "controlnet-inpaint": ("controlnet-inpaint", False),
}


def pictures() -> dict[str, Image.Image]:
    g = np.random.default_rng(0)
    photo = Image.fromarray(g.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[8:24, 10:26] = 255
    edges = Image.fromarray((g.random((SIZE, SIZE, 3)) > 0.8).astype(np.uint8) * 255)
    return {"photo": photo, "mask": Image.fromarray(mask), "control": edges}


def mode_inputs(mode: str) -> dict:
    """diffusers' keyword names for the mode's images."""
    p = pictures()
    if mode == "controlnet":
        return {"image": p["control"]}
    inputs = {"image": p["photo"]}
    if "inpaint" in mode:
        inputs["mask_image"] = p["mask"]
    if mode.startswith("controlnet"):
        inputs["control_image"] = p["control"]
    return inputs


@pytest.fixture(scope="module")
def no_op_lora_adapter(tiny_models, tmp_path_factory):
    """The tiny adapter with every LoRA up-projection zeroed: with id_scale 0 its UNet is the base UNet."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    _, adapter = tiny_models
    with safe_open(str(adapter), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        metadata = f.metadata()
    tensors = {k: torch.zeros_like(v) if "_lora.up." in k else v for k, v in tensors.items()}
    path = tmp_path_factory.mktemp("no-op-lora") / "adapter.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.fixture(scope="module")
def bases(tiny_models, tmp_path_factory):
    """{9-channel: base folder}: the demo's tiny SD1.5 base and an inpainting one (same seed, 9-channel UNet)."""
    return {False: tiny_models[0], True: save_tiny_sd15(tmp_path_factory.mktemp("inpaint-base"), unet_in_channels=9)}


@pytest.fixture(scope="module")
def controlnet(tmp_path_factory):
    """A tiny ControlNet written in the diffusers layout and loaded back."""
    from diffusers import ControlNetModel

    path = tmp_path_factory.mktemp("controlnet")
    tiny_controlnet().save_pretrained(path)
    return ControlNetModel.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def plain_bases(bases):
    """{9-channel: diffusers' StableDiffusionPipeline of the base}: the models the reference pipelines run."""
    out = {}
    for nine, base in bases.items():
        out[nine] = diffusers.StableDiffusionPipeline.from_pretrained(
            base, safety_checker=None, requires_safety_checker=False
        )
    return out


@pytest.fixture(scope="module")
def no_op_pipes(bases, no_op_lora_adapter):
    """{9-channel: ConsistentID pipeline whose adapter has a no-op LoRA}."""
    return {nine: load_pipe(base, no_op_lora_adapter) for nine, base in bases.items()}


@pytest.fixture(scope="module")
def pipes(bases, tiny_models):
    """{9-channel: ConsistentID pipeline with the random tiny adapter (LoRA and ID projections on)}."""
    return {nine: load_pipe(base, tiny_models[1]) for nine, base in bases.items()}


def no_regions(face):
    """The same identity without parsed regions: no class token is fused, neither in the prompt nor the negative."""
    return dataclasses.replace(face, region_names=[], region_mask=torch.zeros(5, dtype=torch.bool), cache={})


def run(pipe, mode, face, controlnet=None, **kwargs):
    options = {
        "num_inference_steps": STEPS,
        "guidance_scale": 5.0,
        "negative_prompt": NEGATIVE,
        "generator": torch.Generator().manual_seed(0),
        "height": SIZE,
        "width": SIZE,
        "output_type": "np",
        **mode_inputs(mode),
        **kwargs,
    }
    target = mode_pipeline(pipe, mode, controlnet if mode.startswith("controlnet") else None)
    return consistentid_call(pipe, target, PROMPT, face, **options).images


@pytest.mark.parametrize("case", list(CASES))
def test_id_branch_off_equals_diffusers_pipeline_of_the_mode(
    case, no_op_pipes, plain_bases, controlnet, astronaut_inputs
):
    mode, nine = CASES[case]
    pipe = no_op_pipes[nine]
    face = no_regions(astronaut_inputs)
    ours = run(pipe, mode, face, controlnet, id_scale=0.0, start_merge_step=STEPS)

    cls = getattr(diffusers, MODES[mode][0])
    extra = {"controlnet": controlnet} if mode.startswith("controlnet") else {}
    reference = cls(**plain_bases[nine].components, **extra)
    reference.set_progress_bar_config(disable=True)
    text = build_facial_prompt(pipe.tokenizer, PROMPT, face.region_names).prompt_text_only
    expected = reference(
        text,
        negative_prompt=NEGATIVE,
        num_inference_steps=STEPS,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        height=SIZE,
        width=SIZE,
        output_type="np",
        **mode_inputs(mode),
    ).images
    assert ours.shape == (1, SIZE, SIZE, 3)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def record_contexts(module, seen: list):
    return module.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True
    )


@pytest.mark.parametrize("case", list(CASES))
def test_merge_step_switches_the_context_and_the_id_branch_changes_the_output(
    case, pipes, controlnet, astronaut_inputs
):
    mode, nine = CASES[case]
    pipe = pipes[nine]
    partial = mode != "controlnet"  # modes with an init image run strength 0.75 of the 4 steps
    options = {"num_inference_steps": 4, "start_merge_step": 0, **({"strength": 0.75} if partial else {})}
    unet_seen, controlnet_seen = [], []
    controlnet_attention = next(m for name, m in controlnet.named_modules() if name.endswith("attn2"))
    hooks = [record_contexts(pipe.unet, unet_seen), record_contexts(controlnet_attention, controlnet_seen)]
    try:
        on = run(pipe, mode, astronaut_inputs, controlnet, **options)
    finally:
        for hook in hooks:
            hook.remove()
    negative, early, late, _ = pipe.id_contexts(
        [PROMPT], NEGATIVE, astronaut_inputs, 1, torch.device("cpu"), torch.float32
    )
    assert len(unet_seen) == (3 if partial else 4)
    torch.testing.assert_close(unet_seen[0], torch.cat([negative, early]))  # step 0 <= merge step: text-only
    for context in unet_seen[1:]:
        torch.testing.assert_close(context, torch.cat([negative, late]))  # later steps: the fused facial prompt
    assert (early - late).abs().max() > 1e-4
    if mode.startswith("controlnet"):
        assert len(controlnet_seen) == len(unet_seen)
        for ours, text in zip(controlnet_seen, unet_seen, strict=True):
            torch.testing.assert_close(ours, text[:, :77])  # the ControlNet sees the text tokens only
    assert controlnet._forward_pre_hooks == {}  # ...and only during the call

    off = run(pipe, mode, astronaut_inputs, controlnet, id_scale=0.0, **options)
    assert np.abs(on - off).max() > 1e-3


def test_inpainting_with_a_4_channel_unet_changes_only_the_masked_latents(pipes, astronaut_inputs):
    """Latent blending: outside the mask every step ends on the photo's latents, so the identity changes only the
    masked part of the result."""
    on = run(pipes[False], "inpaint", astronaut_inputs, output_type="latent")
    off = run(pipes[False], "inpaint", astronaut_inputs, output_type="latent", id_scale=0.0)
    small = pictures()["mask"].resize((SIZE // 2, SIZE // 2), Image.NEAREST)  # the latent grid
    mask = torch.from_numpy(np.asarray(small) > 0)
    assert torch.equal(on[..., ~mask], off[..., ~mask])
    assert (on[..., mask] - off[..., mask]).abs().max() > 1e-3


def test_one_image_per_generator_across_prompts(pipes, astronaut_inputs):
    pipe = pipes[False]
    target = mode_pipeline(pipe, "img2img")
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 0, 1)]
    options = {"num_inference_steps": 2, "height": SIZE, "width": SIZE, "output_type": "np", **mode_inputs("img2img")}
    both = consistentid_call(
        pipe, target, ["a", "b"], astronaut_inputs, num_images_per_prompt=2, generator=gens, **options
    ).images
    single = consistentid_call(
        pipe, target, "b", astronaut_inputs, generator=torch.Generator().manual_seed(1), **options
    )
    assert both.shape == (4, SIZE, SIZE, 3)
    np.testing.assert_allclose(both[3], single.images[0], atol=1e-5)


def test_mode_pipeline_shares_the_models_and_follows_a_new_scheduler(pipes):
    from diffusers import DDIMScheduler

    pipe = pipes[False]
    target = mode_pipeline(pipe, "inpaint")
    assert type(target).__name__ == "StableDiffusionInpaintPipeline"
    assert target.unet is pipe.unet and target.text_encoder is pipe.text_encoder
    assert mode_pipeline(pipe, "inpaint") is target
    scheduler = pipe.scheduler
    try:
        pipe.scheduler = DDIMScheduler.from_config(scheduler.config)
        assert mode_pipeline(pipe, "inpaint").scheduler is pipe.scheduler
    finally:
        pipe.scheduler = scheduler


def test_modes_of_the_inputs_and_their_errors(pipes):
    assert mode_for(False, False, False) == "text2img"
    assert mode_for(True, False, False) == "img2img"
    assert mode_for(True, True, False) == "inpaint"
    assert mode_for(False, False, True) == "controlnet"
    assert mode_for(True, True, True) == "controlnet-inpaint"
    with pytest.raises(UserError, match="mask needs the photo"):
        mode_for(False, True, False)
    pipe = pipes[False]
    with pytest.raises(UserError, match="needs a ControlNet"):
        mode_pipeline(pipe, "controlnet")
    with pytest.raises(UserError, match=r"strength 1\.5"):
        steps_to_run(mode_pipeline(pipe, "img2img"), 10, 1.5)
    with pytest.raises(UserError, match="strength needs an init image"):
        steps_to_run(mode_pipeline(pipe, "text2img"), 10, 0.5)
    with pytest.raises(UserError, match="runs none of them"):
        steps_to_run(mode_pipeline(pipe, "img2img"), 4, 0.2)
    assert steps_to_run(mode_pipeline(pipe, "img2img"), 10, None) == 8  # diffusers' img2img default strength 0.8
    assert steps_to_run(mode_pipeline(pipe, "inpaint"), 10, None) == 10  # inpainting: 1.0
