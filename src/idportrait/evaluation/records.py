"""The on-disk layout of an evaluation run and its manifest of generated images.

    <run>/images/<method>/<identity>/p<prompt:03d>_s<seed>.png
    <run>/generation.jsonl        one `Record` per generated image (append-only; the last line per key wins)

A folder without a manifest (``<dir>/<method>/<identity>/*.png``, e.g. images made elsewhere) can be scored
too: its records have no prompt, so CLIP-T is left empty for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idportrait.errors import UserError
from idportrait.imageio import IMAGE_SUFFIXES

MANIFEST = "generation.jsonl"


@dataclass
class Record:
    """One generated image. Seconds are wall-clock; ``stages`` split them (see `idportrait.evaluation.speed`).

    ``prepare_*`` is the per-reference work (face analysis, parsing, encoders) of this image's identity,
    which one photo + one prompt pays once per image.
    """

    method: str
    identity: str
    prompt_index: int
    category: str
    prompt: str | None
    seed: int | None
    path: str
    seconds: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    prepare_seconds: float | None = None
    prepare_stages: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int, int | None]:
        return (self.method, self.identity, self.prompt_index, self.seed)


def image_relpath(method: str, identity: str, prompt_index: int, seed: int) -> str:
    """Where an image lives inside a run folder (POSIX, relative)."""
    return f"images/{method}/{identity}/p{prompt_index:03d}_s{seed}.png"


def append_record(run_dir: Path, record: Record) -> None:
    """Append one line to the manifest and fsync it (a crash loses at most the image being written)."""
    with open(run_dir / MANIFEST, "a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_manifest(run_dir: Path) -> list[Record]:
    """Records of a run folder, one per key (the last written wins), in first-seen order.

    A truncated last line (a crash mid-write) is ignored.
    """
    path = run_dir / MANIFEST
    records: dict[tuple, Record] = {}
    if not path.is_file():
        return []
    for line in path.read_text("utf-8").splitlines():
        try:
            record = Record(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        records[record.key] = record
    return list(records.values())


def load_generated(generated: Path) -> list[Record]:
    """Records of a run folder (its manifest), or of a plain ``<method>/<identity>/*`` image folder."""
    if not generated.is_dir():
        raise UserError("generated-images folder not found", generated)
    if (generated / MANIFEST).is_file():
        records = [r for r in read_manifest(generated) if (generated / r.path).is_file()]
    else:
        records = [
            Record(method.name, image.parent.name, i, "all", None, None, image.relative_to(generated).as_posix())
            for method in sorted(p for p in generated.iterdir() if p.is_dir())
            for identity in sorted(p for p in method.iterdir() if p.is_dir())
            for i, image in enumerate(sorted(identity.iterdir()))
            if image.suffix.lower() in IMAGE_SUFFIXES
        ]
    if not records:
        raise UserError(f"no generated images (expected {MANIFEST} or <method>/<identity>/*.png)", generated)
    return records


def load_references(folder: Path) -> dict[str, Path]:
    """Identity name (file stem) -> reference photo, sorted by name."""
    if not folder.is_dir():
        raise UserError("references folder not found", folder)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = [p.stem for p in photos]
    if not photos:
        raise UserError("no reference photos (.png/.jpg/.webp) in folder", folder)
    if len(set(stems)) != len(stems):
        raise UserError("two reference photos share a name (the file stem is the identity)", folder)
    return {p.stem: p for p in photos}
