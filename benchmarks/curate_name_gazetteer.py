"""Build the person-name gazetteer the curation text stage ships, from the names-dataset package.

    python benchmarks/curate_name_gazetteer.py [--top 1000] [--out src/idportrait/data/curate/names]

names-dataset (``pip install 'idportrait[names]'``, not part of ``all``: 55 MB that only this script
needs) ranks first names per country and gender and last names per country, for 105 countries. The
gazetteer keeps, for every country, the ``--top`` most frequent first names of each gender and the
``--top`` most frequent last names, in Latin script, lower-cased, at least two letters: ``first.txt``
and ``last.txt``, one name a line, sorted, with a header saying how they were built. Rebuilding with the
same version and ``--top`` gives the same files.
Loading names-dataset takes about 2 GB and 15 s, which is why the text stage reads these lists instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from idportrait.curate.language import latin_share

OUT = Path(__file__).resolve().parents[1] / "src" / "idportrait" / "data" / "curate" / "names"


def top_names(top: int) -> tuple[set[str], set[str]]:
    """(first names, last names): each country's ``top`` most frequent, Latin script, lower-cased."""
    from names_dataset import NameDataset

    dataset = NameDataset()
    first = dataset.get_top_names(n=top, use_first_names=True)
    last = dataset.get_top_names(n=top, use_first_names=False)
    first_names = {name for genders in first.values() for names in genders.values() for name in names}
    last_names = {name for names in last.values() for name in names}
    return plain(first_names), plain(last_names)


def plain(names: set[str]) -> set[str]:
    """Single-word, Latin-script names of at least two letters, lower-cased (letters only once lower-cased:
    "İsa" becomes "i" + a combining dot, which no caption word can match)."""
    lowered = {n.lower() for n in names}
    return {n for n in lowered if n.isalpha() and len(n) >= 2 and latin_share(n) == 1.0}


def write(path: Path, names: set[str], what: str, top: int) -> None:
    header = (
        f"# {what}: each country's {top} most frequent in names-dataset 3.3.1 (105 countries), Latin script,\n"
        "# lower-cased; built by benchmarks/curate_name_gazetteer.py (do not edit by hand).\n"
    )
    path.write_text(header + "".join(f"{n}\n" for n in sorted(names)), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    first, last = top_names(args.top)
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "first.txt", first, "First names (both genders)", args.top)
    write(args.out / "last.txt", last, "Last names", args.top)
    print(f"{len(first)} first names, {len(last)} last names written to {args.out}")


if __name__ == "__main__":
    main()
