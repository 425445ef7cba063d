"""Run the cascade over input shards on this machine: `plan_run`, then `run_local`.

    plan_run: check --out (not a file, not inside an input folder) -> list_shards -> prepare_output
              (same settings and inputs, or --overwrite) -> (to do, done: a valid stats file exists)
    run_local: the shards to do through `pipeline.stream_shards` (stages overlapping in one process),
               or one shard per task in a process pool whose workers die with the run (`lifeline`)

A shard is the unit of output and of resume: its stats file is written last, so a killed run redoes
only unfinished shards, and a shard that cannot be read leaves ``<out>/failures/<name>.json``.
`idportrait.curate.ray_runner` runs the same stages on a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import BatchDetector
from idportrait.curate.options import StageOptions
from idportrait.curate.pipeline import Outcome, stream_shards
from idportrait.curate.readers import Shard, list_shards
from idportrait.curate.settings import check_out, prepare_output
from idportrait.curate.writer import load_stats
from idportrait.errors import UserError


@dataclass
class RunSummary:
    """What a run did: shards processed now, skipped as already done, failed (unreadable), sample counts."""

    out: str
    processed: list[str]
    skipped: list[str]
    samples: int
    kept: int
    failed: list[dict[str, Any]] = field(default_factory=list)


def pending_shards(shards: list[Shard], out: str) -> tuple[list[Shard], list[Shard]]:
    """(to do, already done) of ``shards`` for output folder ``out``: done once a valid stats file exists."""
    done_names = {s["shard"] for s in load_stats(out)}
    return [s for s in shards if s.name not in done_names], [s for s in shards if s.name in done_names]


def plan_run(
    inputs: list[str], out: str, cfg: CurateConfig, overwrite: bool = False
) -> tuple[list[Shard], list[Shard]]:
    """Check ``out`` and the inputs, record (or check) the settings and inputs in ``out``; (to do, done)."""
    check_out(out, inputs)
    shards = list_shards(inputs)
    prepare_output(out, cfg, shards, overwrite)
    return pending_shards(shards, out)


def summarise(out: str, outcomes: list[Outcome], done: list[Shard]) -> RunSummary:
    """The `RunSummary` of shard outcomes."""
    results = sorted((stats for stats, _ in outcomes if stats is not None), key=lambda r: r["shard"])
    return RunSummary(
        out=out,
        processed=[r["shard"] for r in results],
        skipped=[s.name for s in done],
        samples=sum(r["samples"] for r in results),
        kept=sum(r["kept"] for r in results),
        failed=sorted((f for _, f in outcomes if f is not None), key=lambda f: f["shard"]),
    )


def _stream_one(shard: Shard, out: str, cfg: CurateConfig, options: StageOptions) -> Outcome:
    """One shard in a pool worker (its own reader and image threads)."""
    (outcome,) = stream_shards([shard], out, cfg, options)
    return outcome


def worker_threads(workers: int, cpu_count: int | None) -> int:
    """CPU threads of each of ``workers`` processes' face-analysis sessions: their share of the cores, at least 1."""
    return max(1, (cpu_count or 1) // workers)


def run_local(
    inputs: list[str],
    out: str,
    cfg: CurateConfig,
    workers: int = 1,
    options: StageOptions | None = None,
    detect: BatchDetector | None = None,
    on_start: Callable[[int], None] | None = None,
    on_shard_done: Callable[[dict[str, Any]], None] | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Curate every unfinished shard with ``workers`` local processes (1 = in this process).

    ``detect`` overrides ``cfg.detector`` (in-process runs only; pool workers load their own).
    ``on_start`` gets the number of shards to do; ``on_shard_done`` each shard's stats, or its
    failure record. ``out`` must hold results of the same settings and inputs or none
    (`prepare_output`; ``overwrite`` clears it first).
    """
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    options = options or StageOptions()
    todo, done = plan_run(inputs, out, cfg, overwrite)
    if on_start:
        on_start(len(todo))

    def finished(outcome: Outcome) -> None:
        if on_shard_done:
            on_shard_done(outcome[0] or outcome[1])

    if workers == 1 or len(todo) <= 1:
        outcomes = stream_shards(todo, out, cfg, options, detect, on_outcome=finished)
        return summarise(out, outcomes, done)
    if detect is not None:
        raise ValueError("a custom detector runs in-process only (workers=1)")
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from idportrait.curate.lifeline import die_with_parent

    outcomes = []
    options = replace(options, detect_threads=options.detect_threads or worker_threads(workers, os.cpu_count()))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = [pool.submit(_stream_one, shard, out, cfg, options) for shard in todo]
        for future in as_completed(futures):
            outcomes.append(future.result())
            finished(outcomes[-1])
    return summarise(out, outcomes, done)
