from __future__ import annotations

import pytest

from idportrait.curate.keywords import compile_keywords, find_person_keyword, load_keyword_list

LISTS = ("people", "nationalities", "ethnicities", "professions")


@pytest.mark.parametrize("name", LISTS)
def test_lists_ship_hundreds_of_unique_entries(name):
    entries = load_keyword_list(name)
    assert len(entries) >= 300
    assert len(set(entries)) == len(entries)
    assert all(e == e.strip().lower() and not e.startswith("#") for e in entries)


@pytest.mark.parametrize(
    ("caption", "found"),
    [
        ("Two MEN walking a dog", "MEN"),
        ("A mandate from the board", None),  # "man" only as a whole word
        ("Humanitarian aid arrives", None),
        ("humans at the beach", "humans"),
        ("Self-portrait in oil", "Self-portrait"),
        ("self  portrait in oil", "self  portrait"),
        ("An African-American woman", "African-American"),
        ("african american history month", "african american"),
        ("Firefighters at work", "Firefighters"),
        ("The Frenchmen in Paris", "Frenchmen"),
        ("Mi’kmaq elder telling stories", "Mi’kmaq"),
        ("Fiancée kissing", "Fiancée"),
        ("the woman's bag", "woman"),
        ("Stainless steel sink, 32 inch", None),
        ("Sunset over the mountains", None),
    ],
)
def test_word_boundaries_phrases_plurals_and_case(caption, found):
    assert find_person_keyword(caption, LISTS) == found


def test_compile_matches_exactly_the_entries_as_words():
    pattern = compile_keywords(["ice skater", "nurse", "box"])
    assert pattern.search("an Ice-Skater on the lake")
    assert pattern.search("two nurses")
    assert pattern.search("boxes")
    assert not pattern.search("ice rink") and not pattern.search("nursery") and not pattern.search("boxer")
    with pytest.raises(ValueError):
        compile_keywords(["  "])


def test_each_list_is_selectable_on_its_own():
    assert find_person_keyword("a Kenyan runner", ("nationalities",)) == "Kenyan"
    assert find_person_keyword("a Kenyan runner", ("ethnicities",)) is None
    assert find_person_keyword("Maasai warriors dancing", ("ethnicities",)) == "Maasai"
    assert find_person_keyword("the cardiologist explains", ("professions",)) == "cardiologist"
    with pytest.raises(FileNotFoundError):
        load_keyword_list("no_such_list")


@pytest.mark.parametrize(
    ("caption", "found"),
    [
        ("Mexican pottery vase", None),  # an adjective about a thing
        ("celtic heart decal", None),
        ("Mexicans celebrate in the street", "Mexicans"),  # a plural noun names people
        ("The Frenchmen in Paris", "Frenchmen"),
        ("A Chinese woman", "woman"),  # a people word beside it
        ("Kenyan runner", "runner"),
    ],
)
def test_adjective_lists_count_only_as_plural_nouns(caption, found):
    assert find_person_keyword(caption, LISTS, ("nationalities", "ethnicities")) == found


def test_plural_only_pattern():
    pattern = compile_keywords(["mexican", "frenchman"], plural_only=True)
    assert pattern.search("two Mexicans") and pattern.search("Frenchmen")
    assert not pattern.search("a Mexican vase") and not pattern.search("a Frenchman")
