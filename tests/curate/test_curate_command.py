from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idportrait.cli", "curate", *args], capture_output=True, text=True)


def test_report_command_prints_the_table_and_where_it_went(curated_sample):
    result = _cli("report", str(curated_sample))
    assert result.returncode == 0, result.stderr
    assert "too_many_faces" in result.stdout and "face_area_hist.png" in result.stdout
    assert (curated_sample / "report" / "report.md").is_file()


def _bad_and_good_shards(folder: Path) -> None:
    """Good shards a and d around a random-bytes parquet b and a truncated tar c; a holds a 1.2 M-character
    caption without any person word."""
    import random

    from curate_shards import small_shard, truncated_tar

    folder.mkdir()
    small_shard(
        folder / "a.parquet",
        [
            ("grey " * 240_000, None, None),
            ("Portrait of a woman", None, None),
            ("Ein rotes Auto parkt nachts", None, None),
        ],
    )
    (folder / "b.parquet").write_bytes(random.Random(0).randbytes(4096))
    truncated_tar(folder / "c.tar", [f"A man number {i}".encode() * 200 for i in range(3)], keep=3000)
    small_shard(folder / "d.parquet", [("A red car on a quiet street", None, None)])


@pytest.mark.slow
def test_bad_shards_are_recorded_and_the_run_goes_on(tmp_path):
    _bad_and_good_shards(tmp_path / "in")
    out = tmp_path / "out"
    result = _cli("run", str(tmp_path / "in"), "--out", str(out), "--detector", "dlib")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2 and "b.parquet" in skipped[0] and "c.tar" in skipped[1]
    assert sorted(p.name for p in (out / "stats").iterdir()) == ["a.json", "d.json"]
    assert sorted(p.name for p in (out / "failures").iterdir()) == ["b.json", "c.json"]
    assert json.loads((out / "stats" / "a.json").read_text())["dropped"] == {
        "caption_too_long": 1,
        "no_image": 1,
        "not_english": 1,
    }

    report = _cli("report", str(out))
    assert report.returncode == 0, report.stderr
    assert "caption_too_long" in report.stdout and "person:keywords" in report.stdout
    assert "b.parquet" in report.stdout and "c.tar" in report.stdout
    markdown = (out / "report" / "report.md").read_text()
    assert "Unreadable input shards (2" in markdown
    assert "`caption_too_long` | 1 | 3 |" in markdown  # 4 samples in, 1 dropped, 3 remaining

    strict = _cli("run", str(tmp_path / "in"), "--out", str(out), "--detector", "dlib", "--strict")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "2 input shards could not be read" in strict.stderr.splitlines()[-1]


@pytest.mark.slow
def test_rerun_with_other_settings_is_one_line_until_overwrite(tmp_path):
    from curate_shards import small_shard

    small_shard(tmp_path / "x.parquet", [("A red car", None, None)])
    out = str(tmp_path / "out")
    assert _cli("run", str(tmp_path / "x.parquet"), "--out", out, "--detector", "dlib").returncode == 0
    other = _cli("run", str(tmp_path / "x.parquet"), "--out", out, "--detector", "dlib", "--min-side", "256")
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    assert "min_side: 512 -> 256" in other.stderr and "--overwrite" in other.stderr
    again = _cli(
        "run", str(tmp_path / "x.parquet"), "--out", out, "--detector", "dlib", "--min-side", "256", "--overwrite"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "out" / "settings.json").read_text())["min_side"] == 256
    assert json.loads((tmp_path / "out" / "stats" / "x.json").read_text())["config"]["min_side"] == 256


def test_cli_threshold_defaults_are_the_config_defaults():
    import inspect

    from idportrait.curate.command import run
    from idportrait.curate.config import CurateConfig

    cfg = CurateConfig()
    options = {name: p.default.default for name, p in inspect.signature(run).parameters.items() if name != "ctx"}
    for name in ("min_side", "min_face_ratio", "max_faces", "det_score", "max_punsafe", "max_caption_chars"):
        assert options[name] == getattr(cfg, name), name
    assert options["drop_nsfw"].split(",") == list(cfg.drop_nsfw)
    assert (options["ner"], options["credit"], options["normalise"]) == (cfg.use_ner, cfg.use_credit, cfg.normalise)
    assert (options["fasttext"], options["name_gazetteer"]) == (cfg.use_fasttext, cfg.use_name_gazetteer)
    assert options["nationality_adjectives"] == (not cfg.adjective_lists)


def test_missing_input_and_empty_report(tmp_path):
    result = _cli("run", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "nope.parquet" in result.stderr and "not found" in result.stderr
    result = _cli("report", str(tmp_path))
    assert result.returncode == 2 and "no finished shards" in result.stderr
    result = _cli("report", str(tmp_path / "absent"))
    assert result.returncode == 2 and "absent" in result.stderr and "no finished shards" in result.stderr
    assert not (tmp_path / "absent").exists() and not (tmp_path / "report").exists()  # nothing half-written


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


@pytest.mark.slow
def test_preset_faceid6m_sets_the_papers_text_rule_and_explicit_switches_win(tmp_path):
    from curate_shards import small_shard

    small_shard(tmp_path / "x.parquet", [("A red car", None, None)])
    paper = _cli(
        "run", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "a"), "--detector", "dlib", "--preset", "faceid6m"
    )
    assert paper.returncode == 0, paper.stderr
    settings = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert (settings["use_ner"], settings["use_ner_recased"], settings["use_fasttext"]) == (True, False, False)
    assert (settings["normalise"], settings["use_credit"], settings["adjective_lists"]) == (False, False, [])
    mixed = _cli(
        "run", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "b"), "--detector", "dlib",
        "--preset", "faceid6m", "--ner-recased",
    )  # fmt: skip
    assert mixed.returncode == 0, mixed.stderr
    assert json.loads((tmp_path / "b" / "settings.json").read_text())["use_ner_recased"] is True
    unknown = _cli("run", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "c"), "--preset", "laion")
    assert unknown.returncode == 2 and "faceid6m" in unknown.stderr and "Traceback" not in unknown.stderr
