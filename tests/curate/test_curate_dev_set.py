"""The text stage against the 1000 real dev captions labelled by reading (tests/data/curate/captions_dev_labels.tsv).

The floors are the issue's targets on this set; a held-out set from the same source checks them for real.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from idportrait.curate.cascade import text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.filters import filter_language
from idportrait.curate.types import Sample

DEV_SET = Path(__file__).resolve().parents[1] / "data" / "curate" / "captions_dev_labels.tsv"


def _rows() -> list[dict[str, str]]:
    with open(DEV_SET, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_the_dev_set_is_fully_labelled():
    rows = _rows()
    assert [int(r["row"]) for r in rows] == list(range(1000))
    assert Counter(r["english"] for r in rows).keys() <= {"yes", "no", "unclear"}
    assert Counter(r["person"] for r in rows).keys() <= {"yes", "no", "audience"}


def test_language_filter_on_the_dev_set():
    rows = _rows()
    kept = [filter_language(Sample(r["row"], r["TEXT"]), CurateConfig()).keep for r in rows]
    english = [k for r, k in zip(rows, kept, strict=True) if r["english"] == "yes"]
    foreign = [k for r, k in zip(rows, kept, strict=True) if r["english"] == "no"]
    assert sum(english) / len(english) >= 0.99
    assert sum(foreign) / len(foreign) <= 0.33


@pytest.mark.slow
def test_person_recall_and_kept_precision_on_the_dev_set():
    rows = _rows()
    decisions = text_stage([Sample(r["row"], r["TEXT"]) for r in rows], CurateConfig())
    english = [(r, d) for r, d in zip(rows, decisions, strict=True) if r["english"] == "yes"]
    people = [d.keep for r, d in english if r["person"] == "yes"]
    kept = [r["person"] in ("yes", "audience") for r, d in english if d.keep]
    assert sum(people) / len(people) >= 0.92
    assert sum(kept) / len(kept) >= 0.57
