"""One shard's outcome: its decided samples through `ShardWriter`, its stats written last, or its failure record.

    result = ShardResult(out, shard, cfg)
    result.add(sample, decision)        # in input order; lets go of the sample's pixels and bytes
    stats = result.close()              # tar, index, decisions, then stats/<name>.json (the done marker)

    record_failure(out, shard, error)   # failures/<name>.json for a shard that cannot be read

The local pipeline and the Ray runner both finish shards here, so their outputs are byte for byte the same.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from idportrait.curate.config import CurateConfig
from idportrait.curate.readers import Shard
from idportrait.curate.types import Decision, Sample
from idportrait.curate.writer import FAILURES_DIR, ShardWriter, output_path
from idportrait.shards.files import atomic_output, filesystem


class ShardResult:
    """Counts per drop reason and per text step of one shard, and its `ShardWriter`."""

    def __init__(self, out: str, shard: Shard, cfg: CurateConfig) -> None:
        self.shard, self.cfg = shard, cfg
        self.writer = ShardWriter(out, shard.name, shard.path, cfg)
        self.counts: Counter[str] = Counter()
        self.steps: Counter[str] = Counter()
        self.start = time.perf_counter()

    def add(self, sample: Sample, decision: Decision) -> None:
        self.writer.add(sample, decision)
        self.counts[decision.reason or "kept"] += 1
        self.steps.update(f"{name}:{value}" for name, value in sample.steps.items())
        sample.image = sample.image_bytes = None

    def close(self) -> dict[str, Any]:
        """Write the shard's files, the stats last; returns the stats."""
        counts = Counter(self.counts)
        kept = counts.pop("kept", 0)
        stats = {
            "shard": self.shard.name,
            "source": self.shard.path,
            "samples": kept + sum(counts.values()),
            "kept": kept,
            "dropped": dict(sorted(counts.items())),
            "steps": dict(sorted(self.steps.items())),
            "seconds": round(time.perf_counter() - self.start, 3),
            "config": self.cfg.to_dict(),
        }
        self.writer.close(stats)
        _clear_failure(self.writer.out, self.shard)
        return stats


def record_failure(out: str, shard: Shard, error: Exception) -> dict[str, Any]:
    """Write ``failures/<name>.json`` (``{"shard", "source", "error"}``) for a shard that cannot be read."""
    failure = {"shard": shard.name, "source": shard.path, "error": str(error)}
    with atomic_output(output_path(out, FAILURES_DIR, shard.name)) as f:
        f.write(json.dumps(failure, ensure_ascii=False).encode("utf-8"))
    return failure


def _clear_failure(out: str, shard: Shard) -> None:
    """A shard that was curated after all loses its old failure record."""
    fs, path = filesystem(output_path(out, FAILURES_DIR, shard.name))
    if fs.exists(path):
        fs.rm(path)
