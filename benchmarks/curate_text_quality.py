"""Curation text stage against captions labelled by reading: per-filter confusion, the four measures, speed.

    python benchmarks/curate_text_quality.py [LABELLED] [--repeats 3]

LABELLED: a .tsv or .parquet with a caption column (``TEXT``/``caption``/``text``) and the labels
``english`` (yes/no/unclear) and ``person`` (yes/no/audience) of ``shared/spec/caption-labels.md``;
other LAION columns (``URL``, ``LANGUAGE``, ``NSFW``, ``punsafe``...) are used like `curate run` uses
them. Default: the shipped dev set ``tests/data/curate/captions_dev_labels.tsv`` (1000 real alt texts).

Measures (all against the labels):
- English recall: ``english=yes`` captions the language filter keeps;
- foreign kept: ``english=no`` captions the language filter keeps;
- person recall: ``english=yes, person=yes`` captions the whole text stage keeps;
- kept precision: text-stage keeps among ``english=yes`` captions labelled ``yes`` or ``audience``.

One row per set-up: every step on, then each switchable step off alone. captions/s: `text_stage`
over all rows, one process, best of ``--repeats`` (NER model load and warm-up excluded); "per CPU-s"
divides by that run's CPU time instead (the per-core figure on a busy machine).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from idportrait.curate import reasons
from idportrait.curate.cascade import text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.readers import CAPTION_COLUMNS, decode_caption, laion_fields
from idportrait.curate.types import Decision, Sample

DEV_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "curate" / "captions_dev_labels.tsv"
SETUPS: dict[str, dict] = {
    "all steps on": {},
    "normalise off": {"normalise": False},
    "credit line off": {"use_credit": False},
    "NER re-cased pass off": {"use_ner_recased": False},
    "NER off": {"use_ner": False},
}


@dataclasses.dataclass
class Labelled:
    sample: Sample
    english: str
    person: str


def load_labelled(path: str | Path) -> list[Labelled]:
    """Samples and labels of a labelled .tsv/.parquet (see the module docstring)."""
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


def measures(rows: list[Labelled], decisions: list[Decision]) -> dict[str, float]:
    """The four measures and the kept share (see the module docstring)."""
    language_kept = [d.reason != reasons.NOT_ENGLISH for d in decisions]

    def share(hits: list[bool]) -> float:
        return sum(hits) / len(hits) if hits else float("nan")

    english = [k for r, k in zip(rows, language_kept, strict=True) if r.english == "yes"]
    foreign = [k for r, k in zip(rows, language_kept, strict=True) if r.english == "no"]
    people = [d.keep for r, d in zip(rows, decisions, strict=True) if r.english == "yes" and r.person == "yes"]
    kept = [
        r.person in ("yes", "audience") for r, d in zip(rows, decisions, strict=True) if r.english == "yes" and d.keep
    ]
    return {
        "English recall": share(english),
        "foreign kept": share(foreign),
        "person recall": share(people),
        "kept precision": share(kept),
        "kept share": share([d.keep for d in decisions]),
    }


def timed_text_stage(rows: list[Labelled], cfg: CurateConfig, repeats: int) -> tuple[list[Decision], float, float]:
    """(decisions, captions/s of the fastest of ``repeats`` runs, captions per CPU-second of that run)."""
    best, best_cpu = float("inf"), float("inf")
    decisions: list[Decision] = []
    for _ in range(repeats):
        samples = [dataclasses.replace(r.sample, steps={}) for r in rows]
        start, cpu = time.perf_counter(), time.process_time()
        decisions = text_stage(samples, cfg)
        if time.perf_counter() - start < best:
            best, best_cpu = time.perf_counter() - start, time.process_time() - cpu
    return decisions, len(rows) / best, len(rows) / best_cpu


def confusion_tables(rows: list[Labelled], decisions: list[Decision]) -> list[Table]:
    """Language filter: label x kept/dropped; person filter (English kept by language): label x deciding step."""
    language = Table(title="Language filter (all steps on): label x decision")
    outcomes = ["kept", "dropped (not_english)", "dropped earlier"]
    language.add_column("english label")
    for outcome in outcomes:
        language.add_column(outcome, justify="right")
    counts = Counter()
    for r, d in zip(rows, decisions, strict=True):
        dropped_earlier = not d.keep and d.reason in (*reasons.ORDER[: reasons.ORDER.index(reasons.NOT_ENGLISH)],)
        outcome = outcomes[2] if dropped_earlier else outcomes[1] if d.reason == reasons.NOT_ENGLISH else outcomes[0]
        counts[r.english, outcome] += 1
    for label in ("yes", "no", "unclear"):
        language.add_row(label, *(str(counts[label, o]) for o in outcomes))

    person = Table(title="Person filter on English-labelled captions the language filter kept: label x step")
    steps = ["keywords", "credit", "ner", "ner_recased", "dropped"]
    person.add_column("person label")
    for step in steps:
        person.add_column(step, justify="right")
    counts = Counter()
    for r, d in zip(rows, decisions, strict=True):
        if r.english == "yes" and d.reason != reasons.NOT_ENGLISH:
            counts[r.person, d.by if d.keep else "dropped"] += 1
    for label in ("yes", "audience", "no"):
        person.add_row(label, *(str(counts[label, s]) for s in steps))
    return [language, person]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labelled", nargs="?", default=str(DEV_SET))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = load_labelled(args.labelled)
    labels = Counter((r.english, r.person) for r in rows)
    text_stage([r.sample for r in rows[:200]], CurateConfig())  # loads the NER model: not timed
    table = Table(title=f"Curation text stage on {len(rows)} labelled captions ({Path(args.labelled).name})")
    names = ["English recall", "foreign kept", "person recall", "kept precision", "kept share"]
    table.add_column("set-up")
    for name in [*names, "captions/s", "per CPU-s"]:
        table.add_column(name, justify="right")
    all_on: list[Decision] = []
    for setup, changes in SETUPS.items():
        decisions, speed, cpu_speed = timed_text_stage(
            rows, dataclasses.replace(CurateConfig(), **changes), args.repeats
        )
        all_on = all_on or decisions
        values = measures(rows, decisions)
        table.add_row(setup, *(f"{values[n]:.3f}" for n in names), f"{speed:,.0f}", f"{cpu_speed:,.0f}")
    console = Console(width=150)
    console.print(table)
    for confusion in confusion_tables(rows, all_on):
        console.print(confusion)
    english = sum(n for (e, _), n in labels.items() if e == "yes")
    people = labels["yes", "yes"]
    console.print(f"labels: {english} English ({people} naming a person), {len(rows) - english} foreign or unclear")


if __name__ == "__main__":
    main()
