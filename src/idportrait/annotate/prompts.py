"""The two captioning prompts of the FGID data (ConsistentID) and the facial-caption normalisation.

The overall prompt asks for gender, age, clothing and expression; the facial prompt asks for the five
facial parts whose class words the marking step looks for (face, ears, eyes, nose, mouth).
"""

from __future__ import annotations

import re

OVERALL_PROMPT = (
    "Please describe the people in the image, including their gender, age, clothing, facial expressions, "
    "and any other distinguishing features."
)
FACIAL_PROMPT = "Describe this person's facial features for me, including face, ears, eyes, nose, and mouth."

SUBJECT = "The person"
"""What the facial caption's subject becomes: the subject of the fixed inference caption."""

_SUBJECT_PATTERN = re.compile(
    r"^\s*(?:in (?:the|this) (?:image|photo|picture),?\s*)?"
    r"(?:the|this|a)\s+(?:young |old |elderly |middle-aged )?"
    r"(?:person|man|woman|boy|girl|lady|gentleman|child|individual)"
    r"(?:\s+(?:in|of) (?:the|this) (?:image|photo|picture))?",
    re.IGNORECASE,
)


def normalise_facial_caption(caption: str) -> str:
    """The facial substitution: the caption's leading subject becomes "The person"; whitespace is collapsed.

    "The woman in the image has a round face, ..." -> "The person has a round face, ...". The facial caption
    thus reads like the fixed caption used at inference ("The person has one face, ..."), and no gender word
    precedes the marked class words. Captions with another opening are only whitespace-normalised.
    """
    text = " ".join(caption.split())
    return _SUBJECT_PATTERN.sub(SUBJECT, text, count=1)
