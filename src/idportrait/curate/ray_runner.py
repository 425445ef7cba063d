"""Scale-out runner: the cascade's stages as a Ray Data stream, each stage scaled on its own.

    shards --flat_map(read)--> rows --map_batches(text_stage)--> --map_batches(download: I/O, fractional CPUs)-->
    --map_batches(decode)--> --map_batches(detect: an actor pool, num_gpus per actor)--> this process:
    rows gathered per shard, written in input order through `ShardResult` once a shard is complete

Every row is one `_Row` (a sample and its decision so far, or a shard's end / failure marker), and every
stage is a function of `idportrait.curate.cascade` / `download`, the ones the local runner runs, so the
outputs are byte for byte those of `run_local`; so are the resume rules, settings checks, failure
records and stats. Downloads run as tasks reserving ``download_cpus`` each (they wait on the network,
not the CPU); detection runs in ``detect_actors`` actors that each load the face models once, with
``detect_gpus`` GPUs each (default: 1 when the cluster has GPUs). Paths are fsspec urls, as locally.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from idportrait.curate.cascade import check_decoded, detect_stage, text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import make_detector
from idportrait.curate.download import download_stage, shared_fetcher
from idportrait.curate.options import RayOptions, StageOptions
from idportrait.curate.pipeline import Outcome
from idportrait.curate.readers import InputError, Shard, read_shard
from idportrait.curate.results import ShardResult, record_failure
from idportrait.curate.runner import RunSummary, plan_run, summarise
from idportrait.curate.types import Decision, Sample
from idportrait.curate.writer import is_jpeg

ITEM = "item"
"""The one column of the stream: a `_Row` object per row."""


@dataclass
class _Row:
    """A sample of ``shard`` at ``index`` with its decision so far; or the shard's end (``count``) or failure."""

    shard: Shard
    index: int = -1
    sample: Sample | None = None
    decision: Decision | None = None
    count: int | None = None
    error: str | None = None


def _column(rows: list[_Row]) -> dict[str, np.ndarray]:
    column = np.empty(len(rows), dtype=object)
    column[:] = rows
    return {ITEM: column}


def _samples(batch: dict[str, np.ndarray]) -> tuple[list[_Row], list[_Row]]:
    """(every row, the rows holding a sample still kept) of a batch."""
    rows = list(batch[ITEM])
    return rows, [r for r in rows if r.sample is not None and (r.decision is None or r.decision.keep)]


