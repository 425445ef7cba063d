"""Run the cascade over input shards: `process_shard` is the unit of work, `run_local` the default runner.

    prepare_output (same settings, or --overwrite) -> list_shards -> skip shards whose stats file
    exists (done) -> curate_shard each:
        read_shard -> batches of samples -> curate_batch -> ShardWriter.add -> ShardWriter.close
        a shard that cannot be read -> <out>/failures/<name>.json, and the run goes on

`run_local` uses one process (``workers=1``) or a process pool whose workers die with the run
(`idportrait.curate.lifeline`); `idportrait.curate.ray_runner` maps the same `curate_shard` over a
Ray cluster.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from idportrait.curate.cascade import curate_batch
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import Detector, make_detector
from idportrait.curate.readers import InputError, Shard, list_shards, read_shard
from idportrait.curate.settings import prepare_output
from idportrait.curate.writer import FAILURES_DIR, STATS_DIR, ShardWriter, atomic_output, output_path

T = TypeVar("T")


@dataclass
class RunSummary:
    """What a run did: shards processed now, skipped as already done, failed (unreadable), sample counts."""

    out: str
    processed: list[str]
    skipped: list[str]
    samples: int
    kept: int
    failed: list[dict[str, Any]] = field(default_factory=list)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def is_done(out: str, shard: Shard) -> bool:
    """A shard is done once its stats file exists (written last)."""
    import fsspec

    fs, _, (path,) = fsspec.get_fs_token_paths(output_path(out, STATS_DIR, shard.name))
    return fs.exists(path)


def pending_shards(inputs: list[str], out: str) -> tuple[list[Shard], list[Shard]]:
    """(to do, already done) shards of ``inputs`` for output folder ``out``."""
    shards = list_shards(inputs)
    done = [s for s in shards if is_done(out, s)]
    return [s for s in shards if s not in done], done


def _lazy_detector(cfg: CurateConfig) -> Detector:
    """Load the face models only when the first image reaches detection."""
    return lambda image: make_detector(cfg.detector, cfg.face_model_dir)(image)


def process_shard(
    shard: Shard,
    out: str,
    cfg: CurateConfig,
    detect: Detector | None = None,
    batch_size: int = 256,
    fetch_threads: int = 16,
) -> dict[str, Any]:
    """Curate one input shard into its output files; returns the stats that were written last."""
    detect = detect or _lazy_detector(cfg)
    writer = ShardWriter(out, shard.name, shard.path, cfg)
    counts: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    start = time.perf_counter()
    for batch in batched(read_shard(shard), batch_size):
        for sample, decision in zip(batch, curate_batch(batch, cfg, detect, fetch_threads), strict=True):
            writer.add(sample, decision)
            counts[decision.reason or "kept"] += 1
            sample.image = sample.image_bytes = None
            steps.update(f"{name}:{value}" for name, value in sample.steps.items())
    kept = counts.pop("kept", 0)
    stats = {
        "shard": shard.name,
        "source": shard.path,
        "samples": kept + sum(counts.values()),
        "kept": kept,
        "dropped": dict(sorted(counts.items())),
        "steps": dict(sorted(steps.items())),
        "seconds": round(time.perf_counter() - start, 3),
        "config": cfg.to_dict(),
    }
    writer.close(stats)
    return stats


def curate_shard(
    shard: Shard, out: str, cfg: CurateConfig, detect: Detector | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(stats, None) of a curated shard, or (None, failure) for a shard that cannot be read.

    A failure (``{"shard", "source", "error"}``) is also written to ``<out>/failures/<name>.json``;
    a later success of the same shard removes it.
    """
    import fsspec

    fs, _, (failure_path,) = fsspec.get_fs_token_paths(output_path(out, FAILURES_DIR, shard.name))
    try:
        stats = process_shard(shard, out, cfg, detect)
    except InputError as err:
        failure = {"shard": shard.name, "source": shard.path, "error": str(err)}
        with atomic_output(output_path(out, FAILURES_DIR, shard.name)) as f:
            f.write(json.dumps(failure, ensure_ascii=False).encode("utf-8"))
        return None, failure
    if fs.exists(failure_path):
        fs.rm(failure_path)
    return stats, None


def summarise(
    out: str, outcomes: list[tuple[dict[str, Any] | None, dict[str, Any] | None]], done: list[Shard]
) -> RunSummary:
    """The `RunSummary` of `curate_shard` outcomes."""
    results = [stats for stats, _ in outcomes if stats is not None]
    return RunSummary(
        out=out,
        processed=[r["shard"] for r in results],
        skipped=[s.name for s in done],
        samples=sum(r["samples"] for r in results),
        kept=sum(r["kept"] for r in results),
        failed=sorted((f for _, f in outcomes if f is not None), key=lambda f: f["shard"]),
    )


def run_local(
    inputs: list[str],
    out: str,
    cfg: CurateConfig,
    workers: int = 1,
    detect: Detector | None = None,
    on_shard_done: Callable[[dict[str, Any]], None] | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Curate every unfinished shard with ``workers`` local processes (1 = in this process).

    ``detect`` overrides ``cfg.detector`` (in-process runs only; pool workers load their own).
    ``on_shard_done`` gets each shard's stats, or its failure record. ``out`` must hold results of
    the same settings or none (`prepare_output`; ``overwrite`` clears it first).
    """
    prepare_output(out, cfg, overwrite)
    todo, done = pending_shards(inputs, out)
    outcomes: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []

    def finished(outcome: tuple[dict[str, Any] | None, dict[str, Any] | None]) -> None:
        outcomes.append(outcome)
        if on_shard_done:
            on_shard_done(outcome[0] or outcome[1])

    if workers <= 1 or len(todo) <= 1:
        for shard in todo:
            finished(curate_shard(shard, out, cfg, detect))
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from idportrait.curate.lifeline import die_with_parent

        if detect is not None:
            raise ValueError("a custom detector runs in-process only (workers=1)")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(curate_shard, shard, out, cfg) for shard in todo]
            for future in as_completed(futures):
                finished(future.result())
    return summarise(out, outcomes, done)
