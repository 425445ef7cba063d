from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
from PIL import Image

from idportrait.curate.report import build_report, render_markdown, write_report
from idportrait.curate.sample import expected_decisions


def test_report_counts_match_the_decisions(curated_sample, tmp_path):
    expected = expected_decisions()
    report = build_report(str(curated_sample))
    assert report.shards == 4 and report.samples == len(expected)
    assert report.kept == list(expected.values()).count("kept")
    for reason, n in report.dropped.items():
        assert n == list(expected.values()).count(reason)
    remaining = [r for _, _, r in report.funnel]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == report.kept
    assert len(report.face_ratios) == 8  # images that reached face detection
    decisions = [r for f in (curated_sample / "decisions").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(report.min_sides) == sum(r["decoded"] for r in decisions) < sum(bool(r["width"]) for r in decisions)
    assert min(report.min_sides) == 256
    assert report.download_failures == {"connection_refused": 1}
    assert dict((r, d) for r, d, _ in report.funnel)["download_failed"] == 1

    umask = os.umask(0o022)
    try:
        _, folder = write_report(str(curated_sample), tmp_path / "rep")
    finally:
        os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        name: 0o644 for name in ("report.md", "report.json", "resolution_hist.png", "face_area_hist.png")
    }
    saved = json.loads((folder / "report.json").read_text())
    assert saved["kept"] == report.kept and saved["config"]["min_side"] == 512
    assert "| decoded image below the minimum side | `low_resolution` | 2 |" in (folder / "report.md").read_text()
    for png in ("resolution_hist.png", "face_area_hist.png"):
        with Image.open(folder / png) as im:
            assert im.size == (600, 350)
    assert report.steps["person:keywords"] == 15 and sum(v for k, v in report.steps.items() if "language" in k) == 19
    assert render_markdown(report).count("\n") == len(report.funnel) + 6 + 5 + len(report.steps) + 5 + 1
    assert "| `connection_refused` | 1 |" in render_markdown(report)


def test_report_of_an_empty_folder(tmp_path):
    report = build_report(str(tmp_path))
    assert (report.shards, report.samples, report.kept) == (0, 0, 0)
