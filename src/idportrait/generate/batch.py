"""Batch generation: every identity in a folder x every prompt in a file, resumable; and the image writing
that ``idportrait generate`` shares (`prepare_references`, `write_images`, `write_settings`).

Identities: each image file directly in ``faces_dir`` is one identity; each sub-folder is one identity
whose photos are all passed to ``method.prepare`` (averaged where the method allows). Output:
``out_dir/<identity>/<prompt index:03d>_<k:02d>.png``, written atomically with the prompt, seed, method
and reference names in the PNG text metadata. A rerun skips files that exist, so an interrupted batch
resumes without duplicating or losing images. Seeds: ``seed + prompt_index * per_prompt + k``, the same
for every identity. With run settings, every PNG also carries them and ``out_dir/settings.json`` lists them
with every image of the batch; a rerun with other settings is refused (or, asked to, replaces the images).
Under ``accelerate launch`` / ``torchrun`` the processes split the work (`idportrait.processes`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, PngImagePlugin

from idportrait.errors import ImageError, UserError
from idportrait.generate.checks import check_output_folder
from idportrait.imageio import IMAGE_SUFFIXES, atomic_open, load_image, write_json
from idportrait.processes import Processes

if TYPE_CHECKING:
    from idportrait.methods.base import Method

METADATA_KEY = "idportrait"
SETTINGS_FILE = "settings.json"
RESERVED_NAMES = (SETTINGS_FILE,)
"""Names the batch writes in its output folder, so no identity may have them."""


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


def readable_png(path: Path) -> bool:
    """Whether ``path`` is a whole PNG (every chunk present, every checksum right): a 0-byte or truncated file, left by
    a full disk or a copy that stopped, is not, and a rerun makes it again."""
    try:
        with Image.open(path, formats=["PNG"]) as im:
            im.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def read_metadata(path: str | Path) -> dict:
    """The ``idportrait`` metadata of a PNG written by `save_with_seed`."""
    with Image.open(path) as im:
        return json.loads(im.text[METADATA_KEY])


def identities(faces_dir: str | Path) -> dict[str, list[Path]]:
    """Identity name -> its reference photos (sorted), from files and sub-folders of ``faces_dir``.

    A single photo file is one identity named after its stem. Names become output folders, so they must be
    unique (ignoring case) and safe; raises `UserError` naming the clash (``a.jpg`` beside ``a/``, ``a.png``
    beside ``a.jpg``), a name that is not a plain folder name (``..jpg`` -> ``.``, ``.hidden``) or one the batch
    writes itself (``settings.json``).
    """
    faces_dir = Path(faces_dir)
    if faces_dir.is_file():
        return {identity_name(faces_dir.stem, faces_dir): [faces_dir]}
    if not faces_dir.is_dir():
        raise ImageError("faces folder not found", faces_dir)
    found: dict[str, list[Path]] = {}
    sources: dict[str, Path] = {}
    for entry in sorted(faces_dir.iterdir()):
        if entry.is_dir():
            photos = sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            name = entry.name
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            photos, name = [entry], entry.stem
        else:
            continue
        if not photos:
            continue
        name = identity_name(name, entry)
        clash = sources.get(name.casefold())
        if clash is not None:
            raise UserError(f"{clash.name!r} and {entry.name!r} would both be identity {name!r}; rename one", faces_dir)
        sources[name.casefold()] = entry
        found[name] = photos
    if not found:
        raise ImageError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) found", faces_dir)
    return found


def identity_name(name: str, source: Path) -> str:
    """``name`` when it can name an output folder: not empty, not hidden or relative (``.``, ``..``, ``.x``), not a
    file the batch writes; else `UserError` naming ``source``."""
    if not name or name.startswith(".") or name.casefold() in RESERVED_NAMES:
        raise UserError(f"identity name {name!r} cannot be an output folder (rename the photo or folder)", source)
    return name


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


@dataclass
class Job:
    """One image to make: where it goes, its prompt and its seed."""

    path: Path
    prompt: str
    seed: int


def batch_units(out_dir: Path, identity: str, prompts: list[str], per_prompt: int, seed: int) -> list[list[Job]]:
    """The jobs of one identity, one list per prompt: ``<identity>/<i:03d>_<k:02d>.png``, seed ``seed + i * n + k``."""
    return [
        [Job(out_dir / identity / f"{i:03d}_{k:02d}.png", prompt, seed + i * per_prompt + k) for k in range(per_prompt)]
        for i, prompt in enumerate(prompts)
    ]


def loader_options(
    method_name: str, given: dict[str, Any], pairs: list[str], own_options: dict[str, str] | None = None
) -> dict[str, Any]:
    """Keywords for ``load_method(method_name, ...)``: the ``given`` options that are set (not None or False) plus
    the ``--set KEY=VALUE`` pairs (`method_options`, ``own_options`` refused there). Raises `UserError` for an
    unknown method, an option its loader does not take or a value it would refuse.
    """
    from idportrait.generate.method_options import method_options
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
    return options | method_options(method_name, pairs, own_options)


def prepare_references(method: Method, method_name: str, photos: list[Path], images: list[Image.Image]) -> Any:
    """``method.prepare`` of the loaded ``images`` of ``photos``: one as is, several as a list (the method averages).

    Raises `UserError` when several photos go to a method that takes one (``method.multi_reference`` False).
    """
    names = ", ".join(p.name for p in photos)
    if len(images) > 1 and not method.multi_reference:
        raise UserError(f"{method_name} takes one reference photo, got {len(photos)} ({names})")
    return method.prepare(images if len(images) > 1 else images[0], source=names if len(photos) > 1 else str(photos[0]))


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
    path = out_dir / SETTINGS_FILE
    write_json(path, {**settings, "images": [p.relative_to(out_dir).as_posix() for p in images]})
    return path


def settings_changes(previous: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``["seed: 0 -> 5", ...]``: the settings that differ between two runs (their image lists aside)."""
    now = json.loads(json.dumps(settings))
    keys = sorted((set(previous) | set(now)) - {"images"})
    return [f"{k}: {_short(previous.get(k))} -> {_short(now.get(k))}" for k in keys if previous.get(k) != now.get(k)]


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_resumable(out_dir: str | Path, settings: dict[str, Any], overwrite: bool = False) -> dict[str, Any] | None:
    """The settings of the run already in ``out_dir`` (None if there is none), if this run may resume it.

    Raises `UserError` when ``out_dir`` is a file, or, unless ``overwrite``, when its ``settings.json`` is unreadable
    or names other settings (one line listing them).
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    path = out_dir / SETTINGS_FILE
    if not path.exists():
        return None
    try:
        previous = json.loads(path.read_text("utf-8"))
        if not isinstance(previous, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        if overwrite:
            return None
        raise UserError(
            f"unreadable run settings ({type(err).__name__}); pass --overwrite to replace them", path
        ) from None
    changes = settings_changes(previous, settings)
    if changes and not overwrite:
        raise UserError(
            f"holds images made with other settings ({'; '.join(changes)}); "
            "pass --overwrite to replace them, or choose another --out",
            out_dir,
        )
    return previous


def claim_out_dir(
    out_dir: Path, settings: dict[str, Any], images: list[Path], overwrite: bool, processes: Processes
) -> None:
    """Make ``out_dir`` this run's (see `check_resumable`); with ``overwrite`` the previous run's images and this
    batch's are removed first. The main process writes ``settings.json`` without its image list, which
    `write_settings` adds once the batch is complete, so a killed run is recognised on the next one.
    """
    previous = check_resumable(out_dir, settings, overwrite)
    processes.wait()  # every process has read the old settings before they are replaced
    if processes.is_main:
        if overwrite:
            listed = (previous or {}).get("images", [])
            old = [out_dir / p for p in listed if isinstance(p, str) and _inside(p) and p.endswith(".png")]
            for path in [*old, *images]:
                path.unlink(missing_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / SETTINGS_FILE, json.loads(json.dumps(settings)))
    processes.wait()


def _inside(relpath: str) -> bool:
    parts = Path(relpath).parts
    return bool(parts) and not Path(relpath).is_absolute() and ".." not in parts


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
    overwrite: bool = False,
    processes: Processes = Processes(),
    on_unreadable: Callable[[Path], None] = lambda path: None,
) -> dict[str, int]:
    """Generate the missing images of the batch; returns counts ``{"written", "skipped", "redone", "identities"}``
    (all processes together; ``redone``: images found unreadable, `readable_png`, and made again, each also passed
    to ``on_unreadable`` first).

    ``method`` has ``prepare(photo or list of photos) -> prepared`` and ``generate(prepared, prompts, seeds, **options)
    -> images`` (one per prompt x seed). ``on_image`` is called with every path this process writes or finds.
    ``settings`` (optional) go into each PNG and, with every image of the batch, into ``out_dir/settings.json``; a
    folder holding a run with other settings is refused unless ``overwrite`` (`check_resumable`).

    Work unit: one identity x one prompt, its ``per_prompt`` seeds in one ``generate`` call. Unit ``u`` (identities
    in name order, then prompts) goes to process ``u % world_size``, so every image is made by the same call
    whatever the number of processes.
    """
    out_dir = Path(out_dir)
    people = identities(faces_dir)
    units = [(name, group) for name in people for group in batch_units(out_dir, name, prompts, per_prompt, seed)]
    every = [job.path for _, group in units for job in group]
    if settings is not None:
        claim_out_dir(out_dir, settings, every, overwrite, processes)
    written = skipped = redone = 0
    prepared: dict[str, Any] = {}
    for name, group in processes.share(units):
        todo = []
        for job in group:
            if job.path.is_file() and readable_png(job.path):
                skipped += 1
                on_image(job.path)
                continue
            if job.path.is_file():
                redone += 1
                on_unreadable(job.path)
            todo.append(job)
        if not todo:
            continue
        photos = people[name]
        if name not in prepared:  # units come identity by identity: keep only the current one
            prepared = {name: prepare_references(method, method_name, photos, [load_image(p) for p in photos])}
        info = {"method": method_name, "references": [p.name for p in photos]}
        written += len(write_images(method, prepared[name], todo, options, settings, info, on_image))
    processes.wait()
    counts = processes.gather((written, skipped, redone))
    if settings is not None and processes.is_main:
        write_settings(out_dir, settings, every)
    totals = {key: sum(c[k] for c in counts) for k, key in enumerate(("written", "skipped", "redone"))}
    return {**totals, "identities": len(people)}
