"""ConsistentID on diffusers' own SD pipelines: text2img, img2img, inpaint, ControlNet, ControlNet img2img / inpaint.

One mechanism for every mode. The ConsistentID pipeline builds the call's contexts once (`id_contexts`: negative,
text-only and augmented, each 77 text + 4 ID tokens = [B, 81, D]; SDXL also their pooled embeddings [B, D2]), and
diffusers' own pipeline of the mode, sharing its models, runs them:

    negative_prompt_embeds = negative context            prompt_embeds = text-only context
    callback_on_step_end = MergeSwitch(...)              after step ``merge_step`` it returns the augmented context
                                                         (the positive half of the CFG batch; SDXL: its pooled too)

The ConsistentID attention processors sit on the shared UNet and split each context into text and ID tokens,
as in text2img. A ControlNet has plain attention: it sees the 77 text tokens of the same contexts
(`text_tokens_only`), so with the ID branch off (``id_scale`` 0, no region fuse) every mode computes exactly what
diffusers' pipeline of that mode computes from the text. (The release's ControlNet-inpaint demo hands the
ControlNet all 81 tokens.)

    pipe = ConsistentIDPipeline.from_pretrained(base); pipe.load_consistentid(...)
    out = consistentid_generate(pipe, ["a photo of a person"], face, init_image=photo, mask_image=mask, strength=0.9)
    # the same, step by step:
    inpaint = mode_pipeline(pipe, "inpaint")          # StableDiffusionInpaintPipeline over pipe's models, no copy
    out = consistentid_call(pipe, inpaint, ["a photo of a person"], face, image=photo, mask_image=mask, strength=0.9)

The merge step counts the denoising steps that run: with ``strength`` s < 1 (img2img, inpaint) diffusers runs
``min(int(steps * s), steps)`` of them, and steps ``i <= last_text_only_step(run, merge_fraction)`` use the
text-only context (the release's inpainting pipelines compare the same loop index with ``start_merge_step``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from idportrait.adapters.consistentid.attention import set_id_scale
from idportrait.errors import UserError
from idportrait.pipelines.common import last_text_only_step
from idportrait.pipelines.face_inputs import FaceInputs

MODES = {  # mode -> (SD1.5 pipeline, SDXL pipeline), diffusers class names
    "text2img": ("StableDiffusionPipeline", "StableDiffusionXLPipeline"),
    "img2img": ("StableDiffusionImg2ImgPipeline", "StableDiffusionXLImg2ImgPipeline"),
    "inpaint": ("StableDiffusionInpaintPipeline", "StableDiffusionXLInpaintPipeline"),
    "controlnet": ("StableDiffusionControlNetPipeline", "StableDiffusionXLControlNetPipeline"),
    "controlnet-img2img": ("StableDiffusionControlNetImg2ImgPipeline", "StableDiffusionXLControlNetImg2ImgPipeline"),
    "controlnet-inpaint": ("StableDiffusionControlNetInpaintPipeline", None),
}
"""No SDXL ControlNet inpainting: diffusers' pipeline of it takes no new pooled embedding from a step callback."""


def mode_for(init_image: bool, mask: bool, control: bool) -> str:
    """The mode of a call that has an init image, a mask and/or a control image (a mask needs an init image)."""
    if mask and not init_image:
        raise UserError("a mask needs the photo it masks (--init-image)")
    image = "inpaint" if mask else "img2img" if init_image else None
    if control:
        return f"controlnet-{image}" if image else "controlnet"
    return image or "text2img"


def is_sdxl(pipe: Any) -> bool:
    """True for an SDXL pipeline (two text encoders)."""
    return getattr(pipe, "text_encoder_2", None) is not None


