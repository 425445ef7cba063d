"""``consistentid``: the ConsistentID SD1.5 pipeline behind the `Method` interface.

``generate`` also takes an init image, a mask and a control image (`idportrait.methods.image_inputs`), which pick
the mode: img2img, inpainting ("repaint the face into this photo" with ``mask_image="face"``), ControlNet
(`idportrait.pipelines.consistentid_modes`); the ControlNet is a loader option (``controlnet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from idportrait import registry
from idportrait.devices import resolve_device
from idportrait.errors import UserError
from idportrait.methods.base import (
    SizeWH,
    apply_speed_options,
    image_key,
    output_size,
    seed_generators,
    size_options,
)
from idportrait.methods.image_inputs import FACE_MASK, face_mask, read_image_inputs, resolve_image_inputs

IMAGE_OPTIONS = ("init_image", "mask_image", "control_image")
"""`generate` options that pick the mode: file paths, images or keywords (`idportrait.methods.image_inputs`)."""
CROP_CONTEXT = 0.5
"""Inpainting repaints the mask's bounding box grown by this share of its longer side on each side, at the working
size, and pastes the result into the photo (`consistentid_modes.crop_box`); ``crop_context=None``: the whole photo."""


@dataclass
class ConsistentIDMethod:
    """Wraps a loaded `ConsistentIDPipeline` with its face analyzer and parser (one reference photo).

    ``controlnet``: a loaded ``ControlNetModel`` for calls with a control image, or None.
    """

    pipe: Any
    face_analyzer: Any
    face_parser: Any
    name: str = "consistentid"
    size: SizeWH | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    controlnet: Any = None
    _prepared: dict[str, Any] = field(default_factory=dict, repr=False)
    _face_masks: dict[str, Any] = field(default_factory=dict, repr=False)
    multi_reference: ClassVar[bool] = False

    def prepare(self, reference: Image.Image, source: str = "<image>") -> Any:
        """`FaceInputs` of the reference (face embedding, parsing, CLIP features), cached by image content."""
        key = image_key(reference)
        if key not in self._prepared:
            self._prepared[key] = self.pipe.prepare_face_inputs(reference, self.face_analyzer, self.face_parser, source)
        return self._prepared[key]

    def generate(self, prepared: Any, prompts: list[str], seeds: list[int], **options: Any) -> list[Image.Image]:
        """One image per (prompt, seed); ``options`` are `ConsistentIDPipeline.__call__` keywords, and for the other
        modes ``init_image``, ``mask_image``, ``control_image`` (`IMAGE_OPTIONS`), ``strength``,
        ``controlnet_conditioning_scale`` and ``crop_context`` (`CROP_CONTEXT`). With an init or control image and
        no size the work is done at its aspect ratio at the base's pixel count (512x512 for SD1.5), in multiples
        of 64; inpainting returns the init image at its own size, repainted where the mask is white.
        """
        from idportrait.pipelines.consistentid_modes import consistentid_generate

        kwargs = {**size_options(self.size), **self.defaults, **options}
        images = self.mode_images(*(kwargs.pop(key, None) for key in IMAGE_OPTIONS))
        if images and (kwargs.get("height") is None or kwargs.get("width") is None):
            first = images.get("init_image", images.get("control_image"))
            native = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
            fitted = size_options(output_size(first.width, first.height, native**2))
            kwargs |= {k: v if kwargs.get(k) is None else kwargs[k] for k, v in fitted.items()}
        if "mask_image" in images:
            kwargs.setdefault("crop_context", CROP_CONTEXT)
        out = consistentid_generate(
            self.pipe,
            prompts,
            prepared,
            controlnet=self.controlnet,
            num_images_per_prompt=len(seeds),
            generator=seed_generators(prompts, seeds),
            **images,
            **kwargs,
        )
        return out.images

    def mode_images(self, init_image: Any, mask_image: Any, control_image: Any) -> dict[str, Image.Image]:
        """The call's init, mask and control images (`idportrait.methods.image_inputs`), read and checked; a
        ``face`` mask is the init image's largest face (cached per image)."""
        inputs = read_image_inputs(init_image, mask_image, control_image)
        if inputs.mask_image == FACE_MASK:
            if self.face_analyzer is None or self.face_parser is None:
                raise UserError("--mask face needs the face models (pass --face, not --face-inputs)")
            photo, key = inputs.init_image, image_key(inputs.init_image)
            if key not in self._face_masks:
                self._face_masks[key] = face_mask(photo, self.face_analyzer, self.face_parser, inputs.source)
            inputs.mask_image = self._face_masks[key]
        return resolve_image_inputs(inputs)


def load_face_models(
    face_backend: str, parser: str, parser_weights: str | None, device: str, det_size: int = 640
) -> tuple[Any, Any]:
    """(face analyzer, face parser): ``insightface:buffalo_l`` (detector input ``det_size``) or ``dlib``;
    ``bisenet`` or ``landmarks``."""
    from idportrait.faces import get_face_analyzer, get_face_parser

    analyzer = get_face_analyzer(face_backend, device=device, det_size=det_size)
    if parser == "bisenet":
        from idportrait.faces.parsing import default_bisenet_weights

        return analyzer, get_face_parser("bisenet", weights=parser_weights or default_bisenet_weights(), device=device)
    return analyzer, get_face_parser(parser)


def load_consistentid_method(
    base: str | None = None,
    adapter: str | None = None,
    image_encoder: str | None = None,
    vae: str | None = None,
    face_backend: str = registry.FACE_BACKEND_CONSISTENTID,
    parser: str = "bisenet",
    parser_weights: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offload: bool = False,
    face_models: bool = True,
    size: SizeWH | None = None,
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    controlnet: str | None = None,
    **defaults: Any,
) -> ConsistentIDMethod:
    """Load base + ConsistentID + face models; ``None`` means the registry default (real hub ids).

    ``face_models=False`` skips the face analyzer and parser (for callers that pass saved `FaceInputs`).
    ``defaults`` become default `ConsistentIDMethod.generate` keywords (e.g. ``num_inference_steps``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    ``controlnet``: canny, openpose, inpaint (`registry.CONTROLNETS`), a hub id or a folder, for control images.
    """
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.pipelines.loading import default_vae, load_controlnet, load_sd15_pipeline
    from idportrait.registry import CONSISTENTID_REPO, SD15_BASE

    device, torch_dtype = resolve_device(device, dtype)
    base = base or SD15_BASE
    if offload and not device.startswith("cuda"):
        raise UserError(f"--offload needs a GPU (device is {device})")
    if offload and controlnet is not None:
        raise UserError("--offload and --controlnet do not go together; drop --offload")
    # with offload, the pipeline stays on the CPU until the adapter and its image encoder are in it
    place = "cpu" if offload else device
    pipe = load_sd15_pipeline(ConsistentIDPipeline, base, vae or default_vae(base), place, torch_dtype)
    pipe.load_consistentid(adapter or CONSISTENTID_REPO, image_encoder=image_encoder)
    defaults = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling) | defaults
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    analyzer, face_parser = (
        load_face_models(face_backend, parser, parser_weights, device) if face_models else (None, None)
    )
    return ConsistentIDMethod(
        pipe=pipe,
        face_analyzer=analyzer,
        face_parser=face_parser,
        size=size,
        defaults=defaults,
        controlnet=None if controlnet is None else load_controlnet(controlnet, pipe.unet, device, torch_dtype),
    )
