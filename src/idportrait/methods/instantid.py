"""``instantid``: InstantID (IdentityNet + face adapter, released ``InstantX/InstantID``) behind the `Method` interface.

prepare: largest face of each reference -> mean normed ArcFace embedding [512] (antelopev2, as InstantID was
trained) and the first reference's keypoints, rescaled to the output frame -> the 5-keypoint control image.
generate: `InstantIDPipeline` with one CPU generator per (prompt, seed), prompt-major.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from idportrait import registry
from idportrait.adapters.instantid.kps import draw_kps
from idportrait.faces.analyzer import FaceDetector
from idportrait.faces.types import Face
from idportrait.methods.base import SizeWH, apply_speed_options, output_size, seed_generators
from idportrait.methods.references import as_photo_list, largest_faces, mean_identity

SDXL_PIXELS = 1024 * 1024


@dataclass
class InstantIDReference:
    """face_embedding: [512] mean normed embedding; kps_image: control image at the output size; faces used."""

    face_embedding: torch.Tensor
    kps_image: Image.Image
    faces: list[Face] = field(default_factory=list)


@dataclass
class InstantIDMethod:
    """A loaded `InstantIDPipeline` with its face detector (faces with embeddings, largest first).

    ``size``: the output (width, height); None keeps the first reference's aspect ratio at SDXL's pixel count.
    """

    pipe: Any
    detect: FaceDetector
    name: str = "instantid"
    size: SizeWH | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    multi_reference: ClassVar[bool] = True

    def prepare(self, reference: Image.Image | list[Image.Image], source: str = "<image>") -> InstantIDReference:
        """Face embedding averaged over the photos; keypoints (pose) from the first one."""
        photos = as_photo_list(reference)
        faces = largest_faces(self.detect, photos, source)
        embedding = mean_identity(faces)
        width, height = self.size or output_size(*photos[0].size, SDXL_PIXELS)
        kps = faces[0].kps * np.array([width / photos[0].width, height / photos[0].height], dtype=np.float32)
        return InstantIDReference(face_embedding=embedding, kps_image=draw_kps((width, height), kps), faces=faces)

    def generate(self, prepared: InstantIDReference, prompts: list[str], seeds: list[int], **options: Any) -> list:
        """One image per (prompt, seed), prompt-major; ``options`` are `InstantIDPipeline.__call__` keywords."""
        out = self.pipe(
            list(prompts),
            face_embedding=prepared.face_embedding,
            kps_image=prepared.kps_image,
            num_images_per_prompt=len(seeds),
            generator=seed_generators(prompts, seeds),
            **{**self.defaults, **options},
        )
        return out.images


def load_instantid_method(
    base: str | None = None,
    adapter: str | None = None,
    identitynet: str | None = None,
    face_backend: str = registry.FACE_BACKEND_FACEID6M,
    detect: FaceDetector | None = None,
    size: SizeWH | None = None,
    device: str = "auto",
    dtype: str = "auto",
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    **defaults: Any,
) -> InstantIDMethod:
    """Load SDXL base + IdentityNet + ``ip-adapter.bin`` + face analyzer; ``None`` means the registry default.

    adapter: ``ip-adapter.bin`` file, a folder holding it, or a hub repo (default `registry.INSTANTID_REPO`).
    identitynet: ControlNet folder or hub repo (default the ``ControlNetModel`` folder of the InstantID repo).
    ``defaults`` become default `InstantIDPipeline.__call__` keywords (e.g. ``num_inference_steps``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    """
    from diffusers import ControlNetModel

    from idportrait.devices import resolve_device
    from idportrait.hub import fetch, hub_file
    from idportrait.pipelines.instantid_sdxl import InstantIDPipeline

    device, torch_dtype = resolve_device(device, dtype)
    if identitynet is None:
        repo, subfolder = registry.INSTANTID_REPO, registry.INSTANTID_CONTROLNET_SUBFOLDER
    else:
        repo, subfolder = identitynet, None
    controlnet = fetch(
        "IdentityNet",
        f"{repo}/{subfolder}" if subfolder else repo,
        "--identitynet",
        lambda local: ControlNetModel.from_pretrained(
            repo, subfolder=subfolder, torch_dtype=torch_dtype, local_files_only=local
        ),
    )
    base = base or registry.SDXL_BASE
    pipe = fetch(
        "base model",
        base,
        "--base",
        lambda local: InstantIDPipeline.from_pretrained(
            base, controlnet=controlnet, torch_dtype=torch_dtype, local_files_only=local
        ),
    )
    pipe.load_instantid(
        hub_file(
            str(adapter or registry.INSTANTID_REPO), registry.INSTANTID_ADAPTER_FILE, "InstantID adapter", "--adapter"
        )
    )
    pipe.to(device)
    defaults = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling) | defaults
    pipe.set_progress_bar_config(disable=True)
    if detect is None:
        from idportrait.faces import get_face_analyzer

        detect = get_face_analyzer(face_backend, device=device).detect
    return InstantIDMethod(pipe=pipe, detect=detect, size=size, defaults=defaults)
