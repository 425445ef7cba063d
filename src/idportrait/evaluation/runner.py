"""Generate the benchmark images of every method, resumably: images already present are skipped.

claim the run folder: methods already generated with other settings stop the run (or are removed, overwrite)
jobs = every (method, identity, prompt, seed); this process takes jobs rank, rank + world_size, ...
for method in config.methods:               # loaded only when this process has work left for it
    for identity, prompt, seed in its jobs:
        prepared = method.prepare(photo)    # once per identity; timed: face analysis, parsing, encoders
        image = method.generate(prepared, [prompt], [seed])   # one image per call; timed
        save image atomically, then append its `Record` to the manifest (one per process while several run)
wait for every process; the main one merges the manifests
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.progress import Progress

from idportrait.errors import UserError
from idportrait.evaluation.config import EvalConfig, MethodSpec
from idportrait.evaluation.prompts import Prompt, load_prompts
from idportrait.evaluation.records import (
    MANIFEST,
    Record,
    append_record,
    image_relpath,
    load_references,
    manifest_part,
    merge_manifest_parts,
    read_manifest,
    rewrite_manifest,
)
from idportrait.evaluation.speed import StageTimer, instrument
from idportrait.imageio import load_image, save_image, write_json
from idportrait.processes import Processes

MethodLoader = Callable[..., Any]
"""``load_method(name, base=..., **options) -> Method`` (`idportrait.methods.load_method`)."""
SETTINGS_FILE = "generation_settings.json"
"""Method label -> the settings its images were generated with."""
Job = tuple[MethodSpec, str, Prompt, int]


def generate_all(
    config: EvalConfig,
    load_method: MethodLoader | None = None,
    overwrite: bool = False,
    processes: Processes = Processes(),
) -> list[Record]:
    """Run every (method, identity, prompt, seed) not yet in the run folder; returns all records in job order
    (methods as configured, then identities, prompts, seeds), on every process.

    Each image is made by its own ``generate`` call from its seed, so it does not depend on which process makes it.
    A method whose images were made with other settings stops the run with `UserError`, unless ``overwrite``.
    """
    if load_method is None:
        from idportrait.methods import load_method
    references = load_references(config.references)
    prompts = load_prompts(config.prompts, limit=config.prompt_limit)
    claim_run_folder(config, overwrite, processes)
    jobs = [(s, i, p, seed) for s in config.methods for i in references for p in prompts for seed in config.seeds]
    done = {r.key for r in read_manifest(config.output) if (config.output / r.path).is_file()}
    mine = [job for job in processes.share(jobs) if (job[0].label, job[1], job[2].index, job[3]) not in done]
    manifest = MANIFEST if processes.world_size == 1 else manifest_part(processes.rank)
    with Progress(transient=True, disable=not processes.is_main) as progress:
        task = progress.add_task("generating", total=len(mine))
        for spec in config.methods:
            work = [job[1:] for job in mine if job[0] is spec]
            if work:
                advance = partial(progress.advance, task)
                _run_method(config, spec, load_method, references, work, manifest, processes, advance)
    processes.wait()
    if processes.is_main and processes.world_size > 1:
        merge_manifest_parts(config.output)
    processes.wait()
    order = {(s.label, i, p.index, seed): n for n, (s, i, p, seed) in enumerate(jobs)}
    return sorted(read_manifest(config.output), key=lambda r: order.get(r.key, len(order)))


def method_settings(config: EvalConfig, spec: MethodSpec) -> dict[str, Any]:
    """What a method's images depend on besides their identity, prompt index and seed."""
    return {
        "name": spec.name,
        "base": spec.base or config.base,
        "options": spec.options,
        "generate": spec.generate,
        "device": config.device,
        "prompts": config.prompts,
        "class_word": config.class_word,
        "class_words": config.class_words,
    }


def claim_run_folder(config: EvalConfig, overwrite: bool, processes: Processes) -> None:
    """Resume only methods generated with the same settings (`method_settings`); others stop the run with one line
    naming them, or with ``overwrite`` lose their images and records. The main process then records the settings.
    """
    path = config.output / SETTINGS_FILE
    try:
        previous = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"unreadable generation settings ({type(err).__name__})", path) from None
    now = {spec.label: json.loads(json.dumps(method_settings(config, spec))) for spec in config.methods}
    changed = {label: _changes(previous[label], settings) for label, settings in now.items() if label in previous}
    changed = {label: changes for label, changes in changed.items() if changes}
    if changed and not overwrite:
        listed = "; ".join(f"{label}: {', '.join(changes)}" for label, changes in changed.items())
        raise UserError(
            f"holds images made with other settings ({listed}); pass --overwrite to replace them, or another output",
            config.output,
        )
    processes.wait()  # every process has read the old settings before they are replaced
    if processes.is_main:
        config.output.mkdir(parents=True, exist_ok=True)
        if changed:
            rewrite_manifest(config.output, [r for r in read_manifest(config.output) if r.method not in changed])
            for label in changed:
                shutil.rmtree(config.output / "images" / label, ignore_errors=True)
        write_json(path, {**previous, **now})
    processes.wait()


def _changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [f"{key} {before.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(before) | set(now))
            if before.get(key) != now.get(key)]  # fmt: skip


def _run_method(
    config: EvalConfig,
    spec: MethodSpec,
    load_method: MethodLoader,
    references: dict[str, Path],
    work: list[tuple[str, Prompt, int]],
    manifest: str,
    processes: Processes,
    advance: Callable[[], None],
) -> None:
    options = {"device": processes.device_for(config.device), **spec.options}
    method = load_method(spec.name, base=spec.base or config.base, **options)
    instrument(method)
    prepared: dict[str, tuple[Any, float, dict[str, float]]] = {}
    for identity, prompt, seed in work:
        if identity not in prepared:
            timer = StageTimer()
            start = time.perf_counter()
            with timer.activate():
                state = method.prepare(load_image(references[identity]))
            prepared[identity] = (state, time.perf_counter() - start, dict(timer.totals))
        state, prepare_seconds, prepare_stages = prepared[identity]
        text = prompt.fill(config.class_word_for(identity))
        timer = StageTimer()
        start = time.perf_counter()
        with timer.activate():
            (image,) = method.generate(state, [text], [seed], **spec.generate)
        seconds = time.perf_counter() - start
        relpath = image_relpath(spec.label, identity, prompt.index, seed)
        save_image(config.output / relpath, image)
        record = Record(
            method=spec.label,
            identity=identity,
            prompt_index=prompt.index,
            category=prompt.category,
            prompt=text,
            seed=seed,
            path=relpath,
            seconds=seconds,
            stages=dict(timer.totals),
            prepare_seconds=prepare_seconds,
            prepare_stages=prepare_stages,
        )
        append_record(config.output, record, manifest)
        advance()
