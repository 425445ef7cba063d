"""`idportrait convert`: a ConsistentID checkpoint (release ``.bin``) -> our safetensors layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def convert(
    src: Annotated[Path, typer.Argument(help="ConsistentID checkpoint: release .bin/.pt, or our .safetensors.")],
    dst: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
) -> None:
    """Check a ConsistentID checkpoint strictly and write it as safetensors with its metadata."""
    from rich.console import Console

    from idportrait.adapters.consistentid.checkpoint import convert_checkpoint

    if dst.suffix != ".safetensors":
        raise typer.BadParameter(f"{dst}: the output must end in .safetensors")
    console = Console(stderr=True)
    with console.status(f"reading {src}"):
        out, metadata = convert_checkpoint(src, dst)
    console.print(
        f"{metadata['variant']} checkpoint: {metadata['num_processors']} attention processors, "
        f"LoRA rank {metadata['rank']}, {metadata['num_tokens']} ID tokens, pairing {metadata['pairing']}",
        soft_wrap=True,
    )
    typer.echo(str(out))
