"""The images a human study can rate, each with its method, identity, prompt and reference photo.

Three layouts of ``--generated``:

    <run>/generation.jsonl + images/...    an `idportrait evaluate run` folder (the manifest says everything)
    <label>/<identity>/*.png               one folder per method, e.g. several generate-batch outputs;
                                           the folder name is the method (it tells variants apart)
    <identity>/*.png                       one generate-batch output: the method is read from the PNG

Prompts come from the manifest or from the PNG's ``idportrait`` text chunk (`idportrait.generate.batch`);
an image without one is shown without a prompt. References: ``--references`` as in generate-batch (each
photo, or each sub-folder's first photo, is one identity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from idportrait.errors import ImageError, UserError
from idportrait.evaluation.rating_db import StudyImage
from idportrait.evaluation.records import IMAGE_SUFFIXES, MANIFEST, read_manifest
from idportrait.generate.batch import METADATA_KEY, identities


@dataclass(frozen=True)
class RatingItem:
    """One image to rate: what the database stores (`StudyImage`) and where the files are."""

    study: StudyImage
    path: Path
    reference: Path


def collect_items(generated: Path, references: Path) -> list[RatingItem]:
    """Every rateable image under ``generated``, sorted by its path; `UserError` when there is none."""
    if not generated.is_dir():
        raise UserError("generated-images folder not found", generated)
    photos = {name: paths[0] for name, paths in identities(references).items()}
    if (generated / MANIFEST).is_file():
        found = [
            StudyImage(r.path, r.method, r.identity, r.prompt or "")
            for r in read_manifest(generated)
            if (generated / r.path).is_file()
        ]
    else:
        found = [s for path in _image_files(generated) if (s := _from_file(generated, path)) is not None]
    if not found:
        expected = f"{MANIFEST}, <method>/<identity>/*.png or <identity>/*.png with our metadata"
        raise UserError(f"no generated images (expected {expected})", generated)
    unknown = sorted({s.identity for s in found} - set(photos))
    if unknown:
        raise UserError(f"no reference photo for identities {', '.join(unknown)}", references)
    for s in found:  # a broken file stops the study before it starts, not in a rater's browser
        _check_readable(generated / s.image)
    found.sort(key=lambda s: s.image)
    return [RatingItem(s, generated / s.image, photos[s.identity]) for s in found]


def _image_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.parts)
    )


def _from_file(root: Path, path: Path) -> StudyImage | None:
    """``<label>/<identity>/<file>``, or ``<identity>/<file>`` with our PNG metadata; None for anything else."""
    parts = path.relative_to(root).parts
    meta = _metadata(path)
    if len(parts) == 3:
        method = parts[0]
    elif len(parts) == 2 and "method" in meta:
        method = str(meta["method"])
    else:
        return None
    return StudyImage(path.relative_to(root).as_posix(), method, parts[-2], str(meta.get("prompt", "")))


def _check_readable(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"not a readable image ({type(err).__name__}: {err})", path) from None


def _metadata(path: Path) -> dict:
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}).get(METADATA_KEY)
        meta = json.loads(text) if text else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}
