"""`idportrait annotate`: FGID annotation (parsing masks, ArcFace embedding, VLM captions, marked caption)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idportrait import registry


def annotate_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="Face photos: image files, folders, or curated FaceID .tar shards.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (records.jsonl + files); re-running resumes.")],
    vlm: Annotated[str, typer.Option(help="LLaVA-1.5 captioning model (hub id or local folder).")] = registry.LLAVA,
    load_in_4bit: Annotated[bool, typer.Option(help="Quantise the VLM to 4 bit (CUDA + bitsandbytes).")] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Longest caption in tokens.")] = 512,
    face_analyzer: Annotated[
        str, typer.Option(help="Face analyzer (insightface:<pack> or dlib).")
    ] = registry.FACE_BACKEND_CONSISTENTID,
    face_model_dir: Annotated[Path | None, typer.Option(help="Folder holding the insightface model packs.")] = None,
    parser: Annotated[str, typer.Option(help="Face parser: bisenet or landmarks.")] = "bisenet",
    parser_weights: Annotated[
        Path | None, typer.Option(help="BiSeNet face_parsing.pth (default: the hub file).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda[:i].")] = "cpu",
    limit: Annotated[int | None, typer.Option(help="Annotate at most this many new photos.")] = None,
) -> None:
    """Annotate face photos for ConsistentID training; see idportrait.annotate.schema for the output."""
    from rich.console import Console

    from idportrait.devices import pick_device
    from idportrait.errors import UserError
    from idportrait.faces.analyzer import check_analyzer_name, check_parser_name

    for path in inputs:  # before any model loads
        if not path.exists():
            raise UserError("input not found", path)
    check_analyzer_name(face_analyzer)
    check_parser_name(parser)
    pick_device(device)
    from idportrait.annotate.annotate import annotate
    from idportrait.annotate.captioner import load_captioner
    from idportrait.faces import get_face_analyzer, get_face_parser

    analyzer = get_face_analyzer(face_analyzer, model_dir=face_model_dir, device=device)
    face_parser = get_face_parser(parser, weights=parser_weights, device=device)
    captioner = load_captioner(vlm, device=device, load_in_4bit=load_in_4bit, max_new_tokens=max_new_tokens)
    models = {"vlm": vlm, "face_analyzer": face_analyzer, "face_parser": parser}
    counts = annotate(inputs, out, analyzer, face_parser, captioner, models, limit=limit)
    Console().print(
        f"annotated {counts['new']} new photos ({counts['skipped']} without a face skipped, "
        f"{counts['done']} already done); records in {out / 'records.jsonl'}",
        soft_wrap=True,
    )
