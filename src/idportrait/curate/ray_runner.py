"""Scale-out runner: the same `curate_shard` mapped over input shards with Ray Data.

Each unfinished shard is one row of a Ray dataset and one task (``num_cpus`` per task); outputs,
resume rules, settings checks, failure records and stats are exactly those of `run_local`.
Connects to ``address`` (a running cluster, e.g. "auto") or starts a local Ray with ``num_cpus`` CPUs.
"""

from __future__ import annotations

from typing import Any

from idportrait.curate.config import CurateConfig
from idportrait.curate.readers import Shard
from idportrait.curate.runner import RunSummary, curate_shard, pending_shards, summarise
from idportrait.curate.settings import prepare_output


def _process_row(row: dict[str, Any], out: str, cfg: CurateConfig) -> dict[str, Any]:
    stats, failure = curate_shard(Shard(row["path"], row["name"]), out, cfg)
    if failure is not None:
        return {"failed": True, **failure}
    return {"failed": False, "shard": stats["shard"], "samples": stats["samples"], "kept": stats["kept"]}


def run_ray(
    inputs: list[str],
    out: str,
    cfg: CurateConfig,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_task: float = 1.0,
    overwrite: bool = False,
) -> RunSummary:
    """Curate every unfinished shard as Ray Data tasks; returns the same summary as `run_local`."""
    import ray

    prepare_output(out, cfg, overwrite)
    todo, done = pending_shards(inputs, out)
    rows: list[dict[str, Any]] = []
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        dataset = ray.data.from_items([{"path": s.path, "name": s.name} for s in todo], override_num_blocks=len(todo))
        rows = dataset.map(_process_row, fn_kwargs={"out": out, "cfg": cfg}, num_cpus=cpus_per_task).take_all()
    outcomes = [
        (None, {k: r[k] for k in ("shard", "source", "error")}) if r["failed"] else (r, None)
        for r in sorted(rows, key=lambda r: r["shard"])
    ]
    return summarise(out, outcomes, done)
