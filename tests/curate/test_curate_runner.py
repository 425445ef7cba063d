from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from curate_shards import small_shard

from idportrait.curate.config import CurateConfig
from idportrait.curate.runner import run_local
from idportrait.curate.sample import expected_decisions
from idportrait.curate.writer import load_stats


def _decisions(out: Path) -> dict[str, str]:
    rows = [r for f in sorted((out / "decisions").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "duplicated samples"
    return {r["key"]: r["reason"] or "kept" for r in rows}


def _output_bytes(out: Path) -> dict[str, bytes]:
    """Every shard, index and decisions file of a run (the stats hold timings)."""
    kinds = ("shards", "index", "decisions")
    return {str(p.relative_to(out)): p.read_bytes() for kind in kinds for p in sorted((out / kind).glob("*"))}


def _kept_keys(out: Path) -> list[str]:
    keys = []
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            keys += [m.name[: -len(".json")] for m in tar.getmembers() if m.name.endswith(".json")]
    return keys


def test_bundled_sample_end_to_end(curated_sample):
    tmp_path = curated_sample
    assert _decisions(tmp_path) == expected_decisions()

    with tarfile.open(tmp_path / "shards" / "laion-00000.tar") as tar:
        names = tar.getnames()
        record = json.loads(tar.extractfile("laion-00000-0000.json").read())
        caption = tar.extractfile("laion-00000-0000.txt").read().decode()
        jpg = tar.extractfile("laion-00000-0000.jpg").read()
    assert names == [f"laion-00000-000{i}.{ext}" for i in (0, 1) for ext in ("jpg", "txt", "json")]
    assert jpg[:3] == b"\xff\xd8\xff" and caption == record["caption"]
    (face,) = record["faces"]
    assert len(face["bbox"]) == 4 and len(face["kps"]) == 5 and 0.5 <= face["score"] <= 1
    assert len(face["embedding"]) == 128  # dlib descriptor
    assert record["face_ratio"] >= 0.04 and record["width"] == record["height"] == 640

    index = pq.read_table(tmp_path / "index" / "laion-00000.parquet").to_pylist()
    assert [r["key"] for r in index] == ["laion-00000-0000", "laion-00000-0001"]
    assert all(r["shard"] == "laion-00000.tar" and len(r["embedding"]) == 128 for r in index)

    stats = {s["shard"]: s for s in load_stats(str(tmp_path))}
    assert stats["laion-00002"]["samples"] == 0  # the empty shard
    assert stats["laion-00000"]["dropped"]["download_failed:connection_refused"] == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_resume_after_a_crash_loses_and_duplicates_nothing(sample_inputs, dlib_cfg, dlib_detect, tmp_path):
    calls = {"n": 0}

    def crashing_detect(images):
        calls["n"] += len(images)
        if calls["n"] >= 7:  # in the middle of the second shard
            raise RuntimeError("worker died")
        return dlib_detect(images)

    with pytest.raises(RuntimeError, match="worker died"):
        run_local([str(sample_inputs)], str(tmp_path), dlib_cfg, detect=crashing_detect)
    assert [s["shard"] for s in load_stats(str(tmp_path))] == ["laion-00000"]

    summary = run_local([str(sample_inputs)], str(tmp_path), dlib_cfg, detect=dlib_detect)
    assert summary.skipped == ["laion-00000"]
    assert _decisions(tmp_path) == expected_decisions()
    kept = _kept_keys(tmp_path)
    assert len(kept) == len(set(kept)) == 4

    again = run_local([str(sample_inputs)], str(tmp_path), dlib_cfg, detect=dlib_detect)
    assert again.processed == [] and again.samples == 0


@pytest.mark.slow
def test_killed_process_resumes(tmp_path):
    """SIGKILL a real `idportrait curate run` while it waits on its second shard, then run it again."""
    import http.server
    import threading
    import time

    first_request, release = threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if not first_request.is_set():
                first_request.set()
                release.wait(30)  # the killed run hangs here
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/img.jpg"
    inputs = tmp_path / "in"
    inputs.mkdir()
    small_shard(inputs / "a.parquet", [("Portrait of a woman", "astronaut_crop", None), ("Ein Mann", None, None)])
    small_shard(
        inputs / "b.parquet",
        [("Portrait of a man", None, url), ("Ein rotes Auto parkt nachts auf der Straße", None, None)],
    )
    small_shard(inputs / "c.parquet", [("Portrait of a girl", "astronaut", None)])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "idportrait.cli", "curate", "run", str(inputs), "--out", str(out)]
    cmd += ["--detector", "dlib"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert first_request.wait(120), "the run never reached the second shard"
        deadline = time.monotonic() + 60  # the download of b overlaps the detection of a
        while not (out / "stats" / "a.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (out / "stats" / "a.json").exists() and not (out / "stats" / "b.json").exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        release.set()
    subprocess.run(cmd, check=True, capture_output=True)
    uninterrupted = tmp_path / "uninterrupted"
    run_local([str(inputs)], str(uninterrupted), CurateConfig(detector="dlib"))
    server.shutdown()
    assert _output_bytes(out) == _output_bytes(uninterrupted)
    assert _decisions(out) == {
        "a-0": "kept",
        "a-1": "not_english",
        "b-0": "download_failed:http_404",
        "b-1": "not_english",
        "c-0": "face_too_small",
    }
    assert _kept_keys(out) == ["a-0"]


@pytest.mark.slow
def test_two_local_workers_give_the_same_outputs(dlib_cfg, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    small_shard(inputs / "p.parquet", [("Portrait of a woman", "astronaut_crop", None), ("Ein Mann", None, None)])
    small_shard(
        inputs / "q.parquet",
        [("Portrait of a man", "tom_hanks", None), ("Portrait of a young woman drinking coffee", "coffee", None)],
    )
    one = run_local([str(inputs)], str(tmp_path / "one"), dlib_cfg, workers=1)
    two = run_local([str(inputs)], str(tmp_path / "two"), dlib_cfg, workers=2)
    assert _output_bytes(tmp_path / "one") == _output_bytes(tmp_path / "two")
    assert sorted(two.processed) == ["p", "q"] and (one.samples, one.kept) == (two.samples, two.kept) == (4, 2)
    assert (
        _decisions(tmp_path / "two")
        == _decisions(tmp_path / "one")
        == {
            "p-0": "kept",
            "p-1": "not_english",
            "q-0": "kept",
            "q-1": "no_face",
        }
    )


def test_outputs_on_an_fsspec_memory_filesystem(tmp_path):
    import fsspec

    small_shard(tmp_path / "m.parquet", [("Ein Porträt einer Frau", None, None), (None, None, None)])
    out = "memory://curate-runner-test/out"
    summary = run_local([str(tmp_path / "m.parquet")], out, CurateConfig(detector="dlib"))
    assert (summary.samples, summary.kept) == (2, 0)
    fs = fsspec.filesystem("memory")
    assert fs.exists("/curate-runner-test/out/stats/m.json") and fs.exists("/curate-runner-test/out/shards/m.tar")
    assert load_stats(out)[0]["dropped"] == {"missing_caption": 1, "not_english": 1}
    assert run_local([str(tmp_path / "m.parquet")], out, CurateConfig(detector="dlib")).skipped == ["m"]


def test_output_shards_read_back_with_webdataset(curated_sample):
    import webdataset as wds

    shard = str(curated_sample / "shards" / "laion-00001.tar")
    samples = list(wds.WebDataset(shard, shardshuffle=False).decode("rgb"))
    assert [s["__key__"] for s in samples] == ["000010000", "000010001"]
    for s in samples:
        record = s["json"] if isinstance(s["json"], dict) else json.loads(s["json"])
        assert s["jpg"].shape == (record["height"], record["width"], 3)
        assert s["txt"] == record["caption"] and len(record["faces"]) == 1


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            for child in map(int, task.read_text().split()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker processes")
def test_workers_die_with_a_killed_run(tmp_path):
    """SIGKILL only the main `curate run --workers 2` process: its workers and resource tracker follow."""
    import http.server
    import threading
    import time

    requests, release = [], threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            release.wait(60)  # both workers hang here
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        small_shard(inputs / f"{name}.parquet", [("Portrait of a woman", None, f"{url}/{name}.jpg")])
    cmd = [sys.executable, "-m", "idportrait.cli", "curate", "run", str(inputs), "--out", str(tmp_path / "out")]
    cmd += ["--detector", "dlib", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while len(requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(requests) == 2, "the two workers never started downloading"
        children = _descendants(proc.pid)
        assert len(children) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "worker or resource-tracker processes outlived the run"
    finally:
        for pid in [proc.pid, *children]:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        release.set()
        server.shutdown()
