"""The annotated FGID folder: one JSON line per photo plus its files. Written append-only, so runs resume.

Layout::

    <out>/records.jsonl          one record per line (below); a key is done iff its line is here
    <out>/images/<key>.png       the photo (RGB, original size)
    <out>/parsing/<key>.png      uint8 label map [H, W] at the parser's resolution (19 CelebAMask-HQ classes)
    <out>/masks/<key>.npz        bool [H, W] per kept region key (region order) and "person"

Record fields::

    key                     str, unique
    image, parsing, masks   paths relative to <out>
    regions                 kept region keys, region order (Face, Eye, Ear, Nose, Lip)
    face                    {"bbox": [4], "kps": [5][2], "score": float, "embedding": [512] raw ArcFace (BGR input)}
    caption                 overall caption (VLM, OVERALL_PROMPT)
    facial_caption_raw      facial caption as generated (VLM, FACIAL_PROMPT)
    facial_caption          after the facial substitution (`prompts.normalise_facial_caption`)
    marked_facial_caption   class words marked with <|facial|>, clauses in caption order (`text.mark_caption`)
    marked_regions          regions whose class word was found (region order)
    models                  {"vlm", "face_analyzer", "face_parser"}

Training reads the records lazily (`open_records`, `record_at`): a line index of ``records.jsonl`` (its
``records.jsonl.idx.arrow``, see `idportrait.shards.index_file`) and one line read per sample asked for.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from idportrait.errors import UserError
from idportrait.faces.types import Face, Parsing
from idportrait.imageio import append_lines, atomic_open, save_image

if TYPE_CHECKING:
    from idportrait.shards.index import SampleIndex

RECORDS = "records.jsonl"
PERSON = "person"


def iter_records(root: Path) -> Iterator[dict[str, Any]]:
    """The complete records, one line at a time (a torn last line from a killed run is skipped)."""
    path = Path(root) / RECORDS
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_records(root: Path) -> list[dict[str, Any]]:
    """All complete records."""
    return list(iter_records(root))


def done_keys(root: Path) -> set[str]:
    """Keys already annotated in ``root``."""
    return {r["key"] for r in iter_records(root)}


def open_records(roots: list[Path], folder: Path, progress: bool = True) -> SampleIndex:
    """The line index of the annotated folders' records (built or reused in ``folder``), for `record_at`."""
    from idportrait.shards.index import build_index

    for root in roots:
        if not (Path(root) / RECORDS).is_file():
            raise UserError("no annotated records (run `idportrait annotate` first)", Path(root) / RECORDS)
    sources = [str((Path(root) / RECORDS).resolve()) for root in roots]
    return build_index(sources, "lines", folder, progress=progress)


def record_at(index: SampleIndex, i: int) -> tuple[Path, dict[str, Any]]:
    """(annotated folder, record) of sample ``i``: one line read from its ``records.jsonl``."""
    entry, line = index.read(i)
    path = Path(index.source(entry).path)
    try:
        return path.parent, json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"line at byte {int(entry['offset'])} is not a record ({err})", path) from None


def repair(root: Path) -> None:
    """Rewrite ``records.jsonl`` without a torn last line, so appends start on a fresh line."""
    path = Path(root) / RECORDS
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        lines = [json.dumps(r, ensure_ascii=False) for r in read_records(root)]
        with atomic_open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))


def write_sample_files(root: Path, key: str, image: Image.Image, parsing: Parsing) -> dict[str, str]:
    """Write the photo, label map and masks atomically; returns their relative paths."""
    paths = {"image": f"images/{key}.png", "parsing": f"parsing/{key}.png", "masks": f"masks/{key}.npz"}
    save_image(root / paths["image"], image)
    save_image(root / paths["parsing"], Image.fromarray(parsing.labels, mode="L"))
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, **{k: v.astype(bool) for k, v in parsing.regions.items()}, **{PERSON: parsing.person_mask}
    )
    with atomic_open(root / paths["masks"], "wb") as f:
        f.write(buffer.getvalue())
    return paths


def append_record(root: Path, record: dict[str, Any]) -> None:
    """Append one record line (the record's files are already in place)."""
    append_line(Path(root) / RECORDS, record)


def append_line(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line and fsync (`idportrait.imageio.append_lines`)."""
    append_lines(path, json.dumps(entry, ensure_ascii=False) + "\n")


def face_record(face: Face) -> dict[str, Any]:
    """`Face` -> JSON-able dict (raw embedding)."""
    return {
        "bbox": face.bbox.tolist(),
        "kps": face.kps.tolist(),
        "score": face.score,
        "embedding": None if face.embedding is None else face.embedding.tolist(),
    }


def load_parsing(root: Path, record: dict[str, Any]) -> Parsing:
    """The record's `Parsing` (label map, region masks in region order, person mask)."""
    labels = np.asarray(Image.open(Path(root) / record["parsing"]), dtype=np.uint8)
    with np.load(Path(root) / record["masks"]) as masks:
        regions = {key: masks[key] for key in record["regions"]}
        person = masks[PERSON]
    return Parsing(labels=labels, regions=regions, person_mask=person)
