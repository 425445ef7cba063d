from __future__ import annotations

import dataclasses
from importlib import resources

import pytest

from idportrait.curate.config import CurateConfig
from idportrait.curate.language import (
    detect_language,
    fasttext_language,
    fasttext_rule,
    language_of,
    latin_share,
    without_web_addresses,
)

CFG = CurateConfig()


def _labelled() -> list[tuple[str, str]]:
    text = (resources.files("idportrait") / "data" / "curate" / "lang_eval.tsv").read_text(encoding="utf-8")
    return [tuple(line.split("\t", 1)) for line in text.splitlines() if line and not line.startswith("#")]


def test_english_vs_other_accuracy_on_the_labelled_sample():
    rows = _labelled()
    assert len(rows) >= 200
    assert sum(label == "en" for label, _ in rows) >= 100
    correct = sum((detect_language(caption) == "en") == (label == "en") for label, caption in rows)
    assert correct / len(rows) >= 0.97


def test_never_calls_a_foreign_caption_english():
    foreign = [(label, c) for label, c in _labelled() if label != "en"]
    assert all(detect_language(c) != "en" for _, c in foreign)


def test_odd_input_is_unknown_not_a_crash():
    assert detect_language("") == "un"
    assert detect_language("\x00\x01\x02") == "un"
    assert detect_language("Portrait of a man\x00 smiling at the camera in the park") == "en"


@pytest.mark.parametrize(
    "caption", ["Salman Khan", "Secretary of State Hillary Rodham Clinton", "The Charminar", "Woman"]
)
def test_short_latin_captions_without_foreign_evidence_stay_english(caption):
    assert detect_language(caption) != "en"  # CLD2 alone cannot place them
    assert language_of(caption, None, CFG) == ("en", "default")


@pytest.mark.parametrize(
    ("caption", "rule"),
    [
        ("Рукавички дитячі зимові теплі для хлопчиків Nike", "script"),  # mostly Cyrillic letters
        ("美しい女性のポートレート写真 portrait", "script"),
        ("Ein rotes Auto parkt nachts auf der Straße", "cld2"),
        ("Bianco Donna Pelle Sneakers", "words"),  # CLD2 calls these English by default
        ("Tapis de salon shaggy gris", "words"),
    ],
)
def test_foreign_captions_are_caught_by_script_cld2_or_word_evidence(caption, rule):
    code, decided_by = language_of(caption, None, dataclasses.replace(CFG, use_fasttext=False))
    assert code != "en" and decided_by == rule


def test_language_column_decides_unless_ignored_or_empty():
    caption = "Portrait of a young woman smiling"
    assert language_of(caption, "de", CFG) == ("de", "column")
    assert language_of(caption, "EN", CFG) == ("en", "column")
    assert language_of(caption, "nolang", CFG)[1] != "column"
    ignoring = dataclasses.replace(CFG, use_language_column=False)
    assert language_of(caption, "de", ignoring)[0] == "en"


def test_assume_language_skips_detection():
    assumed = dataclasses.replace(CFG, assume_language="en")
    assert language_of("Porträt einer jungen Frau mit roten Haaren", "de", assumed) == ("en", "assumed")


def test_latin_share():
    assert latin_share("Nike") == 1.0 and latin_share("1234 !") is None
    assert latin_share("Обои snow") == pytest.approx(4 / 8)


def test_language_decision_on_the_labelled_sample():
    from idportrait.curate.filters import filter_language
    from idportrait.curate.types import Sample

    rows = _labelled()
    assert all(filter_language(Sample("k", c), CFG).keep == (label == "en") for label, c in rows)


def test_web_addresses_are_removed_token_by_token():
    assert without_web_addresses("Chaussures femme www.shop.fr/x https://a.b Bianco.COM rot") == "Chaussures femme rot"
    assert without_web_addresses("www." + "x" * 1_200_000) == ""  # one pass; the old regex took hours here


def test_fasttext_reads_the_shipped_model_offline():
    assert fasttext_language("Ein rotes Auto parkt nachts auf der Straße")[0] == "de"
    assert fasttext_language("  \n ") == ("un", 0.0)  # no text, no prediction (fastText refuses newlines)
    assert fasttext_rule("Ein rotes Auto parkt nachts auf der Straße") == "de"  # confident: alone
    assert fasttext_rule("Tapis de salon shaggy gris") == "fr"  # less so, backed by French words
    assert fasttext_rule("Portrait of a young woman smiling in the park") is None


def test_fasttext_is_a_switchable_rule():
    caption = "Tapis de salon shaggy gris"
    assert language_of(caption, None, CFG) == ("fr", "fasttext")
    assert language_of(caption, None, dataclasses.replace(CFG, use_fasttext=False)) == ("fr", "words")


def test_names_do_not_make_a_caption_foreign():
    caption = "Frida Kahlo Tote Bag Canvas"  # "frida" and "tote" are German words
    assert language_of(caption, None, CFG) == ("en", "names")
    assert language_of(caption, None, dataclasses.replace(CFG, use_name_gazetteer=False)) == ("de", "words")
    assert language_of("Chaussures femme Maria Garcia", None, CFG)[0] == "fr"  # foreign without the names too
