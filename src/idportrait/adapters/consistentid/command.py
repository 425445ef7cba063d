"""`idportrait convert`: a ConsistentID checkpoint (release ``.bin``, or safetensors) -> safetensors, in our key layout
or the release's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def convert(
    src: Annotated[Path, typer.Argument(help="ConsistentID checkpoint: release .bin/.pt, or a .safetensors.")],
    dst: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
    layout: Annotated[
        str,
        typer.Option(
            help="ours (facial_encoder./image_proj./adapter.) or release (FacialEncoder./image_proj_model./"
            "adapter_modules., which the release's SDXL loader reads)"
        ),
    ] = "ours",
) -> None:
    """Check a ConsistentID checkpoint strictly and write it as safetensors with its metadata."""
    from rich.console import Console

    from idportrait.adapters.consistentid.checkpoint import LAYOUTS, convert_checkpoint

    if dst.suffix != ".safetensors":
        raise typer.BadParameter(f"{dst}: the output must end in .safetensors")
    if layout not in LAYOUTS:
        raise typer.BadParameter(f"--layout {layout}: use {' or '.join(LAYOUTS)}")
    console = Console(stderr=True)
    with console.status(f"reading {src}"):
        out, metadata = convert_checkpoint(src, dst, layout)
    console.print(
        f"{metadata['variant']} checkpoint: {metadata['num_processors']} attention processors, "
        f"LoRA rank {metadata['rank']}, {metadata['num_tokens']} ID tokens, pairing {metadata['pairing']}",
        soft_wrap=True,
    )
    typer.echo(str(out))
