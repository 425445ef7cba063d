"""Generate the benchmark images of every method, resumably: images already present are skipped.

for method in config.methods:               # loaded only when it has work left
    for identity, photo in references:
        prepared = method.prepare(photo)    # timed: face analysis, parsing, encoders
        for prompt in prompts, seed in seeds:
            image = method.generate(prepared, [prompt], [seed])   # timed per image
            save image atomically, then append its `Record` to generation.jsonl
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import Progress

from idportrait.evaluation.config import EvalConfig, MethodSpec
from idportrait.evaluation.prompts import Prompt, load_prompts
from idportrait.evaluation.records import Record, append_record, image_relpath, load_references, read_manifest
from idportrait.evaluation.speed import StageTimer, instrument
from idportrait.imageio import load_image, save_image

MethodLoader = Callable[..., Any]
"""``load_method(name, base=..., **options) -> Method`` (`idportrait.methods.load_method`)."""


def generate_all(config: EvalConfig, load_method: MethodLoader | None = None) -> list[Record]:
    """Run every (method, identity, prompt, seed) not yet in the run folder; returns all records."""
    if load_method is None:
        from idportrait.methods import load_method
    references = load_references(config.references)
    prompts = load_prompts(config.prompts, limit=config.prompt_limit)
    config.output.mkdir(parents=True, exist_ok=True)
    done = {r.key for r in read_manifest(config.output) if (config.output / r.path).is_file()}
    todo = {
        spec.label: [
            (identity, prompt, seed)
            for identity in references
            for prompt in prompts
            for seed in config.seeds
            if (spec.label, identity, prompt.index, seed) not in done
        ]
        for spec in config.methods
    }
    with Progress(transient=True) as progress:
        task = progress.add_task("generating", total=sum(len(v) for v in todo.values()))
        for spec in config.methods:
            if todo[spec.label]:
                _run_method(config, spec, load_method, references, todo[spec.label], lambda: progress.advance(task))
    return read_manifest(config.output)


def _run_method(
    config: EvalConfig,
    spec: MethodSpec,
    load_method: MethodLoader,
    references: dict[str, Path],
    work: list[tuple[str, Prompt, int]],
    advance: Callable[[], None],
) -> None:
    options = {"device": config.device, **spec.options}
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
        append_record(config.output, record)
        advance()