def mode_pipeline(pipe: Any, mode: str, controlnet: Any = None) -> Any:
    """diffusers' own pipeline of ``mode`` over ``pipe``'s models (shared, not copied) and settings, cached on ``pipe``.

    A new one is built when ``pipe``'s components (its scheduler after an accelerator, say) or the ControlNet change.
    ControlNet modes need ``controlnet`` (a ``ControlNetModel``); the others refuse one.
    """
    import diffusers

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    name = MODES[mode][is_sdxl(pipe)]
    if name is None:
        raise UserError(f"{mode} is not available for SDXL bases (use an SD1.5 base)")
    if mode.startswith("controlnet") != (controlnet is not None):
        raise UserError(
            f"{mode} needs a ControlNet (--controlnet)" if controlnet is None else "a ControlNet needs --control-image"
        )
    key = (mode, id(controlnet), tuple((k, id(v)) for k, v in pipe.components.items()))
    cached = getattr(pipe, "_mode_pipeline", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    cls = getattr(diffusers, name)
    params = inspect.signature(cls.__init__).parameters
    settings = {k: v for k, v in pipe.config.items() if not k.startswith("_")} | pipe.components
    if controlnet is not None:
        settings["controlnet"] = controlnet
    target = cls(**{k: v for k, v in settings.items() if k in params})
    target.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    pipe._mode_pipeline = (key, target)
    return target


def steps_to_run(target: Any, num_inference_steps: int, strength: float | None) -> int:
    """How many denoising steps ``target`` runs: all of them, or ``min(int(steps * strength), steps)`` for a pipeline
    with ``strength`` (None: the pipeline's default strength)."""
    default = inspect.signature(type(target).__call__).parameters.get("strength")
    if default is None:
        if strength is not None:
            raise UserError("strength needs an init image (--init-image)")
        return num_inference_steps
    strength = default.default if strength is None else strength
    if not 0.0 < strength <= 1.0:
        raise UserError(f"strength {strength}: must be in (0, 1]")
    run = min(int(num_inference_steps * strength), num_inference_steps)
    if run < 1:
        raise UserError(f"strength {strength} of {num_inference_steps} steps runs none of them; raise one of them")
    return run


@dataclass
class MergeSwitch:
    """``callback_on_step_end`` of a diffusers pipeline: the delayed merge, and progress.

    After step ``merge_step`` (0-based) the positive context becomes ``late`` [B, 81, D] (SDXL: and the pooled
    embedding ``late_pooled`` [B, D2]); in a CFG batch the negative half stays (``negative``, ``negative_pooled``).
    ``progress(step, total)`` after each step.
    """

    merge_step: int
    negative: torch.Tensor
    late: torch.Tensor
    negative_pooled: torch.Tensor | None = None
    late_pooled: torch.Tensor | None = None
    progress: Callable[[int, int], None] | None = None

    def __call__(self, target: Any, i: int, t: torch.Tensor, tensors: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self.progress is not None:
            self.progress(i + 1, target.num_timesteps)
        if i != self.merge_step:
            return {}
        cfg = target.do_classifier_free_guidance
        out = {"prompt_embeds": torch.cat([self.negative, self.late]) if cfg else self.late}
        if self.late_pooled is not None:
            out["add_text_embeds"] = torch.cat([self.negative_pooled, self.late_pooled]) if cfg else self.late_pooled
        return out


@contextmanager
def text_tokens_only(controlnet: torch.nn.Module, num_text_tokens: int) -> Iterator[None]:
    """While inside, ``controlnet`` sees the first ``num_text_tokens`` tokens of its contexts (the ID tokens after
    them cut off)."""

    def drop_id_tokens(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs["encoder_hidden_states"] = kwargs["encoder_hidden_states"][:, :num_text_tokens]
        return args, kwargs

    handle = controlnet.register_forward_pre_hook(drop_id_tokens, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def encoding_options(pipe: Any) -> set[str]:
    """Names of the keyword options ``pipe.encode_prompts`` takes (SDXL: ``text_encoding``; SD1.5: none)."""
    params = inspect.signature(pipe.encode_prompts).parameters.values()
    return {p.name for p in params if p.default is not inspect.Parameter.empty}


@torch.no_grad()
def consistentid_call(
    pipe: Any,
    target: Any,
    prompt: str | list[str],
    face_inputs: FaceInputs,
    negative_prompt: str | list[str] | None = None,
    num_images_per_prompt: int = 1,
    num_inference_steps: int = 50,
    start_merge_step: int | None = None,
    merge_fraction: float = 0.6,
    id_scale: float = 1.0,
    strength: float | None = None,
    callback: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Run diffusers' pipeline ``target`` (e.g. from `mode_pipeline`) with ``pipe``'s ConsistentID conditioning.

    ``pipe``: a loaded ConsistentID pipeline (`ConsistentIDMixin`), whose UNet ``target`` shares. Images come out
    prompt-major, ``len(prompts) * num_images_per_prompt`` of them. ``kwargs`` go to ``target`` as they are: the
    mode's inputs (``image``, ``mask_image``, ``control_image``, ``controlnet_conditioning_scale``...),
    ``generator``, ``guidance_scale``, ``height``, ``width``, ``output_type``..., except the keyword options of
    ``pipe.encode_prompts`` (SDXL's ``text_encoding``), which go there. Returns ``target``'s output.
    Delayed merge, ``id_scale`` and ``callback(step, total)`` as in `ConsistentIDPipeline.__call__`; ``strength``
    as diffusers' (None: the pipeline's default).
    """
    pipe._require_adapter()
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    device, dtype = pipe._execution_device, pipe.unet.dtype
    encode_options = {k: kwargs.pop(k) for k in encoding_options(pipe) & kwargs.keys()}
    negative, early, late, pooled = pipe.id_contexts(
        prompts, negative_prompt, face_inputs, num_images_per_prompt, device, dtype, **encode_options
    )
    run = steps_to_run(target, num_inference_steps, strength)
    merge_step = last_text_only_step(run, merge_fraction, start_merge_step)
    first = early if merge_step >= 0 else late
    switch = MergeSwitch(merge_step, negative, late, progress=callback)
    embeds = {"prompt_embeds": first, "negative_prompt_embeds": negative}
    if pooled is not None:
        negative_pooled, early_pooled, late_pooled = pooled
        switch.negative_pooled, switch.late_pooled = negative_pooled, late_pooled
        embeds |= {
            "pooled_prompt_embeds": early_pooled if merge_step >= 0 else late_pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
    if strength is not None:
        kwargs["strength"] = strength
    set_id_scale(pipe.unet, id_scale)
    controlnet = getattr(target, "controlnet", None)
    with nullcontext() if controlnet is None else text_tokens_only(controlnet, pipe.tokenizer.model_max_length):
        out = target(
            **embeds,
            num_images_per_prompt=1,  # the contexts hold one row per image already
            num_inference_steps=num_inference_steps,
            callback_on_step_end=switch,
            **kwargs,
        )
    pipe.maybe_free_model_hooks()  # with model offload: every model back on the CPU
    return out


def mode_images(
    mode: str, init_image: Image.Image | None, mask_image: Image.Image | None, control_image: Image.Image | None
) -> dict[str, Image.Image]:
    """The images as diffusers' pipeline of ``mode`` names them (its ``image`` is the control image in "controlnet")."""
    if mode == "controlnet":
        return {"image": control_image}
    names = {"image": init_image, "mask_image": mask_image, "control_image": control_image}
    return {name: image for name, image in names.items() if image is not None}


def resize_images(images: dict[str, Image.Image], width: int, height: int) -> dict[str, Image.Image]:
    """Every image at (width, height) pixels (masks with nearest-neighbour sampling, so they stay black and white)."""
    return {
        name: image.resize((width, height), Image.NEAREST if name == "mask_image" else Image.LANCZOS)
        if image.size != (width, height)
        else image
        for name, image in images.items()
    }


def crop_box(mask: Image.Image, width: int, height: int, context: float) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) in the mask's pixels: the mask's bounding box grown by ``context`` times its longer side on
    every side, then widened to the aspect ratio ``width / height`` inside the image (diffusers' crop rule)."""
    from diffusers.image_processor import VaeImageProcessor

    box = mask.getbbox()
    if box is None:
        raise UserError("the mask is black everywhere: nothing to repaint")
    pad = round(context * max(box[2] - box[0], box[3] - box[1]))
    return VaeImageProcessor.get_crop_region(mask, width, height, pad=pad)


def consistentid_generate(
    pipe: Any,
    prompt: str | list[str],
    face_inputs: FaceInputs,
    init_image: Image.Image | None = None,
    mask_image: Image.Image | None = None,
    control_image: Image.Image | None = None,
    controlnet: Any = None,
    height: int | None = None,
    width: int | None = None,
    crop_context: float | None = None,
    **kwargs: Any,
) -> Any:
    """ConsistentID in the mode its images ask for (`mode_for`): none -> text2img (``pipe``'s own call), an init
    image -> img2img, with a mask (white = repaint) -> inpaint, a control image -> the ControlNet counterpart.

    ``controlnet`` (a ``ControlNetModel``) is used when there is a control image. With ``height`` and ``width`` the
    images are resized to that size first; else the output has the init (or control) image's size. Every output
    image gets its own copy of the images, so with a list of generators each image depends only on its own
    (diffusers' inpainting encodes one init image with the first generator). ``kwargs``: `consistentid_call` /
    ``pipe.__call__`` keywords (``strength`` for init images only). Returns the output.

    ``crop_context`` (inpainting, PIL output): repaint only the mask's surroundings (`crop_box`) at ``width`` x
    ``height`` and paste the result into the init image where the mask is white; the output then has the init
    image's size and its pixels outside the mask (diffusers' ``padding_mask_crop``, done here so that every
    image keeps its own generator).
    """
    mode = mode_for(init_image is not None, mask_image is not None, control_image is not None)
    if mode == "text2img":
        if kwargs.pop("strength", None) is not None:
            raise UserError("strength needs an init image (--init-image)")
        return pipe(prompt, face_inputs=face_inputs, height=height, width=width, **kwargs)
    images = mode_images(mode, init_image, mask_image, control_image)
    box = None
    if crop_context is not None and mask_image is not None:
        if height is None or width is None or kwargs.get("output_type", "pil") != "pil":
            raise ValueError("crop_context needs height, width and PIL output")
        box = crop_box(mask_image, width, height, crop_context)
        images = {name: image.crop(box) for name, image in images.items()}
    if height is not None and width is not None:
        images = resize_images(images, width, height)
    batch = (1 if isinstance(prompt, str) else len(prompt)) * kwargs.get("num_images_per_prompt", 1)
    per_image = {name: [image] * batch for name, image in images.items()}  # each image encoded with its own generator
    target = mode_pipeline(pipe, mode, controlnet if mode.startswith("controlnet") else None)
    params = inspect.signature(type(target).__call__).parameters
    sizes = {k: v for k, v in (("height", height), ("width", width)) if v is not None and k in params}
    out = consistentid_call(pipe, target, prompt, face_inputs, **per_image, **sizes, **kwargs)
    if box is not None:
        paste = target.image_processor.apply_overlay
        out.images = [paste(mask_image, init_image, image, box) for image in out.images]
    return out
