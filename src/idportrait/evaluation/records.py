"""The on-disk layout of an evaluation run and its manifest of generated images.

    <run>/images/<method>/<identity>/p<prompt:03d>_s<seed>.png
    <run>/generation.jsonl        one `Record` per generated image (append-only; the last line per key wins)
    <run>/generation-rank<r>.jsonl    the same, per process while several generate; merged into the above at the end

A folder without a manifest (``<dir>/<method>/<identity>/*.png``, e.g. images made elsewhere) can be scored
too: its records have no prompt, so CLIP-T is left empty for them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idportrait.errors import UserError
from idportrait.generate.batch import identity_name
from idportrait.imageio import IMAGE_SUFFIXES, append_lines, atomic_open

MANIFEST = "generation.jsonl"
PART_GLOB = "generation-rank*.jsonl"


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


def manifest_part(rank: int) -> str:
    """The manifest process ``rank`` appends to while several processes generate."""
    return f"generation-rank{rank}.jsonl"


def append_record(run_dir: Path, record: Record, manifest: str = MANIFEST) -> None:
    """Append one line to the manifest and fsync it (a crash loses at most the image being written)."""
    append_lines(run_dir / manifest, json.dumps(asdict(record), ensure_ascii=False) + "\n")


def read_manifest(run_dir: Path) -> list[Record]:
    """Records of a run folder (its manifest, then any per-process parts), one per key (the last written wins),
    in first-seen order. A truncated line (a crash mid-write) is ignored.
    """
    records: dict[tuple, Record] = {}
    for path in [run_dir / MANIFEST, *sorted(run_dir.glob(PART_GLOB))]:
        for line in path.read_text("utf-8").splitlines() if path.is_file() else []:
            try:
                record = Record(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
            records[record.key] = record
    return list(records.values())


def merge_manifest_parts(run_dir: Path) -> None:
    """Append the per-process manifests to the manifest, then delete them (a crash in between only repeats lines,
    which `read_manifest` reads once)."""
    for part in sorted(run_dir.glob(PART_GLOB)):
        lines = [line + "\n" for line in part.read_text("utf-8").splitlines() if line.strip()]
        append_lines(run_dir / MANIFEST, "".join(lines))
        part.unlink()


def rewrite_manifest(run_dir: Path, records: list[Record]) -> None:
    """Replace the manifest (and its parts) by ``records``, atomically."""
    with atomic_open(run_dir / MANIFEST, "w") as f:
        f.writelines(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    for part in run_dir.glob(PART_GLOB):
        part.unlink()


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
    """Identity name (file stem, a plain folder name, unique ignoring case) -> reference photo, sorted by name."""
    if not folder.is_dir():
        raise UserError("references folder not found", folder)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = [identity_name(p.stem, p).casefold() for p in photos]
    if not photos:
        raise UserError("no reference photos (.png/.jpg/.webp) in folder", folder)
    if len(set(stems)) != len(stems):
        raise UserError("two reference photos share a name (the file stem is the identity)", folder)
    return {p.stem: p for p in photos}
