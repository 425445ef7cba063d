"""Human-study numbers against hand-computed and textbook values; the report section they make."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from idportrait.evaluation.agreement import krippendorff_alpha_ordinal
from idportrait.evaluation.human import bootstrap_mean, human_agreement, human_summary, write_human_report
from idportrait.evaluation.rating_db import Rating

NAN = np.nan


def test_alpha_matches_krippendorff_2011_ordinal_example():
    """Krippendorff (2011), 4 observers x 12 units with missing values: ordinal alpha = 0.815."""
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
    assert krippendorff_alpha_ordinal(np.array(data)) == pytest.approx(0.815, abs=5e-4)


def test_alpha_on_hand_computed_cases():
    # units (1, 2) and (2, 1): o_12 = o_21 = 2, n_1 = n_2 = 2, n = 4, d_12 = (4 - 2)^2 = 4;
    # alpha = 1 - (n - 1) * (2 * 2 * 4) / (2 * 2 * 2 * 4) = 1 - 3 * 16 / 32 = -0.5
    assert krippendorff_alpha_ordinal(np.array([[1, 2], [2, 1]])) == pytest.approx(-0.5)
    assert krippendorff_alpha_ordinal(np.array([[0, 3, 5], [0, 3, 5]])) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_ordinal(np.array([[1, NAN], [NAN, 2]])))  # nothing pairable
    assert math.isnan(krippendorff_alpha_ordinal(np.array([[4, 4], [4, 4]])))  # no variation to agree on


def test_bootstrap_over_images_on_a_hand_computed_case():
    # image 1 rated 4 and 2, image 2 rated 5: mean 11/3; resampled means are 3 (1,1), 11/3 (1,2) or 5 (2,2),
    # each end with probability 1/4, so the 2.5 and 97.5 percentiles are exactly 3 and 5
    mean, low, high = bootstrap_mean([[4, 2], [5]], resamples=2000, seed=0)
    assert (mean, low, high) == (pytest.approx(11 / 3), 3.0, 5.0)
    assert bootstrap_mean([[3, 3], [3]], 500, seed=1) == (3.0, 3.0, 3.0)


def _ratings() -> list[Rating]:
    """Two raters over four images of two methods; ``bo`` did not rate image a2's quality."""
    scores = {
        ("ana", "a1"): (4, 5, 3),
        ("ana", "a2"): (2, 4, 4),
        ("ana", "b1"): (1, 1, 2),
        ("ana", "b2"): (0, 2, 2),
        ("bo", "a1"): (5, 5, 3),
        ("bo", "a2"): (2, 3, None),
        ("bo", "b1"): (1, 0, 1),
    }
    return [
        Rating(rater, image, "A" if image.startswith("a") else "B", criterion, score)
        for (rater, image), triple in scores.items()
        for criterion, score in zip(("prompt", "faceid", "quality"), triple, strict=True)
        if score is not None
    ]


def test_summary_and_agreement_per_method_and_criterion():
    summary = {(s["method"], s["criterion"]): s for s in human_summary(_ratings(), seed=0, resamples=500)}
    a_prompt = summary[("A", "prompt")]
    assert (a_prompt["mean"], a_prompt["ratings"], a_prompt["images"], a_prompt["raters"]) == (13 / 4, 4, 2, 2)
    assert summary[("A", "quality")]["mean"] == pytest.approx(10 / 3) and summary[("A", "quality")]["ratings"] == 3
    assert summary[("B", "faceid")]["mean"] == pytest.approx(1.0) and summary[("B", "faceid")]["images"] == 2
    assert all(s["low"] <= s["mean"] <= s["high"] for s in summary.values())

    agreement = {a["criterion"]: a for a in human_agreement(_ratings())}
    # prompt: ana (4, 2, 1, 0), bo (5, 2, 1, -) over a1, a2, b1, b2: three shared images
    expected = krippendorff_alpha_ordinal(np.array([[4, 2, 1, 0], [5, 2, 1, NAN]]))
    assert agreement["prompt"]["alpha"] == pytest.approx(expected) and agreement["prompt"]["shared_images"] == 3
    assert agreement["quality"]["shared_images"] == 2 and agreement["quality"]["raters"] == 2


def test_human_section_joins_a_scored_run_and_is_replaced_on_rerun(tmp_path):
    (tmp_path / "summary.md").write_text("| Method | CLIP-T |\n|---|---|\n| A | 30.0 |\n")
    with open(tmp_path / "summary.csv", "w", newline="") as f:
        csv.writer(f).writerows([["method", "clip_t"], ["A", "30.0"], ["B", "25.0"]])
    summary = human_summary(_ratings(), seed=0, resamples=200)
    for _ in range(2):
        paths = write_human_report(tmp_path, summary, human_agreement(_ratings()), 200, 0)
    text = paths["table"].read_text()
    assert text.startswith("| Method | CLIP-T |") and text.count("## Human ratings") == 1
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("|")]
    assert len(tables) == 3 and all(len({line.count("|") for line in t}) == 1 for t in tables)
    assert "| A | 3.25 [" in text and "(4) |" in text
    with open(paths["summary"], newline="") as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    assert rows["A"]["clip_t"] == "30.0" and float(rows["A"]["human_prompt"]) == 3.25
    assert rows["B"]["human_faceid_n"] == "3"  # b1 by both, b2 by ana
    assert paths["human_plot"].is_file() and paths["human_plot"].stat().st_size > 1000
