"""Batch generation: every identity in a folder x every prompt in a file, resumable.

Identities: each image file directly in ``faces_dir`` is one identity; each sub-folder is one identity
whose photos are all passed to ``method.prepare`` (averaged where the method allows). Output:
``out_dir/<identity>/<prompt index:03d>_<k:02d>.png``, written atomically with the prompt, seed, method
and reference names in the PNG text metadata. A rerun skips files that exist, so an interrupted batch
resumes without duplicating or losing images. Seeds: ``seed + prompt_index * per_prompt + k``, the same
for every identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from idportrait.errors import ImageError, UserError
from idportrait.imageio import atomic_open, load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
METADATA_KEY = "idportrait"


def save_with_seed(path: str | Path, image: Image.Image, seed: int, **info: Any) -> None:
    """Write a PNG atomically with ``{"seed": seed, **info}`` as JSON in its ``idportrait`` text chunk."""
    meta = PngImagePlugin.PngInfo()
    meta.add_text(METADATA_KEY, json.dumps({"seed": int(seed), **info}, ensure_ascii=False))
    with atomic_open(path, "wb") as f:
        image.save(f, format="PNG", pnginfo=meta)


def read_metadata(path: str | Path) -> dict:
    """The ``idportrait`` metadata of a PNG written by `save_with_seed`."""
    with Image.open(path) as im:
        return json.loads(im.text[METADATA_KEY])


def identities(faces_dir: str | Path) -> dict[str, list[Path]]:
    """Identity name -> its reference photos (sorted), from files and sub-folders of ``faces_dir``.

    A single photo file is one identity named after its stem.
    """
    faces_dir = Path(faces_dir)
    if faces_dir.is_file():
        return {faces_dir.stem: [faces_dir]}
    if not faces_dir.is_dir():
        raise ImageError("faces folder not found", faces_dir)
    found: dict[str, list[Path]] = {}
    for entry in sorted(faces_dir.iterdir()):
        if entry.is_dir():
            photos = sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if photos:
                found[entry.name] = photos
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            found[entry.stem] = [entry]
    if not found:
        raise ImageError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) found", faces_dir)
    return found


def read_prompts(path: str | Path) -> list[str]:
    """Non-empty lines of a text file, ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError("prompt file not found", path)
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise UserError("prompt file has no prompts", path)
    return prompts


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["sdxl=true", "variant=faceid-plusv2", "size=[64, 64]"]`` -> options; values are JSON when they parse."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = value
    return options


@dataclass
class Job:
    """One image to make: where it goes, its prompt and its seed."""

    path: Path
    prompt: str
    seed: int


def jobs_for(out_dir: Path, identity: str, prompts: list[str], per_prompt: int, seed: int) -> Iterator[Job]:
    for i, prompt in enumerate(prompts):
        for k in range(per_prompt):
            yield Job(out_dir / identity / f"{i:03d}_{k:02d}.png", prompt, seed + i * per_prompt + k)


def run_batch(
    method: Any,
    method_name: str,
    faces_dir: str | Path,
    prompts: list[str],
    out_dir: str | Path,
    per_prompt: int = 1,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    on_image: Callable[[Path], None] = lambda path: None,
) -> dict[str, int]:
    """Generate the missing images of the batch; returns counts ``{"written", "skipped", "identities"}``.

    ``method`` has ``prepare(photo or list of photos) -> prepared`` and ``generate(prepared, prompts, seeds, **options)
    -> images`` (one per prompt x seed). ``on_image`` is called with every path written or found.
    """
    out_dir = Path(out_dir)
    written = skipped = 0
    people = identities(faces_dir)
    for name, photos in people.items():
        todo: dict[str, list[Job]] = {}
        for job in jobs_for(out_dir, name, prompts, per_prompt, seed):
            if job.path.is_file():
                skipped += 1
                on_image(job.path)
            else:
                todo.setdefault(job.prompt, []).append(job)
        if not todo:
            continue
        images = [load_image(p) for p in photos]
        prepared = method.prepare(images[0] if len(images) == 1 else images)
        refs = [p.name for p in photos]
        for prompt, jobs in todo.items():
            images = method.generate(prepared, [prompt], [j.seed for j in jobs], **(options or {}))
            for job, image in zip(jobs, images, strict=True):
                save_with_seed(job.path, image, job.seed, prompt=prompt, method=method_name, references=refs)
                written += 1
                on_image(job.path)
    return {"written": written, "skipped": skipped, "identities": len(people)}
