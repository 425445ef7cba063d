from __future__ import annotations

import pytest

from idportrait.curate.names import gazetteer, name_spans, rare_name, without_names


def _names(text: str) -> list[str]:
    return [text[a:b] for a, b in name_spans(text)]


def test_the_shipped_lists_hold_common_names_of_many_countries():
    first, last = gazetteer()
    assert len(first) > 50_000 and len(last) > 50_000
    assert {"maria", "mohammed", "hiroshi", "olga", "vincent"} <= first
    assert {"garcia", "smith", "nguyen", "kowalski"} <= last
    assert all(n == n.lower() and n.isalpha() for n in list(first)[:1000])


@pytest.mark.parametrize(
    ("caption", "names"),
    [
        ("Starry Night Vincent Van Gogh Backpack", ["Vincent Van Gogh"]),
        ("Portrait of Maria Garcia at home", ["Maria Garcia"]),
        ("Oscar de la Renta silk dress", ["Oscar de la Renta"]),
        ("Mary Ann Smith", ["Mary Ann Smith"]),  # spans sharing a word merge
        ("maria garcia at home", []),  # lower case says nothing about names
        ("MARIA GARCIA AT HOME", []),  # neither do capitals
        ("Maria sofa in grey", []),  # a first name alone is no full name
    ],
)
def test_name_spans_need_capitalised_first_and_last_names(caption, names):
    assert _names(caption) == names


def test_hyphens_split_words():
    assert _names("poster-of-Maria-Garcia-2019") == ["Maria-Garcia"]


def test_without_names_leaves_the_rest():
    text = "Frida Garcia red scarf by Maria Lopez"
    assert without_names(text, name_spans(text)) == "  red scarf by  "


def test_rare_name_needs_a_last_name_rare_as_an_english_word():
    assert rare_name("Starry Night Vincent Van Gogh Backpack") == "Vincent Van Gogh"
    assert rare_name("Grace Wool and Silk scarf") is None  # "Wool" is a common word
    assert rare_name("Sofa by Maria Gold") is None


def test_name_spans_are_linear_in_the_caption_length():
    text = "Maria " * 50_000 + "Garcia"  # "Maria" is a last name too: one span of 50 001 words
    assert _names(text) == [text]
