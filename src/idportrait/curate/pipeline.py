"""The streaming stages of one process: downloads overlap detection, bounded queues hold them together.

    reader thread   read_shard -> text_stage (``text_batch`` rows at a time) -> one image job per survivor
                        | bounded queue (``queue`` samples): the reader waits when detection falls behind
    job threads     fetch_sample (download, I/O) -> check_decoded (decode, size)   (DownloadConfig.threads)
    this thread     the jobs in input order -> detect_stage on ``detect_batch`` images -> ShardResult.add

Shards stream one after the other (the reader runs ahead into the next shard while this thread
detects), samples are decided and written in input order, and every stage is a function of
`idportrait.curate.cascade` / `download`, the ones the Ray runner maps; so outputs do not depend on
the thread counts, batch sizes or runner. A shard that cannot be read yields its failure record
instead of its outputs, and the stream goes on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

from idportrait.curate.cascade import check_decoded, detect_stage, text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import BatchDetector, make_detector
from idportrait.curate.download import Fetcher, fetch_sample, shared_fetcher
from idportrait.curate.options import StageOptions
from idportrait.curate.readers import InputError, Shard, read_shard
from idportrait.curate.results import ShardResult, record_failure
from idportrait.curate.types import Decision, Sample

Outcome = tuple[dict[str, Any] | None, dict[str, Any] | None]
"""(stats, None) of a curated shard, or (None, failure record) of one that could not be read."""


@dataclass
class _Item:
    """One sample on its way: its text-stage decision and, for a survivor, its download + decode job."""

    sample: Sample
    decision: Decision
    job: Future[Decision] | None


@dataclass
class _ShardEnd:
    shard: Shard
    error: InputError | None = None


@dataclass
class _Crash:
    error: BaseException


_DONE = object()


def lazy_detector(cfg: CurateConfig, device: str, threads: int | None = None) -> BatchDetector:
    """Load the face models only when the first image reaches detection."""
    return lambda images: make_detector(cfg.detector, cfg.face_model_dir, device, threads)(images)


def _batched(items: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    while batch := list(islice(items, size)):
        yield batch


def _image_job(sample: Sample, cfg: CurateConfig, fetcher: Fetcher) -> Decision:
    fetch_sample(sample, fetcher)
    return check_decoded(sample, cfg)


class _Reader(threading.Thread):
    """Reads shards, runs the text stage and starts the image jobs; puts on the bounded queue, in order:
    each shard, its `_Item`s, its `_ShardEnd` (with the `InputError` of a shard that cannot be read); then `_DONE`.
    """

    def __init__(self, shards: list[Shard], cfg: CurateConfig, options: StageOptions, jobs: ThreadPoolExecutor) -> None:
        super().__init__(name="curate-reader", daemon=True)
        self.shards, self.cfg, self.options, self.jobs = shards, cfg, options, jobs
        self.fetcher = shared_fetcher(options.download)
        self.items: queue.Queue[object] = queue.Queue(maxsize=options.queue)
        self.stop = threading.Event()

    def put(self, item: object) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        try:
            for shard in self.shards:
                self.put(self._read(shard))
                if self.stop.is_set():
                    return
            self.put(_DONE)
        except BaseException as err:  # handed to the consumer, which raises it
            self.put(_Crash(err))

    def _read(self, shard: Shard) -> _ShardEnd:
        self.put(shard)
        try:
            for batch in _batched(read_shard(shard), self.options.text_batch):
                for sample, decision in zip(batch, text_stage(batch, self.cfg), strict=True):
                    job = self.jobs.submit(_image_job, sample, self.cfg, self.fetcher) if decision.keep else None
                    self.put(_Item(sample, decision, job))
                    if self.stop.is_set():
                        return _ShardEnd(shard)
        except InputError as err:
            return _ShardEnd(shard, err)
        return _ShardEnd(shard)


def _write(window: list[_Item], result: ShardResult, cfg: CurateConfig, detect: BatchDetector) -> None:
    """Wait for the window's image jobs (in order), detect faces on what they kept in one batch, add all in order."""
    pending = [item for item in window if item.job is not None]
    decisions = detect_stage([i.sample for i in pending], [i.job.result() for i in pending], cfg, detect)
    for item, decision in zip(pending, decisions, strict=True):
        item.decision = decision
    for item in window:
        result.add(item.sample, item.decision)


def stream_shards(
    shards: list[Shard],
    out: str,
    cfg: CurateConfig,
    options: StageOptions | None = None,
    detect: BatchDetector | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Curate ``shards`` into ``out`` in this process, the stages overlapping; one `Outcome` per shard, in order.

    ``detect`` overrides ``cfg.detector`` on ``options.device`` (tests); ``on_outcome`` sees each as it lands.
    """
    options = options or StageOptions()
    detect = detect or lazy_detector(cfg, options.device, options.detect_threads)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(options.download.threads, thread_name_prefix="curate-image") as jobs:
        reader = _Reader(shards, cfg, options, jobs)
        reader.start()
        try:
            _consume(reader, out, cfg, options, detect, outcomes, on_outcome)
        finally:
            reader.stop.set()
            jobs.shutdown(wait=False, cancel_futures=True)
    return outcomes


def _consume(
    reader: _Reader,
    out: str,
    cfg: CurateConfig,
    options: StageOptions,
    detect: BatchDetector,
    outcomes: list[Outcome],
    on_outcome: Callable[[Outcome], None] | None,
) -> None:
    """Decide and write what the reader sends, shard after shard, until it is done."""
    result: ShardResult | None = None
    window: list[_Item] = []
    while (item := reader.items.get()) is not _DONE:
        if isinstance(item, _Crash):
            raise item.error
        if isinstance(item, Shard):
            result, window = ShardResult(out, item, cfg), []
            continue
        if isinstance(item, _Item):
            window.append(item)
            if sum(i.job is not None for i in window) >= options.detect_batch:
                _write(window, result, cfg, detect)
                window = []
            continue
        if item.error is not None:
            outcome: Outcome = (None, record_failure(out, item.shard, item.error))
        else:
            _write(window, result, cfg, detect)
            outcome = (result.close(), None)
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
