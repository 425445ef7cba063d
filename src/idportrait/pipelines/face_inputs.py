"""Per-identity inputs of ConsistentID: computed once per reference photo, reused for every prompt and seed.

Data flow (spec §3.1-3.3)::

    photo (PIL RGB)
      -> face analyzer -> largest face -> normed embedding (BGR inside the backend)   id_embedding [D]
      -> face parser -> regions -> region images (photo on black, whole frame)         <= 5 PIL images
      -> CLIP preprocess (224) -> CLIP vision hidden_states[-2]
             whole photo                                                               clip_embeds [257, C]
             regions, padded to 5 with the zero image's features                       region_embeds [5, 257, C]

Where the CLIP image encoder is on a GPU, the region images and the CLIP preprocessing are made there too
(`region_tensors`, `clip_pixels`: the same resizes in torch, equal to the PIL path within one grey level at edges);
on the CPU they stay PIL's, as the release.

`FaceInputs` holds only these model-independent features (they depend on the face backend and the CLIP
image encoder, not on the adapter), so they can be saved with `save` and loaded with `load` to skip face
analysis entirely (``idportrait generate --face-inputs FILE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from idportrait.errors import CheckpointError, NoFaceError
from idportrait.faces.analyzer import FaceFinder, FaceParser
from idportrait.faces.labels import MAX_REGIONS

FORMAT = "idportrait.face_inputs.v1"


@dataclass
class FaceInputs:
    """One identity's ConsistentID inputs (float32, CPU).

    id_embedding: [D] L2-normalised face embedding (512 ArcFace; 128 with the offline dlib backend).
    clip_embeds: [257, C] CLIP penultimate hidden states of the whole photo (C = 1280 for ViT-H/14).
    region_embeds: [5, 257, C] CLIP penultimate hidden states of the region images, zero-image padded.
    region_mask: bool [5], True for real regions (the first ``len(region_names)``).
    region_names: the parsed regions in region order, e.g. ``["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]``.
    source: where the photo came from (for messages and the settings JSON).
    cache: adapter-dependent tokens computed from these inputs (filled by the pipeline, never saved).
    """

    id_embedding: torch.Tensor
    clip_embeds: torch.Tensor
    region_embeds: torch.Tensor
    region_mask: torch.Tensor
    region_names: list[str]
    source: str = "<image>"
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def save(self, path: str | Path) -> None:
        """Write a safetensors file (atomically) with the tensors and the region names as metadata."""
        from idportrait.imageio import write_safetensors

        tensors = {
            "id_embedding": self.id_embedding.float().contiguous(),
            "clip_embeds": self.clip_embeds.float().contiguous(),
            "region_embeds": self.region_embeds.float().contiguous(),
            "region_mask": self.region_mask.to(torch.uint8).contiguous(),
        }
        meta = {"format": FORMAT, "region_names": json.dumps(self.region_names), "source": self.source}
        write_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path) -> FaceInputs:
        """Read a file written by `save`; raises `CheckpointError` for anything else."""
        from idportrait.imageio import read_safetensors

        path = Path(path)
        if not path.is_file():
            raise CheckpointError("face-inputs file not found", path)
        tensors, meta = read_safetensors(path)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"not a face-inputs file (format {meta.get('format')!r}, expected {FORMAT!r})", path)
        return cls(
            id_embedding=tensors["id_embedding"],
            clip_embeds=tensors["clip_embeds"],
            region_embeds=tensors["region_embeds"],
            region_mask=tensors["region_mask"].bool(),
            region_names=json.loads(meta["region_names"]),
            source=meta.get("source", str(path)),
        )


@torch.no_grad()
def clip_hidden_states(image_encoder: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """CLIP vision penultimate hidden states: pixel_values [N, 3, 224, 224] -> [N, 257, C] float32 on CPU."""
    param = next(image_encoder.parameters())
    out = image_encoder(pixel_values.to(param.device, param.dtype), output_hidden_states=True)
    return out.hidden_states[-2].float().cpu()


def clip_pixels(images: list[torch.Tensor], feature_extractor: Any) -> torch.Tensor:
    """The CLIP image processor's preprocessing in torch, on the images' device: float [3, H, W] images with 0..255
    values -> pixel values [N, 3, S, S] (shortest side to S bicubic, antialiased and rounded to 8 bits as PIL's
    resize; centre crop S; rescale and mean/std)."""
    side = feature_extractor.size["shortest_edge"]
    crop_h, crop_w = feature_extractor.crop_size["height"], feature_extractor.crop_size["width"]
    device = images[0].device
    mean = torch.tensor(feature_extractor.image_mean, device=device).view(3, 1, 1)
    std = torch.tensor(feature_extractor.image_std, device=device).view(3, 1, 1)
    out = []
    for image in images:
        h, w = image.shape[1:]
        size = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
        resized = F.interpolate(image[None], size=size, mode="bicubic", antialias=True)[0].round().clamp(0, 255)
        top, left = (size[0] - crop_h) // 2, (size[1] - crop_w) // 2
        crop = resized[:, top : top + crop_h, left : left + crop_w]
        out.append((crop * feature_extractor.rescale_factor - mean) / std)
    return torch.stack(out)


def zero_image_embeds(image_encoder: torch.nn.Module, size: int = 224) -> torch.Tensor:
    """CLIP features of the zero image (an all-zero *preprocessed* tensor, as the release): [257, C]."""
    return clip_hidden_states(image_encoder, torch.zeros(1, 3, size, size))[0]


def compute_face_inputs(
    image: Image.Image,
    face_analyzer: FaceFinder,
    face_parser: FaceParser,
    image_encoder: torch.nn.Module,
    feature_extractor: Any,
    zero_embeds: torch.Tensor | None = None,
    source: str = "<image>",
    no_face_id_dim: int | None = None,
    parse_size: int | None = None,
    crops_on_device: bool | None = None,
) -> FaceInputs:
    """Run face analysis, parsing and CLIP on one photo.

    ``zero_embeds`` [257, C] is the zero image's CLIP features (pass the pipeline's cached copy to skip
    recomputing them). A photo without a face raises `NoFaceError`, unless ``no_face_id_dim`` is given: then
    it gets a zero identity embedding of that size and no regions (what the release does silently).
    ``parse_size``: the square size the parser runs at (`FaceParser.parse`; None: its own, 512 for BiSeNet).
    ``crops_on_device``: make the region images and CLIP pixels in torch on the encoder's device (default: when
    that is a GPU), else with PIL.
    """
    from idportrait.faces.parsing import region_images, region_tensors

    image = image.convert("RGB")
    device = next(image_encoder.parameters()).device
    on_device = device.type == "cuda" if crops_on_device is None else crops_on_device
    try:
        face = face_analyzer.largest_face(image, source)
    except NoFaceError:
        if no_face_id_dim is None:
            raise
        face = None
    parsing = None
    if face is None:
        id_embedding, names = torch.zeros(no_face_id_dim), []
    else:
        if face.embedding is None:
            raise ValueError(f"{source}: the face analyzer returned no identity embedding")
        parsing = face_parser.parse(image, face, size=parse_size)
        names = list(parsing.regions)[:MAX_REGIONS]
        id_embedding = torch.from_numpy(face.normed_embedding.copy())

    if on_device:
        photo = torch.from_numpy(np.array(image)).to(device).permute(2, 0, 1).float()
        crops = region_tensors(photo, parsing)[:MAX_REGIONS] if parsing is not None else []
        pixels = clip_pixels([photo, *crops], feature_extractor)
    else:
        crops = region_images(image, parsing)[:MAX_REGIONS] if parsing is not None else []
        pixels = feature_extractor(images=[image, *crops], return_tensors="pt").pixel_values
    hidden = clip_hidden_states(image_encoder, pixels)  # [1 + R, 257, C]
    if zero_embeds is None:
        zero_embeds = zero_image_embeds(image_encoder, pixels.shape[-1])
    pad = zero_embeds[None].expand(MAX_REGIONS - len(names), -1, -1)
    return FaceInputs(
        id_embedding=id_embedding,
        clip_embeds=hidden[0],
        region_embeds=torch.cat([hidden[1:], pad], dim=0),
        region_mask=torch.arange(MAX_REGIONS) < len(names),
        region_names=names,
        source=source,
    )
