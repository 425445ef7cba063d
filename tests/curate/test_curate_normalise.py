from __future__ import annotations

import pytest

from idportrait.curate.keywords import find_person_keyword
from idportrait.curate.normalise import normalise_caption

LISTS = ("people", "nationalities", "ethnicities", "professions")


@pytest.mark.parametrize(
    ("caption", "normalised"),
    [
        ("Crop_oktoberfest_old_couple_in_tracht", "Crop oktoberfest old couple in tracht"),
        ("kennedy_nixon_debate_first_chicago_1960.JPG", "kennedy nixon debate first chicago 1960"),
        ("JohnSmithPortrait-2019.png", "John Smith Portrait 2019"),
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),
        ("Diecast <font><b>Car</b></font> Model", "Diecast Car Model"),
        ("Self-portrait of a man", "Self-portrait of a man"),  # hyphens in a sentence stay
        ("A photo.jpg of a mother", "A photo.jpg of a mother"),  # only a trailing extension goes
        ("  spaced   out  ", "spaced out"),
    ],
)
def test_normalise_caption(caption, normalised):
    assert normalise_caption(caption) == normalised


def test_separators_no_longer_hide_people_words():
    caption = "Crop_oktoberfest_old_couple_in_tracht"
    assert find_person_keyword(caption, LISTS) is None  # "_" is a word character for the regex
    assert find_person_keyword(normalise_caption(caption), LISTS) == "couple"
