from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from idportrait.curate.labelled import Labelled, fold_of, load_labelled, measures, split_halves
from idportrait.curate.types import Decision, Sample

DEV_SET = Path(__file__).resolve().parents[1] / "data" / "curate" / "captions_dev_labels.tsv"


def test_halves_are_disjoint_stratified_and_fixed_by_the_seed():
    rows = load_labelled(DEV_SET)
    tuning, validation = split_halves(rows)
    keys = [r.sample.key for r in tuning]
    assert not set(keys) & {r.sample.key for r in validation} and len(tuning) + len(validation) == len(rows)
    assert keys == [r.sample.key for r in split_halves(rows)[0]]  # same seed, same halves
    assert keys != [r.sample.key for r in split_halves(rows, seed=1)[0]]
    both = Counter((r.english, r.person) for r in rows)
    half = Counter((r.english, r.person) for r in tuning)
    assert all(abs(2 * half[k] - n) <= 1 for k, n in both.items())  # each label pair split evenly


def test_folds_cover_every_row_evenly():
    rows = load_labelled(DEV_SET)
    sizes = Counter(fold_of(rows, 5))
    assert sorted(sizes) == [0, 1, 2, 3, 4] and max(sizes.values()) - min(sizes.values()) <= 8


def test_measures_follow_the_labelling_spec():
    labelled = [
        Labelled(Sample("a", "x"), "yes", "yes"),
        Labelled(Sample("b", "x"), "yes", "no"),
        Labelled(Sample("c", "x"), "no", "no"),
        Labelled(Sample("d", "x"), "yes", "audience"),
    ]
    decisions = [Decision(True), Decision(True), Decision.drop("not_english"), Decision.drop("no_person_in_caption")]
    values = measures(labelled, decisions)
    assert values["English recall"] == 1.0 and values["foreign kept"] == 0.0
    assert values["person recall"] == 1.0 and values["kept precision"] == 0.5 and values["kept share"] == 0.5
    assert math.isnan(measures(labelled[:1], decisions[:1])["foreign kept"])  # no foreign caption: undefined
