"""Benchmark prompt sets: ConsistentID's 45 evaluation prompts (shipped) and COCO-style caption files.

A prompt is a template with ``{class_word}`` (the papers' ``<class word>``), filled per identity
with "man", "woman", "person", ...; captions without the placeholder are used as they are.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from idportrait.errors import UserError

PLACEHOLDER = "{class_word}"
CONSISTENTID_SOURCE = "consistentid"


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt: its position in the set, its category and its template."""

    index: int
    category: str
    template: str

    def fill(self, class_word: str) -> str:
        """The prompt text for one identity, e.g. "a woman wearing a red hat"."""
        return self.template.replace(PLACEHOLDER, class_word)


def consistentid_prompts() -> list[Prompt]:
    """The 45 prompts of ConsistentID's Table 2 in 4 categories, in the paper's order."""
    text = resources.files("idportrait").joinpath("data/evaluation/consistentid_prompts.json").read_text("utf-8")
    return _from_categories(json.loads(text)["categories"])


def load_prompts(source: str | Path, limit: int | None = None, seed: int = 0) -> list[Prompt]:
    """Prompts from ``"consistentid"`` or a file.

    Files: our categorised JSON (``{"categories": {name: [template, ...]}}``), a COCO captions JSON
    (``{"annotations": [{"image_id", "caption"}, ...]}``, one caption per image, category "coco"), or a
    text file with one caption per line. ``limit`` keeps a seeded random subset of that many prompts,
    with their original indices.
    """
    prompts = consistentid_prompts() if str(source) == CONSISTENTID_SOURCE else _load_file(Path(source))
    if limit is not None and limit < len(prompts):
        kept = sorted(random.Random(seed).sample(range(len(prompts)), limit))
        prompts = [prompts[k] for k in kept]  # original indices: file names stay stable across limits
    return prompts


def _load_file(path: Path) -> list[Prompt]:
    if not path.is_file():
        raise UserError("prompt file not found", path)
    text = path.read_text("utf-8")
    if path.suffix.lower() != ".json":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        prompts = [Prompt(i, "captions", line) for i, line in enumerate(lines)]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"not valid JSON ({err})", path) from None
        if isinstance(data, dict) and isinstance(data.get("categories"), dict):
            prompts = _from_categories(data["categories"])
        elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
            prompts = _from_coco(data["annotations"])
        else:
            raise UserError('expected {"categories": {...}} or COCO captions {"annotations": [...]}', path)
    if not prompts:
        raise UserError("no prompts in file", path)
    return prompts


def _from_categories(categories: dict[str, list[str]]) -> list[Prompt]:
    templates = [(category, t) for category, items in categories.items() for t in items]
    return [Prompt(i, category, template) for i, (category, template) in enumerate(templates)]


def _from_coco(annotations: list[dict]) -> list[Prompt]:
    """First caption of each image, in image-id order (COCO has about five per image)."""
    first: dict[int, str] = {}
    for ann in annotations:
        first.setdefault(int(ann["image_id"]), " ".join(str(ann["caption"]).split()))
    return [Prompt(i, "coco", first[image_id]) for i, image_id in enumerate(sorted(first))]
