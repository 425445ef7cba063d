from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from curate_loopback import IMAGES, loopback_server
from curate_shards import small_shard, truncated_tar

from idportrait.curate.options import StageOptions
from idportrait.curate.ray_runner import RayOptions, run_ray
from idportrait.curate.runner import run_local
from idportrait.curate.sample import PHOTOS


def _output_bytes(out) -> dict[str, bytes]:
    kinds = ("shards", "index", "decisions", "failures")
    return {str(p.relative_to(out)): p.read_bytes() for kind in kinds for p in sorted((out / kind).glob("*"))}


@pytest.mark.slow
def test_ray_stream_writes_what_the_local_runner_writes_and_resumes(dlib_cfg, tmp_path):
    import ray

    buf = io.BytesIO()
    PHOTOS["tom_hanks"]().save(buf, format="JPEG")
    IMAGES["hanks.jpg"] = buf.getvalue()
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "bad.parquet").write_bytes(b"not a parquet file at all")
    captions = [f"Portrait of a man, number {i}".encode() * 100 for i in range(3)]
    truncated_tar(inputs / "cut.tar", captions, keep=7000)  # one sample read, then the tar ends mid-member
    small_shard(inputs / "r3.parquet", [("Portrait of a girl", "astronaut", None)])
    out = tmp_path / "ray"
    options = StageOptions(detect_batch=2)
    with loopback_server() as server:
        small_shard(
            inputs / "r1.parquet",
            [
                ("Portrait of a woman", "astronaut_crop", None),
                ("Ein Mann", None, None),
                ("Portrait of an actor", None, f"{server.url}/ok/hanks.jpg"),
                ("Portrait of a nurse", None, f"{server.url}/status/404"),
            ],
        )
        small_shard(inputs / "r2.parquet", [("Portrait of a man", "tom_hanks", None)])
        run_local([str(inputs / "r3.parquet")], str(out), dlib_cfg)  # r3 done before
        local = run_local([str(inputs)], str(tmp_path / "local"), dlib_cfg, options=options)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            with pytest.raises(Exception, match="other inputs"):  # r3 alone was the recorded input
                run_ray([str(inputs)], str(out), dlib_cfg, options, RayOptions(detect_actors=1))
            (out / "settings.json").unlink()  # a folder from before inputs were recorded: its stats decide
            summary = run_ray([str(inputs)], str(out), dlib_cfg, options, RayOptions(detect_actors=1))
        finally:
            ray.shutdown()
    assert summary.processed == ["r1", "r2"] and summary.skipped == ["r3"]
    assert [f["shard"] for f in summary.failed] == ["bad", "cut"]
    assert not (out / "stats" / "cut.json").exists() and not (out / "decisions" / "cut.parquet").exists()
    assert (summary.samples, summary.kept) == (5, 3)
    rows = [r for name in ("r1", "r2") for r in pq.read_table(out / "decisions" / f"{name}.parquet").to_pylist()]
    assert {r["key"]: r["reason"] or "kept" for r in rows} == {
        "r1-0": "kept",
        "r1-1": "not_english",
        "r1-2": "kept",
        "r1-3": "download_failed:http_404",
        "r2-0": "kept",
    }
    assert (local.samples, local.kept) == (6, 3)
    assert _output_bytes(out) == _output_bytes(tmp_path / "local")
