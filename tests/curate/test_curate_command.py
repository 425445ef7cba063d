from __future__ import annotations

import subprocess
import sys

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idportrait.cli", "curate", *args], capture_output=True, text=True)


def test_report_command_prints_the_table_and_where_it_went(curated_sample):
    result = _cli("report", str(curated_sample))
    assert result.returncode == 0, result.stderr
    assert "too_many_faces" in result.stdout and "face_area_hist.png" in result.stdout
    assert (curated_sample / "report" / "report.md").is_file()


@pytest.mark.parametrize("name", ["broken.parquet", "broken.tar"])
def test_malformed_input_is_one_line_and_exit_code_2(tmp_path, name):
    (tmp_path / name).write_bytes(b"garbage" * 100)
    result = _cli("run", str(tmp_path / name), "--out", str(tmp_path / "out"), "--detector", "dlib")
    assert result.returncode == 2
    assert name in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_input_and_empty_report(tmp_path):
    result = _cli("run", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "nope.parquet" in result.stderr and "not found" in result.stderr
    result = _cli("report", str(tmp_path))
    assert result.returncode == 2 and "no finished shards" in result.stderr


def test_sample_command_writes_the_input_shards(tmp_path):
    result = _cli("sample", str(tmp_path / "raw"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        "laion-00000.parquet",
        "laion-00001.tar",
        "laion-00002.tar",
        "laion-00003.parquet",
    ]


def test_default_detector_without_its_model_pack_is_a_clear_error(tmp_path):
    from curate_shards import small_shard

    small_shard(tmp_path / "x.parquet", [("Portrait of a woman", "astronaut_crop", None)])
    models = tmp_path / "no-models-here"
    result = _cli("run", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "out"), "--face-model-dir", str(models))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "antelopev2" in result.stderr and str(models) in result.stderr
    assert not (tmp_path / "out" / "stats" / "x.json").exists()
