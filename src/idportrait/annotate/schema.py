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
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idportrait.faces.types import Face, Parsing
from idportrait.imageio import append_lines, atomic_open, save_image

RECORDS = "records.jsonl"
PERSON = "person"


def read_records(root: Path) -> list[dict[str, Any]]:
    """All complete records (a torn last line from a killed run is ignored)."""
    path = Path(root) / RECORDS
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def done_keys(root: Path) -> set[str]:
    """Keys already annotated in ``root``."""
    return {r["key"] for r in read_records(root)}


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
