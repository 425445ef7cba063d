from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from curate_shards import small_shard

from idportrait.curate.ray_runner import run_ray


@pytest.mark.slow
def test_ray_data_runner_matches_the_expected_decisions_and_resumes(dlib_cfg, tmp_path):
    import ray

    inputs = tmp_path / "in"
    inputs.mkdir()
    small_shard(inputs / "r1.parquet", [("Portrait of a woman", "astronaut_crop", None), ("Ein Mann", None, None)])
    small_shard(inputs / "r2.parquet", [("Portrait of a man", "tom_hanks", None)])
    small_shard(inputs / "r3.parquet", [("Portrait of a girl", "astronaut", None)])
    out = tmp_path / "out"
    (out / "stats").mkdir(parents=True)
    (out / "stats" / "r3.json").write_text('{"shard": "r3", "samples": 0, "kept": 0, "dropped": {}}')  # done
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_ray([str(inputs)], str(out), dlib_cfg)
    finally:
        ray.shutdown()
    assert summary.processed == ["r1", "r2"] and summary.skipped == ["r3"]
    assert (summary.samples, summary.kept) == (3, 2)
    rows = [r for name in ("r1", "r2") for r in pq.read_table(out / "decisions" / f"{name}.parquet").to_pylist()]
    assert {r["key"]: r["reason"] or "kept" for r in rows} == {"r1-0": "kept", "r1-1": "not_english", "r2-0": "kept"}
    assert not (out / "decisions" / "r3.parquet").exists()
