"""Caption normalisation before language detection, keywords and NER (the written caption is unchanged).

    "Crop_oktoberfest_old_couple_in_tracht.jpg" -> "Crop oktoberfest old couple in tracht"
    "Tom &amp; Jerry"                             -> "Tom & Jerry"
    "JohnSmithPortrait-2019.png"                  -> "John Smith Portrait 2019"

- HTML tags are removed and HTML entities unescaped (twice, for the "&amp;amp;" that web pages
  double-escape);
- underscores always separate words (the keyword regex and spaCy see ``_`` as a letter);
- a trailing image extension is dropped;
- a file-name-like caption (no space left after the steps above) is split at hyphens, dots and
  camelCase humps ("JohnSmith" -> "John Smith"); hyphens inside ordinary sentences stay.

Every caption step reads at most the first `MAX_TEXT_CHARS` characters (`clip_caption`), and each regex
here and in the language, keyword and credit steps is linear in its input, so a caption costs time in
proportion to its length whatever ``--max-caption-chars`` allows.
"""

from __future__ import annotations

import html
import re

IMAGE_EXTENSION = re.compile(r"\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif)$", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_UNDERSCORES = re.compile(r"_+")
_FILE_NAME_SEPARATORS = re.compile(r"[-.+]+")
_CAMEL_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPACES = re.compile(r"\s+")
MAX_TEXT_CHARS = 2000
"""Characters of a caption that language, keyword, credit and NER steps read (the default
``max_caption_chars``; a longer caption is judged by its start, where alt texts say what they show)."""


def clip_caption(caption: str) -> str:
    """The first `MAX_TEXT_CHARS` characters of ``caption``: what every caption step reads."""
    return caption[:MAX_TEXT_CHARS]


def normalise_caption(caption: str) -> str:
    """The caption as keywords, NER and language detection see it (see the module docstring)."""
    text = clip_caption(caption)
    text = _HTML_TAG.sub(" ", text) if "<" in text else text
    text = html.unescape(html.unescape(text)) if "&" in text else text
    text = IMAGE_EXTENSION.sub("", text.strip())
    if "_" in text:
        text = _UNDERSCORES.sub(" ", text)
    if " " not in text.strip():
        text = _CAMEL_HUMP.sub(" ", _FILE_NAME_SEPARATORS.sub(" ", text))
    return _SPACES.sub(" ", text).strip()
