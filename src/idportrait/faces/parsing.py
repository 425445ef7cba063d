"""Face parsing with BiSeNet and ConsistentID's region extraction.

Data flow (ConsistentID inference, spec §3.2-3.3):

    photo (PIL RGB, any size)
      -> preprocess: resize SxS BILINEAR, [0, 1], ImageNet mean/std           [1, 3, S, S]  (S = 512; SDXL: 1280)
      -> BiSeNet main logits -> argmax                                        uint8 [S, S]
      -> extract_regions: per kept label, outer contours filled               Parsing (SxS)
      -> region_images: each mask resized to the photo, photo on black        list[PIL RGB], photo size

`extract_regions` and `region_images` work on any label map, so the landmark parser reuses them.
`BiSeNetParser.parse_batch` parses many photos in one network call; `region_tensors` is `region_images` in torch,
on the photo's device (PIL's bicubic as torch's antialiased bicubic, both rounded to 8 bits: equal to within one
grey level at the mask edges).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from idportrait.faces.image import as_rgb_array
from idportrait.faces.labels import BACKGROUND, REGION_LABELS, select_regions
from idportrait.faces.types import Face, Parsing

PARSE_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess(image: Image.Image | np.ndarray, size: int = PARSE_SIZE) -> torch.Tensor:
    """RGB photo -> normalised float32 [1, 3, size, size] (PIL BILINEAR resize, ImageNet mean/std)."""
    image = _as_pil(image).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


@torch.no_grad()
def bisenet_logits(net: torch.nn.Module, image: Image.Image | np.ndarray, size: int = PARSE_SIZE) -> torch.Tensor:
    """Main-head logits float32 [19, size, size] for one RGB photo."""
    device = next(net.parameters()).device
    return net(preprocess(image, size).to(device))[0][0].float().cpu()


@torch.no_grad()
def bisenet_labels(net: torch.nn.Module, images: list[Image.Image | np.ndarray], size: int = PARSE_SIZE) -> np.ndarray:
    """Label maps uint8 [B, size, size] of RGB photos: one network call, argmax on the network's device."""
    param = next(net.parameters())
    batch = torch.cat([preprocess(image, size) for image in images]).to(param.device, param.dtype)
    return net(batch)[0].argmax(1).to(torch.uint8).cpu().numpy()


def fill_outer_contours(mask: np.ndarray) -> np.ndarray:
    """bool [H, W] -> bool [H, W] with every outer contour filled (holes closed).

    OpenCV ``findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)`` + ``drawContours(FILLED)``, as the release.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8) * 255, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return filled > 0


def extract_regions(labels: np.ndarray) -> Parsing:
    """uint8 label map [H, W] -> `Parsing` with ConsistentID's regions (at most 5, region order).

    Of each eye/ear/lip pair only the lower present id is kept; each kept mask has its outer contours
    filled; the person mask is every pixel that is not background.
    """
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    keys = select_regions(set(np.unique(labels).tolist()))
    regions = {key: fill_outer_contours(labels == REGION_LABELS[key]) for key in keys}
    return Parsing(labels=labels, regions=regions, person_mask=labels != BACKGROUND)


def region_images(image: Image.Image | np.ndarray, parsing: Parsing) -> list[Image.Image]:
    """One RGB image per region (parsing order): the photo where the mask is set, black elsewhere.

    Whole frame, photo size, no crop. Masks are resized to the photo as 8-bit images with PIL's
    bicubic resize and used as alpha (``Image.composite``), as the release does.
    """
    image = _as_pil(image)
    black = Image.new("RGB", image.size, (0, 0, 0))
    out = []
    for mask in parsing.regions.values():
        alpha = Image.fromarray(mask.astype(np.uint8) * 255, mode="L").resize(image.size, Image.BICUBIC)
        out.append(Image.composite(image, black, alpha))
    return out


def region_tensors(photo: torch.Tensor, parsing: Parsing) -> list[torch.Tensor]:
    """`region_images` in torch: photo float [3, H, W] with 0..255 values (any device) -> one [3, H, W] per region.

    Each mask is resized to the photo (bicubic, antialiased, rounded to 8 bits) and used as alpha on black.
    """
    if not parsing.regions:
        return []
    masks = torch.from_numpy(np.stack(list(parsing.regions.values()))).to(photo.device)
    alpha = F.interpolate(masks[:, None].float() * 255, size=photo.shape[1:], mode="bicubic", antialias=True)
    alpha = alpha.round().clamp(0, 255)
    return list((photo[None] * alpha / 255).round())


class BiSeNetParser:
    """``parse(image_rgb, face=None, size=None) -> Parsing`` at ``size`` x ``size`` (default 512) with a loaded
    BiSeNet (``parse_batch`` for many).

    The whole photo is parsed (ConsistentID passes face photos); ``face`` is accepted for interface
    compatibility with the landmark parser and ignored.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net.eval()

    def parse(self, image: Image.Image | np.ndarray, face: Face | None = None, size: int | None = None) -> Parsing:
        return self.parse_batch([image], size)[0]

    def parse_batch(self, images: list[Image.Image | np.ndarray], size: int | None = None) -> list[Parsing]:
        """`Parsing` of each photo at ``size`` (default 512), one BiSeNet call for all (the argmax on its device)."""
        labels = bisenet_labels(self.net, images, size or PARSE_SIZE) if images else []
        return [extract_regions(label_map) for label_map in labels]


def default_bisenet_weights(cache_dir: str | Path | None = None, local_files_only: bool = False) -> Path:
    """Path of ConsistentID's ``face_parsing.pth`` from the hub cache (downloaded on first use).

    Raises `ModelNotFoundError` with instructions when the hub cannot be reached.
    """
    from huggingface_hub import hf_hub_download

    from idportrait.hub import fetch
    from idportrait.registry import CONSISTENTID_REPO, FACE_PARSING_FILE

    def download(local: bool) -> Path:
        return Path(
            hf_hub_download(
                CONSISTENTID_REPO, FACE_PARSING_FILE, cache_dir=cache_dir, local_files_only=local or local_files_only
            )
        )

    what = f"BiSeNet {FACE_PARSING_FILE} (or face-parsing.PyTorch's 79999_iter.pth, the same weights)"
    return fetch(what, f"{CONSISTENTID_REPO}/{FACE_PARSING_FILE}", "--parser-weights", download)


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    return Image.fromarray(as_rgb_array(image))
