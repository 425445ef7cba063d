"""The web demo's styles: the ConsistentID release's style templates, each with its negative prompt."""

from __future__ import annotations

from idportrait.registry import DEFAULT_NEGATIVE_PROMPT
from idportrait.serve.styles import DEFAULT_STYLE, NO_STYLE, STYLES, apply_style


def test_the_release_styles_in_its_order():
    names = list(STYLES)
    assert len(names) == 17
    assert names[:3] == ["Mars", "Neonpunk", "Fantasy art"]
    assert names[-2:] == [DEFAULT_STYLE, NO_STYLE] == ["Photographic (Default)", "(No style)"]
    assert all(style.prompt.count("{prompt}") == 1 for style in STYLES.values())


def test_apply_style_fills_the_template_and_joins_the_negatives():
    text, negative = apply_style(STYLES["Photographic (Default)"], "a woman in a garden")
    assert (
        text == "cinematic photo a woman in a garden . 35mm photograph, film, bokeh, professional, 4k, highly detailed"
    )
    assert negative.startswith("drawing, painting, crayon") and negative.endswith(DEFAULT_NEGATIVE_PROMPT)
    assert apply_style(STYLES[NO_STYLE], "a man") == ("a man", DEFAULT_NEGATIVE_PROMPT)
