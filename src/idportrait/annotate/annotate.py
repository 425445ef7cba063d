"""Annotate face photos for ConsistentID training (the FGID recipe).

Per photo::

    photo --face analyzer (insightface buffalo_l, BGR inside)--> largest face: bbox, kps, ArcFace embedding
          (curated shards that already carry an embedding reuse it)
    photo --face parser (BiSeNet)--> label map, region masks (region order), person mask
    photo --VLM(OVERALL_PROMPT)--> caption;   photo --VLM(FACIAL_PROMPT)--> facial caption
    facial caption --normalise_facial_caption--> --mark_caption(regions)--> marked facial caption
    -> files + one line in records.jsonl (see `annotate.schema`)

Resumable: keys already in ``records.jsonl`` (or ``skipped.jsonl``: photos without a face) are not redone.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from idportrait.adapters.consistentid.text import mark_caption
from idportrait.annotate import schema
from idportrait.annotate.prompts import FACIAL_PROMPT, OVERALL_PROMPT, normalise_facial_caption
from idportrait.errors import NoFaceError, UserError
from idportrait.faces.analyzer import FaceFinder, FaceParser
from idportrait.faces.types import Face, Parsing
from idportrait.imageio import IMAGE_SUFFIXES, decode_image, load_image

SKIPPED = "skipped.jsonl"


class VLM(Protocol):
    name: str

    def caption(self, image: Image.Image, prompt: str) -> str: ...


@dataclass
class InputPhoto:
    """One photo to annotate; ``face`` is set when a curated shard already carries it."""

    key: str
    source: str
    load: Any
    face: Face | None = None


def safe_key(text: str) -> str:
    """A key usable as a file name: anything but letters, digits, ``-``, ``_``, ``.`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip(".") or "_"


def iter_inputs(paths: list[Path]) -> Iterator[InputPhoto]:
    """Photos from image files, folders of images (sorted, recursive) and curated ``.tar`` shards."""
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                key = safe_key(str(file.relative_to(path).with_suffix("")))
                yield InputPhoto(key, str(file), lambda f=file: load_image(f))
        elif path.suffix == ".tar":
            yield from _iter_shard(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield InputPhoto(safe_key(path.stem), str(path), lambda f=path: load_image(f))
        else:
            raise UserError("not an image, a folder of images or a .tar shard", path)


def _iter_shard(path: Path) -> Iterator[InputPhoto]:
    groups: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                key, _, ext = member.name.partition(".")
                groups.setdefault(key, {})[ext] = tar.extractfile(member).read()
    for key, files in groups.items():
        image_ext = next((e for e in ("jpg", "png", "webp") if e in files), None)
        if image_ext is None:
            continue
        meta = json.loads(files["json"]) if "json" in files else {}
        faces = meta.get("faces") or []
        first = faces[0] if faces else {}
        face = None
        if first.get("embedding") is not None:
            face = Face(bbox=first["bbox"], kps=first["kps"], score=first["score"], embedding=first["embedding"])
        name = f"{path.name}:{key}"
        yield InputPhoto(
            safe_key(f"{path.stem}_{key}"), name, lambda d=files[image_ext], n=name: decode_image(d, n), face
        )


def annotate_photo(
    photo: InputPhoto, analyzer: FaceFinder | None, parser: FaceParser, vlm: VLM
) -> tuple[Image.Image, Parsing, Face, dict[str, Any]]:
    """Annotate one photo; returns the image, its parsing, its face and the caption fields of the record."""
    image = photo.load()
    face = photo.face
    if face is None:
        if analyzer is None:
            raise UserError("no face analyzer given and the input carries no face embedding", photo.source)
        face = analyzer.largest_face(image, photo.source)
    parsing = parser.parse(image, face)
    caption = vlm.caption(image, OVERALL_PROMPT)
    facial_raw = vlm.caption(image, FACIAL_PROMPT)
    facial = normalise_facial_caption(facial_raw)
    marked, kept = mark_caption(facial, list(parsing.regions))
    fields = {
        "caption": caption,
        "facial_caption_raw": facial_raw,
        "facial_caption": facial,
        "marked_facial_caption": marked,
        "marked_regions": kept,
    }
    return image, parsing, face, fields


def annotate(
    inputs: list[Path],
    out_dir: Path,
    analyzer: FaceFinder | None,
    parser: FaceParser,
    vlm: VLM,
    models: dict[str, str],
    limit: int | None = None,
) -> dict[str, int]:
    """Annotate every input photo not yet in ``out_dir``; returns counts {"done", "skipped", "new"}."""
    from rich.progress import Progress

    out_dir.mkdir(parents=True, exist_ok=True)
    schema.repair(out_dir)
    done = schema.done_keys(out_dir) | _skipped_keys(out_dir)
    counts = {"new": 0, "skipped": 0, "done": len(done)}
    with Progress() as bar:
        task = bar.add_task("annotating", total=None)
        for photo in iter_inputs(inputs):
            if photo.key in done:
                continue
            if limit is not None and counts["new"] + counts["skipped"] >= limit:
                break
            try:
                image, parsing, face, fields = annotate_photo(photo, analyzer, parser, vlm)
            except NoFaceError as err:
                schema.append_line(out_dir / SKIPPED, {"key": photo.key, "source": photo.source, "reason": str(err)})
                counts["skipped"] += 1
                continue
            paths = schema.write_sample_files(out_dir, photo.key, image, parsing)
            record = {"key": photo.key, "source": photo.source, **paths, "regions": list(parsing.regions),
                      "face": schema.face_record(face), **fields, "models": models}  # fmt: skip
            schema.append_record(out_dir, record)
            done.add(photo.key)
            counts["new"] += 1
            bar.update(task, advance=1, description=f"annotated {photo.key}")
    return counts


def _skipped_keys(out_dir: Path) -> set[str]:
    path = out_dir / SKIPPED
    if not path.exists():
        return set()
    keys = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            keys.add(json.loads(line)["key"])
        except (json.JSONDecodeError, KeyError):
            continue
    return keys
