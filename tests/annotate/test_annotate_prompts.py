"""The captioning prompts and the facial substitution."""

from __future__ import annotations

import pytest

from idportrait.adapters.consistentid.text import mark_caption
from idportrait.annotate.prompts import FACIAL_PROMPT, OVERALL_PROMPT, normalise_facial_caption


def test_prompts_ask_for_the_five_facial_parts_and_the_overall_attributes():
    for word in ("face", "ears", "eyes", "nose", "mouth"):
        assert word in FACIAL_PROMPT
    for word in ("gender", "age", "clothing", "facial expressions"):
        assert word in OVERALL_PROMPT


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The woman in the image has a round face.", "The person has a round face."),
        ("The young man has  blue\neyes.", "The person has blue eyes."),
        ("In the image, the girl has a small nose.", "The person has a small nose."),
        ("This person's ears are small.", "The person's ears are small."),
        ("Her eyes are brown.", "Her eyes are brown."),
    ],
)
def test_facial_substitution_normalises_the_leading_subject(raw, expected):
    assert normalise_facial_caption(raw) == expected


def test_substituted_caption_marks_like_the_release_caption():
    caption = normalise_facial_caption(
        "The woman in the image has an oval face, brown eyes and small ears. Her nose is straight, her mouth smiles."
    )
    marked, kept = mark_caption(caption, ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"])
    assert marked.count("<|facial|>") == 5
    assert kept == ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    assert marked.startswith("The person has an oval face <|facial|>,")
