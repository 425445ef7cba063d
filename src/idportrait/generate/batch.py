"""Batch generation: every identity in a folder x every prompt in a file, resumable; and the image writing
that ``idportrait generate`` shares (`prepare_references`, `write_images`, `write_settings`).

Identities: each image file directly in ``faces_dir`` is one identity; each sub-folder is one identity
whose photos are all passed to ``method.prepare`` (averaged where the method allows). Output:
``out_dir/<identity>/<prompt index:03d>_<k:02d>.png``, written atomically with the prompt, seed, method
and reference names in the PNG text metadata. A rerun skips files that exist, so an interrupted batch
resumes without duplicating or losing images. Seeds: ``seed + prompt_index * per_prompt + k``, the same
for every identity. With run settings, every PNG also carries them and ``out_dir/settings.json`` lists them
with every image of the batch.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from idportrait.errors import ImageError, UserError
from idportrait.imageio import IMAGE_SUFFIXES, atomic_open, load_image, write_json

METADATA_KEY = "idportrait"


def save_with_seed(
    path: str | Path, image: Image.Image, seed: int, settings: dict[str, Any] | None = None, **info: Any
) -> None:
    """Write a PNG atomically with ``{"seed": seed, **info}`` as JSON in its ``idportrait`` text chunk.

    Plain text chunks for other viewers: ``seed``, ``prompt`` (when in ``info``) and ``settings`` (JSON, when given).
    """
    meta = PngImagePlugin.PngInfo()
    meta.add_text(METADATA_KEY, json.dumps({"seed": int(seed), **info}, ensure_ascii=False))
    meta.add_text("seed", str(int(seed)))
    if "prompt" in info:
        meta.add_text("prompt", info["prompt"])
    if settings is not None:
        meta.add_text("settings", json.dumps(settings, ensure_ascii=False))
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


def loader_options(method_name: str, given: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Keywords for ``load_method(method_name, ...)``: the ``given`` options that are set (not None or False) plus
    the ``--set KEY=VALUE`` pairs. Raises `UserError` for an unknown method or an option its loader does not take.
    """
    from idportrait.methods import METHODS

    if method_name not in METHODS:
        raise UserError(f"unknown method {method_name!r}; available: {', '.join(sorted(METHODS))}")
    params = inspect.signature(METHODS[method_name]).parameters
    options = {}
    for key, value in given.items():
        if value is None or value is False:
            continue
        if key not in params:
            raise UserError(f"--{key.replace('_', '-')} does not apply to {method_name}")
        options[key] = value
    return options | parse_options(pairs)


def takes_several_references(method: Any) -> bool:
    """Whether ``method.prepare`` averages a list of photos: its first parameter is unannotated or names ``list``."""
    reference = next(iter(inspect.signature(method.prepare).parameters.values()))
    return reference.annotation is inspect.Parameter.empty or "list" in str(reference.annotation)


def prepare_references(method: Any, method_name: str, photos: list[Path], images: list[Image.Image]) -> Any:
    """``method.prepare`` of the loaded ``images`` of ``photos``: one as is, several as a list (the method averages).

    Raises `UserError` when several photos go to a method that takes one.
    """
    if len(images) > 1 and not takes_several_references(method):
        names = ", ".join(p.name for p in photos)
        raise UserError(f"{method_name} takes one reference photo, got {len(photos)} ({names})")
    if len(images) > 1:
        return method.prepare(images)
    takes_source = "source" in inspect.signature(method.prepare).parameters
    return method.prepare(images[0], source=str(photos[0])) if takes_source else method.prepare(images[0])


def write_images(
    method: Any,
    prepared: Any,
    jobs: list[Job],
    options: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    on_image: Callable[[Path], None] = lambda path: None,
) -> list[Path]:
    """Generate every job (one ``method.generate`` call per prompt, all its seeds) and write it with `save_with_seed`.

    ``options`` go to ``method.generate``; ``settings`` and ``info`` (method, references...) into each PNG.
    """
    by_prompt: dict[str, list[Job]] = {}
    for job in jobs:
        by_prompt.setdefault(job.prompt, []).append(job)
    paths = []
    for prompt, group in by_prompt.items():
        images = method.generate(prepared, [prompt], [j.seed for j in group], **(options or {}))
        for job, image in zip(group, images, strict=True):
            job.path.parent.mkdir(parents=True, exist_ok=True)
            save_with_seed(job.path, image, job.seed, settings=settings, prompt=prompt, **(info or {}))
            paths.append(job.path)
            on_image(job.path)
    return paths


def write_settings(out_dir: Path, settings: dict[str, Any], images: list[Path]) -> Path:
    """``out_dir/settings.json``: the run settings and its images (paths relative to ``out_dir``)."""
    path = out_dir / "settings.json"
    write_json(path, {**settings, "images": [p.relative_to(out_dir).as_posix() for p in images]})
    return path


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
    settings: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Generate the missing images of the batch; returns counts ``{"written", "skipped", "identities"}``.

    ``method`` has ``prepare(photo or list of photos) -> prepared`` and ``generate(prepared, prompts, seeds, **options)
    -> images`` (one per prompt x seed). ``on_image`` is called with every path written or found. ``settings``
    (optional) go into each PNG and, with every image of the batch, into ``out_dir/settings.json``.
    """
    out_dir = Path(out_dir)
    written = skipped = 0
    people = identities(faces_dir)
    every: list[Path] = []
    for name, photos in people.items():
        todo = []
        for job in jobs_for(out_dir, name, prompts, per_prompt, seed):
            every.append(job.path)
            if job.path.is_file():
                skipped += 1
                on_image(job.path)
            else:
                todo.append(job)
        if not todo:
            continue
        prepared = prepare_references(method, method_name, photos, [load_image(p) for p in photos])
        refs = [p.name for p in photos]
        info = {"method": method_name, "references": refs}
        written += len(write_images(method, prepared, todo, options, settings, info, on_image))
    if settings is not None:
        write_settings(out_dir, settings, every)
    return {"written": written, "skipped": skipped, "identities": len(people)}
