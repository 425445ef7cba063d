"""``--init-image --mask --strength --control-image --controlnet``: ConsistentID's img2img, inpainting and ControlNet
modes on the command line (`generate`, `generate-batch`), checked before any model loads.

    idportrait generate --face me.jpg --init-image party.jpg --mask face -p "a photo of a person"   # repaint a face
    idportrait generate --face me.jpg --init-image room.jpg --mask sofa.png --strength 0.9 -p "..."  # inpaint
    idportrait generate --face me.jpg --control-image pose.png --controlnet openpose -p "..."        # ControlNet
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from idportrait.errors import UserError

InitImage = Annotated[
    Path | None,
    typer.Option(help="ConsistentID: photo to change (img2img), or to repaint where --mask is white (inpainting)."),
]
Mask = Annotated[
    str | None,
    typer.Option(help="Mask of --init-image, its size, white = repaint; 'face' = its largest face (repaint a face)."),
]
Strength = Annotated[
    float | None,
    typer.Option(help="Share of the steps that repaint --init-image, in (0, 1]: 0.8 for img2img, 1.0 inpainting."),
]
ControlImage = Annotated[
    str | None,
    typer.Option(help="Image the --controlnet follows (edges, pose...); 'canny' = the edges of --init-image."),
]
ControlNet = Annotated[
    str | None,
    typer.Option(help="ControlNet for --control-image: canny, openpose, inpaint (SD1.5), a hub id or a folder."),
]

CONSISTENTID_METHODS = ("consistentid", "consistentid-sdxl")


def read_mode_options(
    method: str,
    init_image: Path | None,
    mask: str | None,
    strength: float | None,
    control_image: str | None,
    controlnet: str | None,
) -> dict[str, Any]:
    """``method.generate`` options, recorded as they are in settings.json: the image paths (or keywords) and the
    strength; {} without them.

    Raises `UserError` for options that do not fit together, images that are not photos or not of the init
    image's size (`idportrait.methods.image_inputs`), a strength outside (0, 1], a method that is not ConsistentID.
    """
    from idportrait.methods.image_inputs import read_image_inputs

    given = {"--init-image": init_image, "--mask": mask, "--strength": strength, "--control-image": control_image}
    used = [option for option, value in given.items() if value is not None]
    if not used:
        if controlnet is not None:
            raise UserError("--controlnet needs --control-image")
        return {}
    if method not in CONSISTENTID_METHODS:
        raise UserError(f"{', '.join(used)} apply to ConsistentID, not {method}")
    if strength is not None:
        if init_image is None:
            raise UserError("--strength needs --init-image")
        if not 0.0 < strength <= 1.0:
            raise UserError(f"--strength {strength}: must be in (0, 1]")
    if (control_image is None) != (controlnet is None):
        raise UserError("--control-image and --controlnet go together")
    read_image_inputs(init_image, mask, control_image)  # the checks; the method reads the files again per call
    options = {"init_image": init_image, "mask_image": mask, "control_image": control_image, "strength": strength}
    return {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
