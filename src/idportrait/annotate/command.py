"""`idportrait annotate`: FGID annotation (parsing masks, ArcFace embedding, VLM captions, marked caption)."""

from __future__ import annotations

from pathlib import Path

import typer

from idportrait import registry


def annotate_command(
    inputs: list[Path] = typer.Argument(..., help="Face photos: image files, folders, or curated FaceID .tar shards."),
    out: Path = typer.Option(..., "--out", help="Output folder (records.jsonl + files); re-running resumes."),
    vlm: str = typer.Option(registry.LLAVA, help="LLaVA-1.5 captioning model (hub id or local folder)."),
    load_in_4bit: bool = typer.Option(False, help="Quantise the VLM to 4 bit (CUDA + bitsandbytes)."),
    max_new_tokens: int = typer.Option(512, help="Longest caption in tokens."),
    face_analyzer: str = typer.Option(
        registry.FACE_BACKEND_CONSISTENTID, help="Face analyzer (insightface:<pack> or dlib)."
    ),
    face_model_dir: Path | None = typer.Option(None, help="Folder holding the insightface model packs."),
    parser: str = typer.Option("bisenet", help="Face parser: bisenet or landmarks."),
    parser_weights: Path | None = typer.Option(None, help="BiSeNet face_parsing.pth (default: the hub file)."),
    device: str = typer.Option("cpu", help="cpu or cuda[:i]."),
    limit: int | None = typer.Option(None, help="Annotate at most this many new photos."),
) -> None:
    """Annotate face photos for ConsistentID training; see idportrait.annotate.schema for the output."""
    from rich.console import Console

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
