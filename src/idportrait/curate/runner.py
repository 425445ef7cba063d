"""Run the cascade over input shards: `process_shard` is the unit of work, `run_local` the default runner.

    list_shards -> skip shards whose stats file exists (done) -> process_shard each:
        read_shard -> batches of samples -> curate_batch -> ShardWriter.add -> ShardWriter.close

`run_local` uses one process (``workers=1``) or a process pool; `idportrait.curate.ray_runner`
maps the same `process_shard` over a Ray cluster.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from idportrait.curate.cascade import curate_batch
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import Detector, make_detector
from idportrait.curate.readers import Shard, list_shards, read_shard
from idportrait.curate.writer import STATS_DIR, ShardWriter, output_path

T = TypeVar("T")


@dataclass
class RunSummary:
    """What a run did: shards processed now, shards skipped as already done, sample counts."""

    out: str
    processed: list[str]
    skipped: list[str]
    samples: int
    kept: int


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
    start = time.perf_counter()
    for batch in batched(read_shard(shard), batch_size):
        for sample, decision in zip(batch, curate_batch(batch, cfg, detect, fetch_threads), strict=True):
            writer.add(sample, decision)
            counts[decision.reason or "kept"] += 1
            sample.image = sample.image_bytes = None
    kept = counts.pop("kept", 0)
    stats = {
        "shard": shard.name,
        "source": shard.path,
        "samples": kept + sum(counts.values()),
        "kept": kept,
        "dropped": dict(sorted(counts.items())),
        "seconds": round(time.perf_counter() - start, 3),
        "config": cfg.to_dict(),
    }
    writer.close(stats)
    return stats


def run_local(
    inputs: list[str],
    out: str,
    cfg: CurateConfig,
    workers: int = 1,
    detect: Detector | None = None,
    on_shard_done: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Curate every unfinished shard with ``workers`` local processes (1 = in this process).

    ``detect`` overrides ``cfg.detector`` (in-process runs only; pool workers load their own).
    """
    todo, done = pending_shards(inputs, out)
    results: list[dict[str, Any]] = []

    def finished(stats: dict[str, Any]) -> None:
        results.append(stats)
        if on_shard_done:
            on_shard_done(stats)

    if workers <= 1 or len(todo) <= 1:
        for shard in todo:
            finished(process_shard(shard, out, cfg, detect))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if detect is not None:
            raise ValueError("a custom detector runs in-process only (workers=1)")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(process_shard, shard, out, cfg) for shard in todo]
            for future in as_completed(futures):
                finished(future.result())
    return RunSummary(
        out=out,
        processed=[r["shard"] for r in results],
        skipped=[s.name for s in done],
        samples=sum(r["samples"] for r in results),
        kept=sum(r["kept"] for r in results),
    )


def load_stats(out: str) -> list[dict[str, Any]]:
    """Stats of every finished shard under ``out``, sorted by shard name."""
    import fsspec

    fs, _, (root,) = fsspec.get_fs_token_paths(f"{out.rstrip('/')}/{STATS_DIR}")
    if not fs.exists(root):
        return []
    stats = []
    for path in sorted(fs.glob(f"{root}/*.json")):
        with fs.open(path, "rb") as f:
            stats.append(json.loads(f.read()))
    return stats
