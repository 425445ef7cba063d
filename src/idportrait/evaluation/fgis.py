"""FGIS (ConsistentID's fine-grained identity similarity): DINO similarity of corresponding facial regions.

For each facial region group (Face, Eye, Ear, Nose, Lip; `idportrait.faces.labels`) present in both the
reference and the generated parsing, the region is cut out of each photo (pixels outside the mask
black, cropped to the mask's bounding box plus a 10 % margin) and embedded with DINO; FGIS is the mean
cosine over those regions, x100. Images with no region in common get None (an empty cell in scores.csv).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from idportrait.evaluation.dino import DinoEmbedder
from idportrait.faces.labels import REGION_GROUPS
from idportrait.faces.types import Parsing

CROP_MARGIN = 0.1


def region_crops(image: Image.Image, parsing: Parsing, margin: float = CROP_MARGIN) -> dict[str, Image.Image]:
    """Region group -> the region on black, cropped to its box (+margin); masks resized to the photo (nearest)."""
    image = image.convert("RGB")
    array = np.asarray(image)
    crops: dict[str, Image.Image] = {}
    for key, mask in parsing.regions.items():
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(image.size, Image.NEAREST)) > 0
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            continue
        pad_y, pad_x = int(margin * (ys.max() - ys.min() + 1)), int(margin * (xs.max() - xs.min() + 1))
        y1, y2 = max(ys.min() - pad_y, 0), min(ys.max() + pad_y + 1, mask.shape[0])
        x1, x2 = max(xs.min() - pad_x, 0), min(xs.max() + pad_x + 1, mask.shape[1])
        cut = np.where(mask[..., None], array, 0)[y1:y2, x1:x2]
        crops[REGION_GROUPS[key]] = Image.fromarray(np.ascontiguousarray(cut))
    return crops


def fgis(
    dino: DinoEmbedder,
    reference: Image.Image,
    reference_parsing: Parsing,
    generated: Image.Image,
    generated_parsing: Parsing,
) -> tuple[float | None, dict[str, float]]:
    """(FGIS x100 or None, per-region x100 cosines) over region groups present in both images."""
    ref_crops = region_crops(reference, reference_parsing)
    gen_crops = region_crops(generated, generated_parsing)
    groups = [g for g in ref_crops if g in gen_crops]
    if not groups:
        return None, {}
    ref = dino.embed_images([ref_crops[g] for g in groups])
    gen = dino.embed_images([gen_crops[g] for g in groups])
    per_region = {g: float(100.0 * np.dot(r, s)) for g, r, s in zip(groups, ref, gen, strict=True)}
    return float(np.mean(list(per_region.values()))), per_region
