"""The web demo's named styles: the ConsistentID release's style templates, each a prompt template with its own
negative prompt (shipped in ``data/styles/consistentid_styles.json``, in the release's order and spelling).

    text, negative = apply_style(STYLES["Watercolor"], "a woman in a garden")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from idportrait.registry import DEFAULT_NEGATIVE_PROMPT


@dataclass(frozen=True)
class Style:
    """A named style: ``prompt`` holds ``{prompt}`` where the visitor's prompt goes; ``negative_prompt`` may be ""."""

    name: str
    prompt: str
    negative_prompt: str


def load_styles() -> dict[str, Style]:
    """Style name -> `Style`, in the release's order."""
    text = resources.files("idportrait").joinpath("data/styles/consistentid_styles.json").read_text("utf-8")
    return {s["name"]: Style(s["name"], s["prompt"], s["negative_prompt"]) for s in json.loads(text)["styles"]}


STYLES = load_styles()
DEFAULT_STYLE = "Photographic (Default)"
NO_STYLE = "(No style)"


def apply_style(style: Style, prompt: str) -> tuple[str, str]:
    """(prompt, negative prompt): the template filled with ``prompt``; the style's negative prompt followed by the
    release demos' default negative prompt."""
    negative = ", ".join(part for part in (style.negative_prompt, DEFAULT_NEGATIVE_PROMPT) if part)
    return style.prompt.replace("{prompt}", prompt), negative