def _read(shard_row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of one shard as they are read, then its end marker; a failure marker where reading stops."""
    shard = Shard(**shard_row)
    count = 0
    try:
        for count, sample in enumerate(read_shard(shard), start=1):
            yield {ITEM: _Row(shard, count - 1, sample)}
    except InputError as err:
        yield {ITEM: _Row(shard, error=str(err))}
        return
    yield {ITEM: _Row(shard, count=count)}


def _text(batch: dict[str, np.ndarray], cfg: CurateConfig) -> dict[str, np.ndarray]:
    rows, todo = _samples(batch)
    for row, decision in zip(todo, text_stage([r.sample for r in todo], cfg), strict=True):
        row.decision = decision
    return _column(rows)


def _download(batch: dict[str, np.ndarray], options: StageOptions) -> dict[str, np.ndarray]:
    rows, todo = _samples(batch)
    download_stage([r.sample for r in todo], shared_fetcher(options.download))
    return _column(rows)


def _decode(batch: dict[str, np.ndarray], cfg: CurateConfig) -> dict[str, np.ndarray]:
    rows, todo = _samples(batch)
    for row in todo:
        row.decision = check_decoded(row.sample, cfg)
    return _column(rows)


class _Detect:
    """A detection actor: loads the face models once, then `detect_stage` on each batch."""

    def __init__(self, cfg: CurateConfig, device: str, threads: int | None = None) -> None:
        self.cfg = cfg
        self.detect = make_detector(cfg.detector, cfg.face_model_dir, device, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, todo = _samples(batch)
        decisions = detect_stage([r.sample for r in todo], [r.decision for r in todo], self.cfg, self.detect)
        for row, decision in zip(todo, decisions, strict=True):
            row.decision = decision
        for row in rows:
            if row.sample is not None:
                _lighten(row.sample, row.decision)
        return _column(rows)


def _lighten(sample: Sample, decision: Decision) -> None:
    """Drop what the writer will not need before the row travels: pixels (kept only for a kept non-JPEG image)."""
    if not decision.keep or is_jpeg(sample.image_bytes):
        sample.image = None
    if not decision.keep:
        sample.image_bytes = None


def _stream(todo: list[Shard], cfg: CurateConfig, options: StageOptions, ray_options: RayOptions) -> Any:
    """The Ray dataset of every row of ``todo``, stages scaled apart."""
    import ray

    gpus = ray_options.detect_gpus
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    device = options.device if gpus == 0 or options.device != "cpu" else "cuda"
    shards = [{"path": s.path, "name": s.name, "size": s.size, "modified": s.modified} for s in todo]
    return (
        ray.data.from_items(shards, override_num_blocks=len(shards))
        .flat_map(_read)
        .map_batches(_text, batch_size=options.text_batch, fn_kwargs={"cfg": cfg})
        .repartition(target_num_rows_per_block=options.download.threads)  # streaming: many blocks, many tasks
        .map_batches(
            _download,
            batch_size=options.download.threads,
            fn_kwargs={"options": options},
            num_cpus=ray_options.download_cpus,
            concurrency=ray_options.download_tasks,
        )
        .map_batches(_decode, batch_size=options.detect_batch, fn_kwargs={"cfg": cfg})
        .map_batches(
            _Detect,
            batch_size=options.detect_batch,
            fn_constructor_kwargs={"cfg": cfg, "device": device, "threads": options.detect_threads},
            concurrency=ray_options.detect_actors,
            num_gpus=gpus,
        )
    )


def _gather(dataset: Any, out: str, cfg: CurateConfig) -> list[Outcome]:
    """Write each shard once all its rows have arrived (in any order), in input order; failures recorded.

    The rows a shard gave before reading it failed are dropped, whether they arrive before its failure or after.
    """
    outcomes = []
    open_shards: dict[str, dict[str, Any]] = {}
    failed: set[str] = set()
    for record in dataset.iter_rows():
        row: _Row = record[ITEM]
        if row.shard.name in failed:
            continue
        if row.error is not None:
            outcomes.append((None, record_failure(out, row.shard, InputError(row.error))))
            open_shards.pop(row.shard.name, None)
            failed.add(row.shard.name)
            continue
        state = open_shards.setdefault(row.shard.name, {"rows": {}, "count": None})
        if row.count is not None:
            state["count"] = row.count
        else:
            state["rows"][row.index] = row
        if state["count"] is not None and len(state["rows"]) == state["count"]:
            result = ShardResult(out, row.shard, cfg)
            for index in range(state["count"]):
                done = state["rows"].pop(index)
                result.add(done.sample, done.decision)
            outcomes.append((result.close(), None))
            del open_shards[row.shard.name]
    return outcomes


def run_ray(
    inputs: list[str],
    out: str,
    cfg: CurateConfig,
    options: StageOptions | None = None,
    ray_options: RayOptions | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Curate every unfinished shard as a Ray Data stream; returns the same summary as `run_local`."""
    import ray

    options, ray_options = options or StageOptions(), ray_options or RayOptions()
    todo, done = plan_run(inputs, out, cfg, overwrite)
    outcomes = []
    if todo:
        if not ray.is_initialized():
            ray.init(
                address=ray_options.address,
                num_cpus=ray_options.num_cpus,
                include_dashboard=False,
                log_to_driver=False,
            )
        ray.data.DataContext.get_current().enable_progress_bars = False
        outcomes = _gather(_stream(todo, cfg, options, ray_options), out, cfg)
    return summarise(out, outcomes, done)
