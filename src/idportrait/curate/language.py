"""Caption language identification with CLD2 (pycld2: compiled, offline, ~10 µs per caption)."""

from __future__ import annotations


def detect_language(caption: str) -> str:
    """ISO 639-1 code of the caption's main language ("un" when CLD2 cannot tell).

    CLD2 is given the text as plain text (``isPlainText``), so HTML-like alt text is not skipped,
    and its best-scoring language is returned even when it flags the guess as unreliable: short
    captions ("Portrait of a man") are rarely "reliable" but usually right.
    """
    import pycld2

    try:
        _, _, details = pycld2.detect(caption, isPlainText=True)
    except pycld2.error:
        # CLD2 rejects some control characters; retry on the printable part of the text.
        printable = "".join(ch for ch in caption if ch.isprintable())
        try:
            _, _, details = pycld2.detect(printable, isPlainText=True)
        except pycld2.error:
            return "un"
    return details[0][1]
