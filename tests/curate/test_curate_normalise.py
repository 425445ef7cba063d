from __future__ import annotations

import pytest

from idportrait.curate.keywords import find_person_keyword
from idportrait.curate.normalise import MAX_TEXT_CHARS, normalise_caption

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


def test_every_caption_step_reads_a_bounded_prefix():
    from idportrait.curate.config import CurateConfig
    from idportrait.curate.filters import caption_text
    from idportrait.curate.types import Sample

    cfg = CurateConfig(max_caption_chars=2_000_000)
    for caption in ("x" * 1_200_000 + " woman", "grey " * 240_000 + "woman", "<a " * 400_000 + "woman"):
        for normalise in (True, False):
            text = caption_text(Sample("k", caption), CurateConfig(normalise=normalise, max_caption_chars=2_000_000))
            assert len(text) <= MAX_TEXT_CHARS and "woman" not in text
    assert caption_text(Sample("k", "A woman " + "x" * 5000), cfg).startswith("A woman")
