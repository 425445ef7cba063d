"""Bad options and bad output folders of `curate run` / `curate sample`: one error line, exit code 2, nothing run.

Also the resume rules: a rerun over other inputs is refused, a corrupt stats file is redone, not counted as done.
"""

from __future__ import annotations

import json
import os

import pytest
from curate_shards import small_shard

from cli_run import run_cli
from idportrait.curate.config import CurateConfig
from idportrait.curate.runner import run_local

NOT_ENGLISH = [("Ein rotes Auto parkt nachts auf der Straße", None, None)]
"""A row the text stage drops at once: a run over it needs no NER and no face model."""


def cli(capsys, monkeypatch, *args: str) -> tuple[int, list[str]]:
    """Run `idportrait curate ...` in this process: (exit code, stderr lines)."""
    code, _, err = run_cli(monkeypatch, capsys, "curate", *args)
    return code, err.strip().splitlines()


@pytest.fixture()
def shard(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    small_shard(folder / "00000.parquet", NOT_ENGLISH)
    return folder / "00000.parquet"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--min-face-ratio", "nan", "--min-face-ratio nan: must be an area fraction in [0, 1]"),
        ("--min-face-ratio", "1.5", "--min-face-ratio 1.5: must be an area fraction in [0, 1]"),
        ("--det-score", "nan", "--det-score nan: must be a score in [0, 1]"),
        ("--max-faces", "0", "--max-faces 0: must be a count >= 1"),
        ("--max-caption-chars", "-1", "--max-caption-chars -1: must be a number of characters >= 1"),
        ("--min-side", "-5", "--min-side -5: must be a whole number of pixels >= 0"),
        ("--max-punsafe", "inf", "--max-punsafe inf: must be a probability threshold >= 0"),
        ("--workers", "0", "--workers 0: must be at least 1"),
        ("--workers", "-3", "--workers -3: must be at least 1"),
        ("--detect-batch", "0", "--detect-batch 0: must be at least 1"),
        ("--per-host", "0", "--per-host 0: must be at least 1"),
        ("--download-deadline", "nan", "--download-deadline nan: must be a positive number of seconds"),
        ("--download-retries", "-1", "--download-retries -1: must be 0 or more"),
    ],
)
def test_out_of_range_options_are_one_line(capsys, monkeypatch, shard, tmp_path, option, value, message):
    code, err = cli(capsys, monkeypatch, "run", str(shard), "--out", str(tmp_path / "out"), option, value)
    assert code == 2 and err == [f"error: {message}"]
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_or_inside_an_input_folder(capsys, monkeypatch, shard, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    code, err = cli(capsys, monkeypatch, "run", str(shard), "--out", str(a_file))
    assert code == 2 and err == [f"error: {a_file}: --out is an existing file; give a folder"]
    code, err = cli(capsys, monkeypatch, "sample", str(a_file))
    assert code == 2 and len(err) == 1 and "is an existing file" in err[0]
    for out in (shard.parent, shard.parent / "curated"):
        code, err = cli(capsys, monkeypatch, "run", str(shard.parent), "--out", str(out))
        assert code == 2 and len(err) == 1 and "is inside the input folder" in err[0]
    assert not (shard.parent / "curated").exists() and a_file.read_text() == "x"


def test_a_fifo_among_the_inputs_is_refused(capsys, monkeypatch, shard, tmp_path):
    os.mkfifo(shard.parent / "00001.parquet")
    code, err = cli(capsys, monkeypatch, "run", str(shard.parent), "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1 and "00001.parquet: not a regular file" in err[0]


def test_a_corrupt_settings_file_is_one_line(capsys, monkeypatch, shard, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "settings.json").write_text('{"min_side": 5')
    code, err = cli(capsys, monkeypatch, "run", str(shard), "--out", str(tmp_path / "out"), "--detector", "dlib")
    assert code == 2 and len(err) == 1 and "settings.json is not valid JSON" in err[0] and "--overwrite" in err[0]
    settings = {**CurateConfig(detector="dlib").to_dict(), "inputs": {"00000": "a/00000.parquet"}}
    (tmp_path / "out" / "settings.json").write_text(json.dumps(settings))
    code, err = cli(capsys, monkeypatch, "run", str(shard), "--out", str(tmp_path / "out"), "--detector", "dlib")
    assert code == 2 and len(err) == 1 and "'inputs' is not a list of input shards" in err[0]


def test_a_corrupt_failure_record_does_not_stop_the_report(tmp_path):
    from idportrait.curate.report import build_report

    small_shard(tmp_path / "good.parquet", NOT_ENGLISH)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    out = tmp_path / "out"
    run_local([str(tmp_path / "good.parquet"), str(tmp_path / "bad.parquet")], str(out), CurateConfig(detector="dlib"))
    (out / "failures" / "bad.json").write_bytes(b'{"shard": "ba')
    report = build_report(str(out))
    assert (report.shards, report.samples, report.failures) == (1, 1, [])


def test_a_rerun_over_other_inputs_with_the_same_names_is_refused(capsys, monkeypatch, tmp_path):
    """`curate run a/ --out X` then `curate run b/ --out X`, both holding 00000.parquet: b is not taken for done."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        small_shard(tmp_path / name / "00000.parquet", NOT_ENGLISH)
    out = tmp_path / "out"
    cfg = CurateConfig(detector="dlib")
    assert run_local([str(tmp_path / "a")], str(out), cfg).processed == ["00000"]
    recorded = json.loads((out / "settings.json").read_text())["inputs"]
    assert [(i["name"], i["path"]) for i in recorded] == [("00000", str(tmp_path / "a" / "00000.parquet"))]
    code, err = cli(capsys, monkeypatch, "run", str(tmp_path / "b"), "--out", str(out), "--detector", "dlib")
    assert code == 2 and len(err) == 1 and "holds results of other inputs" in err[0]
    assert "1 added" in err[0] and "1 removed" in err[0] and "--overwrite" in err[0]

    small_shard(tmp_path / "a" / "00001.parquet", NOT_ENGLISH)  # an input added to the same folder
    code, err = cli(capsys, monkeypatch, "run", str(tmp_path / "a"), "--out", str(out), "--detector", "dlib")
    assert code == 2 and "1 added" in err[0]
    (tmp_path / "a" / "00001.parquet").unlink()
    small_shard(tmp_path / "a" / "00000.parquet", NOT_ENGLISH * 2)  # the same file rewritten
    code, err = cli(capsys, monkeypatch, "run", str(tmp_path / "a"), "--out", str(out), "--detector", "dlib")
    assert code == 2 and "1 changed since" in err[0]
    summary = run_local([str(tmp_path / "a")], str(out), cfg, overwrite=True)
    assert summary.processed == ["00000"] and summary.samples == 2


def test_a_corrupt_stats_file_is_redone_not_counted_as_done(shard, tmp_path):
    out = tmp_path / "out"
    cfg = CurateConfig(detector="dlib")
    run_local([str(shard)], str(out), cfg)
    good = json.loads((out / "stats" / "00000.json").read_text())
    good.pop("seconds")
    for corrupt in (b"", b'{"shard": "00000", "sam', b"[1, 2]", b'{"shard": "00000"}'):
        (out / "stats" / "00000.json").write_bytes(corrupt)
        summary = run_local([str(shard)], str(out), cfg)
        assert summary.processed == ["00000"] and summary.skipped == [], corrupt
        repaired = json.loads((out / "stats" / "00000.json").read_text())
        repaired.pop("seconds")
        assert repaired == good
