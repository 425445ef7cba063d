"""Captions labelled by reading (``shared/spec/caption-labels.md``): loading, the four measures, and the
seeded tuning / validation split and folds that keep the text stage's quality figures honest.

    rows = load_labelled("captions_dev_labels.tsv")
    tuning, validation = split_halves(rows)          # tune on the first, report the second
    measures(validation, text_stage([r.sample for r in validation], cfg))

Splits are stratified by the (english, person) label pair and fixed by a seed, so every run and every
machine sees the same halves and folds.
"""

from __future__ import annotations

import csv
import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

from idportrait.curate import reasons
from idportrait.curate.readers import CAPTION_COLUMNS, decode_caption, laion_fields
from idportrait.curate.types import Decision, Sample

SPLIT_SEED = 0
"""The seed of the tuning / validation split and of the folds."""
MEASURES = ("English recall", "foreign kept", "person recall", "kept precision")


@dataclasses.dataclass
class Labelled:
    """One labelled caption: the sample as `curate run` reads it, ``english`` in yes/no/unclear and
    ``person`` in yes/no/audience."""

    sample: Sample
    english: str
    person: str


def load_labelled(path: str | Path) -> list[Labelled]:
    """Samples and labels of a .tsv/.parquet with a caption column (``TEXT``/``caption``/``text``), the
    columns ``english`` and ``person``, and optionally LAION's (``LANGUAGE``, ``NSFW``, ``punsafe``, ...)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    caption_column = next(c for c in CAPTION_COLUMNS if c in rows[0])
    labelled = []
    for i, row in enumerate(rows):
        caption, error = decode_caption(row[caption_column])
        sample = Sample(str(row.get("row", i)), caption, load_error=error, **laion_fields(row))
        labelled.append(Labelled(sample, str(row["english"]).strip(), str(row["person"]).strip()))
    return labelled


def measures(rows: Sequence[Labelled], decisions: Sequence[Decision]) -> dict[str, float]:
    """The four measures of the labelling spec and the kept share, each in [0, 1] (nan when undefined):

    - English recall: ``english=yes`` captions the language filter keeps;
    - foreign kept: ``english=no`` captions the language filter keeps;
    - person recall: ``english=yes, person=yes`` captions the whole text stage keeps;
    - kept precision: text-stage keeps among ``english=yes`` captions labelled ``yes`` or ``audience``.
    """
    language_kept = [d.reason != reasons.NOT_ENGLISH for d in decisions]

    def share(hits: list[bool]) -> float:
        return sum(hits) / len(hits) if hits else float("nan")

    pairs = list(zip(rows, decisions, strict=True))
    english = [k for r, k in zip(rows, language_kept, strict=True) if r.english == "yes"]
    foreign = [k for r, k in zip(rows, language_kept, strict=True) if r.english == "no"]
    people = [d.keep for r, d in pairs if r.english == "yes" and r.person == "yes"]
    kept = [r.person in ("yes", "audience") for r, d in pairs if r.english == "yes" and d.keep]
    return {
        "English recall": share(english),
        "foreign kept": share(foreign),
        "person recall": share(people),
        "kept precision": share(kept),
        "kept share": share([d.keep for d in decisions]),
    }


def _strata(n: int, labels: Sequence[tuple[str, str]], seed: int) -> list[list[int]]:
    """Row indices grouped by label pair, each group shuffled by ``seed``."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        groups.setdefault(labels[i], []).append(i)
    strata = []
    for key in sorted(groups):
        rng.shuffle(groups[key])
        strata.append(groups[key])
    return strata


def fold_of(rows: Sequence[Labelled], k: int, seed: int = SPLIT_SEED) -> list[int]:
    """The fold (0 .. k-1) of each row: every (english, person) group shuffled by ``seed`` and cut into
    ``k`` consecutive parts (the first ones one row larger where it does not divide)."""
    fold = [0] * len(rows)
    for group in _strata(len(rows), [(r.english, r.person) for r in rows], seed):
        for position, i in enumerate(group):
            fold[i] = position * k // len(group)
    return fold


def split_halves(rows: Sequence[Labelled], seed: int = SPLIT_SEED) -> tuple[list[Labelled], list[Labelled]]:
    """(tuning half, validation half), stratified by label pair, in input order."""
    fold = fold_of(rows, 2, seed)
    return [r for r, f in zip(rows, fold, strict=True) if f == 0], [r for r, f in zip(rows, fold, strict=True) if f]
