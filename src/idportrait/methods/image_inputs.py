"""The images a ConsistentID call may take besides the reference photo, checked like photos.

    init_image      the photo to change (img2img), or to repaint where the mask is white (inpainting)
    mask_image      white = repaint, black = keep, the init image's size; "face" = the largest face found in the
                    init image (repaint the reference's face into this photo)
    control_image   what a ControlNet follows (edges, a pose skeleton...), the init image's size when there is
                    one; "canny" = the init image's Canny edges (thresholds 100/200, as the release demos)

`read_image_inputs` reads and checks the command-line values before any model loads; `face_mask` and
`resolve_image_inputs` turn the keywords into images once the face models are there. Every problem is one
`UserError` line naming the option and the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idportrait.errors import ImageError, UserError
from idportrait.imageio import load_image

FACE_MASK = "face"
CANNY = "canny"
FACE_MASK_GROW = 0.08
"""The face mask is widened by this share of the face's size (the seam then falls on skin the model repaints)."""


ImageValue = str | Path | Image.Image | None
"""One image option: a file path, a loaded image, a keyword (mask "face", control "canny") or None."""


@dataclass
class ImageInputs:
    """An init image, a mask and a control image; None where absent; a mask or control may be its keyword."""

    init_image: Image.Image | None = None
    mask_image: Image.Image | str | None = None
    control_image: Image.Image | str | None = None
    source: str = "the init image"


def _load(value: ImageValue, keyword: str | None = None) -> Image.Image | str | None:
    """``value`` as an image (a file is loaded and checked like a photo), or its keyword, or None."""
    if value is None or isinstance(value, Image.Image):
        return value
    return keyword if keyword is not None and str(value) == keyword else load_image(value)


def read_image_inputs(init_image: ImageValue, mask_image: ImageValue, control_image: ImageValue) -> ImageInputs:
    """Load and check ``--init-image`` / ``--mask`` / ``--control-image`` (module doc); errors name the files."""
    inputs = ImageInputs(
        init_image=_load(init_image),
        mask_image=_load(mask_image, FACE_MASK),
        control_image=_load(control_image, CANNY),
        source="the init image" if isinstance(init_image, Image.Image | None) else str(init_image),
    )

    def name(option: str, value: ImageValue) -> str:
        return option if isinstance(value, Image.Image | None) else f"{option} {value}"

    names = {
        "init_image": name("--init-image", init_image),
        "mask_image": name("--mask", mask_image),
        "control_image": name("--control-image", control_image),
    }
    check_image_inputs(inputs, names)
    return inputs


def check_image_inputs(inputs: ImageInputs, names: dict[str, str] | None = None) -> None:
    """A mask or a keyword needs an init image; a mask and a control image have the init image's size; a mask
    has something to repaint. ``names``: how errors name each image (default: its option)."""
    names = {"init_image": "--init-image", "mask_image": "--mask", "control_image": "--control-image"} | (names or {})
    init = inputs.init_image
    for key, keyword in (("mask_image", FACE_MASK), ("control_image", CANNY)):
        value = getattr(inputs, key)
        if value is None:
            continue
        if init is None and (key == "mask_image" or value == keyword):
            raise UserError(f"{names[key]} needs the photo it belongs to (--init-image)")
        if isinstance(value, Image.Image) and init is not None and value.size != init.size:
            raise UserError(
                f"{names[key]} is {value.width}x{value.height} pixels, but {names['init_image']} is "
                f"{init.width}x{init.height}; they must be the same size"
            )
    mask = inputs.mask_image
    if isinstance(mask, Image.Image) and not np.asarray(mask.convert("L")).any():
        raise ImageError(f"{names['mask_image']} is black everywhere: nothing to repaint (white = repaint)")


def face_mask(photo: Image.Image, face_analyzer: Any, face_parser: Any, source: str = "the init image") -> Image.Image:
    """Mask ("L", photo size) of the largest face in ``photo``: its parsed skin, brows, eyes, ears, nose, mouth and
    lips, holes filled, widened by `FACE_MASK_GROW` of the face size. Raises `NoFaceError` naming ``source``."""
    import cv2

    from idportrait.faces.labels import CLASS_IDS
    from idportrait.faces.parsing import fill_outer_contours

    face = face_analyzer.largest_face(photo, source)
    labels = face_parser.parse(photo, face).labels
    inside = np.isin(labels, np.arange(CLASS_IDS["Face"], CLASS_IDS["Lower_Lip"] + 1)).astype(np.uint8) * 255
    inside = np.asarray(Image.fromarray(inside).resize(photo.size, Image.NEAREST)) > 0
    x1, y1, x2, y2 = face.bbox
    pad_x, pad_y = 0.5 * (x2 - x1), 0.5 * (y2 - y1)  # only the largest face: its box, half as wide again each side
    box = np.zeros_like(inside)
    box[max(0, int(y1 - pad_y)) : int(y2 + pad_y) + 1, max(0, int(x1 - pad_x)) : int(x2 + pad_x) + 1] = True
    mask = fill_outer_contours(inside & box)
    radius = max(1, round(FACE_MASK_GROW * face.size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(mask.astype(np.uint8) * 255, kernel)
    if not grown.any():
        raise ImageError("the face parser found no face pixels to repaint", source)
    return Image.fromarray(grown)


def canny_edges(photo: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """White Canny edges on black, RGB, the photo's size (the control image of the release's ControlNet demos)."""
    import cv2

    edges = cv2.Canny(np.asarray(photo.convert("RGB")), low, high)
    return Image.fromarray(np.repeat(edges[..., None], 3, axis=2))


def resolve_image_inputs(inputs: ImageInputs) -> dict[str, Image.Image]:
    """``{"init_image", "mask_image", "control_image"}`` as images (the canny keyword computed), absent ones left out.

    A ``face`` mask must have been replaced by its image (`face_mask`) first.
    """
    check_image_inputs(inputs)
    if inputs.mask_image == FACE_MASK:
        raise ValueError("compute the face mask first (face_mask)")
    out: dict[str, Image.Image] = {}
    if inputs.init_image is not None:
        out["init_image"] = inputs.init_image
    if inputs.mask_image is not None:
        out["mask_image"] = inputs.mask_image.convert("L")
    if inputs.control_image == CANNY:
        out["control_image"] = canny_edges(inputs.init_image)
    elif inputs.control_image is not None:
        out["control_image"] = inputs.control_image.convert("RGB")
    return out
