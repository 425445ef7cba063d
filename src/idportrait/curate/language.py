"""Caption language: an input language column, else CLD2's per-language percentages, a script check
and function-word evidence (pycld2: compiled, offline, ~10 µs per caption).

    language_of(text, column_value, cfg) -> (code, rule)
        assumed   --assume-language: no detection at all
        column    the input's LANGUAGE value (LAION-5B multilingual parts), unless ignored
        script    most letters are not Latin: the caption is not in a Latin-script language
        cld2      CLD2 names a language for most of the text, reliably
        words     common function words of another language outnumber English ones
        default   short or unreliable Latin-script caption with no evidence of another language:
                  it counts as English (name-only captions such as "Salman Khan")

CLD2 falls back to English for text it cannot place and marks such short text "reliable" all the
same, so its answer alone is no evidence on a short Latin-script caption; the function-word lists
(``data/curate/language/function_words.tsv``) give that evidence for the languages LAION holds most.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idportrait.curate.config import CurateConfig

UNKNOWN = "un"
NO_LANGUAGE_VALUES = frozenset({"", "un", "und", "nolang", "unknown", "none", "null", "nan"})
"""Language column values that say nothing (LAION's ``nolang`` part): detection decides instead."""
_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(
    r"[A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u2c60-\u2c7f\ua720-\ua7ff]"
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
MIN_LATIN_SHARE = 0.5
"""Captions with a smaller share of Latin letters are not in a Latin-script language."""
OTHER_LANGUAGE_PERCENT = 40
"""A reliable CLD2 result giving another language at least this percentage of the text decides."""
MIN_FUNCTION_WORDS = 1
"""Function words of one other language needed (and more than English ones) as evidence."""


def detect_language(caption: str) -> str:
    """ISO 639-1 code of CLD2's best-scoring language ("un" when CLD2 cannot tell)."""
    return cld2_percentages(caption)[1][0][0] if caption else UNKNOWN


def cld2_percentages(caption: str) -> tuple[bool, list[tuple[str, int]]]:
    """(reliable, [(code, percent of the text)] best first) from CLD2; [("un", 0)] when it fails."""
    import pycld2

    for text in (caption, "".join(ch for ch in caption if ch.isprintable())):
        try:
            reliable, _, details = pycld2.detect(text, isPlainText=True)
        except pycld2.error:  # CLD2 rejects some control characters: retry on the printable part
            continue
        found = [(code, percent) for _, code, percent, _ in details if code != UNKNOWN]
        return reliable, found or [(UNKNOWN, 0)]
    return False, [(UNKNOWN, 0)]


def latin_share(text: str) -> float | None:
    """Share of the letters of ``text`` in Latin script, in [0, 1]; None when it has no letters."""
    if text.isascii():
        return 1.0 if any(ch.isalpha() for ch in text) else None
    letters = len(_LETTER.findall(text))
    return len(_LATIN_LETTER.findall(text)) / letters if letters else None


@lru_cache(maxsize=1)
def function_words() -> dict[str, tuple[str, ...]]:
    """Lower-case function word -> the languages it is common in, from the shipped list."""
    path = resources.files("idportrait") / "data" / "curate" / "language" / "function_words.tsv"
    words: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, entries = line.split("\t", 1)
            for word in entries.split():
                words[word] = (*words.get(word, ()), code)
    return words


def function_word_language(text: str) -> str | None:
    """The language with at least `MIN_FUNCTION_WORDS` function words in ``text``, more than English has."""
    lists = function_words()
    counts: dict[str, int] = {}
    for word in _WORD.findall(text.lower()):
        for code in lists.get(word, ()):
            counts[code] = counts.get(code, 0) + 1
    english = counts.pop("en", 0)
    if not counts:
        return None
    code, best = max(counts.items(), key=lambda item: item[1])
    return code if best >= MIN_FUNCTION_WORDS and best > english else None


def language_of(text: str, column_value: str | None, cfg: CurateConfig) -> tuple[str, str]:
    """(language code, rule that decided it) of a normalised caption; see the module docstring."""
    if cfg.assume_language:
        return cfg.assume_language, "assumed"
    if cfg.use_language_column and isinstance(column_value, str):
        value = column_value.strip().lower().replace("_", "-").split("-")[0]
        if value not in NO_LANGUAGE_VALUES:
            return value, "column"
    share = latin_share(text)
    if share is None:
        return UNKNOWN, "script"
    if share < MIN_LATIN_SHARE:
        code = detect_language(text)
        return (code if code not in (UNKNOWN, cfg.language) else "non-latin"), "script"
    reliable, found = cld2_percentages(text)
    other = next(((code, p) for code, p in found if code not in (UNKNOWN, "en")), None)
    if reliable and other is not None and other[1] >= OTHER_LANGUAGE_PERCENT:
        return other[0], "cld2"
    other_words = function_word_language(text)
    if other_words is not None:
        return other_words, "words"
    if reliable and found[0][0] == "en":
        return "en", "cld2"
    return "en", "default"
