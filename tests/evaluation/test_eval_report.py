"""The report of a scored run stays valid for any subset of metrics: tables, plot names, plot titles."""

from __future__ import annotations

import math

import pytest

from idportrait.evaluation.report import category_figure, write_report
from idportrait.evaluation.score import METRICS

NAN = float("nan")


def _rows(metric: str | None, timings: bool = False, face: bool | None = None) -> list[dict]:
    """Two methods x two categories x two images; only ``metric`` has values (None: no metric at all)."""
    rows = []
    for m, method in enumerate(["alpha", "beta"]):
        for c, category in enumerate(["style", "action"]):
            for k in range(2):
                row = {"method": method, "identity": "x", "prompt_index": c, "category": category, "prompt": "p"}
                row |= {"seed": k, "path": f"{method}/{c}_{k}.png", "face": face}
                row |= {name: (10.0 * m + c + k if name == metric else NAN) for name in METRICS}
                row |= {"seconds": 1.5 + m if timings else NAN, "s_prepare": 0.5 if timings else NAN}
                row["s_generate"] = 1.0 + m if timings else NAN
                if timings:
                    row |= {"s_unet": 0.8, "s_other": 0.2 + m}
                rows.append(row)
    return rows


def _tables(markdown: str) -> list[list[str]]:
    """The markdown tables of a document, each as its lines."""
    tables, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _assert_valid_tables(markdown: str) -> list[list[str]]:
    tables = _tables(markdown)
    for table in tables:
        widths = {line.count("|") for line in table}
        assert len(widths) == 1, table  # header, separator and rows: one column count
        assert set(table[1].replace("|", "")) == {"-"}
    return tables


@pytest.mark.parametrize("metric", [*METRICS, "fid", "none"])
def test_report_with_each_metric_alone(tmp_path, metric):
    fid = {"alpha": 250.0, "beta": 300.0} if metric == "fid" else {}
    paths = write_report(tmp_path, _rows(metric), fid, "FID", "dlib", [], tmp_path, {})
    text = paths["table"].read_text()
    (methods,) = _assert_valid_tables(text)  # no timings: no stage table
    assert "No timings recorded" in text and "Seconds per image by stage" not in text
    header = [c.strip() for c in methods[0].strip("|").split("|")]
    expected = {
        "clip_t": "CLIP-T",
        "clip_i": "CLIP-I",
        "dino": "DINO",
        "facesim_facenet": "FaceSim (FaceNet)",
        "facesim_arcface": "FaceSim (dlib)",
        "fgis": "FGIS",
        "fid": "FID",
    }
    assert header == ["Method"] + ([expected[metric]] if metric != "none" else [])
    if metric in METRICS:
        assert methods[2].split("|")[2].strip() == "1.0"  # alpha: mean of 0, 1, 1, 2
        assert methods[3].split("|")[2].strip() == "11.0"
    plots = sorted(p.name for p in paths["plots"].glob("*.png")) if paths["plots"].exists() else []
    stem = {"facesim_arcface": "facesim_dlib"}.get(metric, metric)
    assert plots == ([f"{stem}.png"] if metric in METRICS else [])


def test_report_with_timings_and_faces_has_two_consistent_tables(tmp_path):
    paths = write_report(tmp_path, _rows("clip_t", timings=True, face=True), {}, "FID", "ArcFace", [], tmp_path, {})
    methods, stages = _assert_valid_tables(paths["table"].read_text())
    assert methods[0] == "| Method | CLIP-T | Speed (s) | No face |"
    assert methods[2] == "| alpha | 1.0 | 1.50 | 0/4 |"
    assert stages[0] == "| Method | prepare | generate | unet | other | total |"
    assert stages[3] == "| beta | 0.50 | 2.00 | 0.80 | 1.20 | 2.50 |"
    assert [p.name for p in paths["plots"].glob("*.png")] == ["clip_t.png"]


def test_plot_title_fits_in_the_figure():
    categories = [{"method": "consistentid", "category": "all", "images": 4, "facesim_arcface": 50.0}]
    fig = category_figure(categories, "facesim_arcface", "FaceSim (dlib)")
    fig.canvas.draw()
    title = fig.axes[0].title
    box = title.get_window_extent()
    assert title.get_text() == "FaceSim (dlib) by prompt category"
    assert box.x0 >= fig.bbox.x0 and box.x1 <= fig.bbox.x1
    assert not math.isnan(box.width) and box.width > 0
