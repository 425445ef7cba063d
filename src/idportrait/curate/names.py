"""Person names by gazetteer: a capitalised first name followed by a capitalised last name.

    name_spans("Starry Night Vincent Van Gogh Backpack") -> [(13, 29)]   ("Vincent Van Gogh")

The lists (``data/curate/names/first.txt``, ``last.txt``) hold each country's most frequent first and
last names from the names-dataset package (built by ``benchmarks/curate_name_gazetteer.py``). A span is
a capitalised word from the first-name list, optional name particles ("van", "de", "bin", ...), and a
capitalised word from the last-name list; hyphens split words ("Jean-Michel Basquiat" holds "Michel
Basquiat"). Capitalisation is what says "name" here: all-capital words ("HUGO BOSS") and lower-case ones
never match, so captions in capitals or in lower case have no spans.

Two steps use the spans:
- language: names look foreign to CLD2 and to word lists ("Frida Kahlo Tote Bag"), so the language
  rules that weigh words judge the caption again with its name spans removed (`without_names`);
- person: `rare_name` accepts a span whose last name is rare as an English word (wordfreq), so that
  "Grace Wool" or "Rose Gold" do not count while "Vincent Van Gogh" does.

One regex pass over the words plus set look-ups: linear in the caption length.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

PARTICLES = frozenset(
    {"van", "von", "de", "da", "del", "della", "der", "di", "du", "dos", "das", "la", "le", "bin", "al", "el", "ter"}
)
"""Lower-case words that may stand between a first and a last name ("Vincent van Gogh", "Oscar de la Renta")."""
MAX_PARTICLES = 2
MAX_RARE_ZIPF = 3.5
"""A last name counts for the person step when its English Zipf frequency (wordfreq) is below this
(10^3.5 occurrences per billion words): "Gogh" (3.2) counts, "Wool" (4.0) or "Gold" (5.0) do not."""
_WORD = re.compile(r"[^\W\d_]+")


def load_name_list(name: str) -> frozenset[str]:
    """Entries of ``data/curate/names/<name>.txt`` (lower case, comments removed)."""
    path = resources.files("idportrait") / "data" / "curate" / "names" / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), loaded once per process."""
    return load_name_list("first"), load_name_list("last")


def _capitalised(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or not word.isupper())


def name_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of "First [particles] Last" names in ``text``, in order; spans that
    share a word merge ("Jean-Michel" + "Michel Basquiat"). See the module docstring."""
    first, last = gazetteer()
    words = list(_WORD.finditer(text))
    spans: list[tuple[int, int]] = []
    end_word = -1  # index of the last word of the previous span
    for i, match in enumerate(words[:-1]):
        word = match.group(0)
        if i < end_word or not _capitalised(word) or word.lower() not in first:
            continue
        j = i + 1
        while j < len(words) - 1 and j - i <= MAX_PARTICLES and words[j].group(0).lower() in PARTICLES:
            j += 1
        surname = words[j].group(0)
        if not (_capitalised(surname) and surname.lower() in last):
            continue
        if i == end_word:
            spans[-1] = (spans[-1][0], words[j].end())
        else:
            spans.append((match.start(), words[j].end()))
        end_word = j
    return spans


def without_names(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span (in order, not overlapping) replaced by one space."""
    pieces, done = [], 0
    for start, end in spans:
        pieces.append(text[done:start])
        done = end
    return " ".join([*pieces, text[done:]])


def rare_name(text: str) -> str | None:
    """The first name span whose last word is rare as an English word (`MAX_RARE_ZIPF`), or None."""
    from wordfreq import zipf_frequency

    for start, end in name_spans(text):
        surname = _WORD.findall(text[start:end])[-1]
        if zipf_frequency(surname, "en") < MAX_RARE_ZIPF:
            return text[start:end]
    return None
