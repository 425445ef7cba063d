"""The filter cascade as stage functions: text stage, then the image stages on what survived.

    samples --text_stage--> (readable, LAION safety columns, caption length, metadata size, language,
                             person: keywords, credit line, gazetteer names, NER on the rest,
                             NER on the sentence-cased caption for what NER rejected)
            --download_stage--> (image bytes from the url; `idportrait.curate.download`)
            --check_decoded--> (decode, decoded size; per sample)
            --detect_stage--> (batched face detection + embedding, face count/size)

`curate_batch` runs them one after the other on a batch; the streaming runners (`pipeline`,
`ray_runner`) run the same functions as separate stages that overlap.

Cheapest work first: NER only runs on captions no cheaper person step accepted, and nothing is
downloaded, decoded or detected for samples the text stage dropped. Each sample's decision is the
first failing filter in `filters.FILTERS` order, so it is identical to `reference_decisions`, which
runs every filter on every sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from idportrait.curate import reasons
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import BatchDetector
from idportrait.curate.download import DownloadConfig, Fetcher, download_stage, shared_fetcher
from idportrait.curate.filters import (
    CHEAP_PERSON_STEPS,
    IMAGE_FILTERS,
    TEXT_FILTERS,
    caption_text,
    filter_caption_length,
    filter_person_entities,
    filter_person_entities_recased,
    first_failure,
    needs_recasing,
    person_without_ner,
    sentence_case,
)
from idportrait.curate.ner import person_entities
from idportrait.curate.types import Decision, Sample
from idportrait.errors import ImageError
from idportrait.imageio import decode_image


def text_stage(samples: list[Sample], cfg: CurateConfig) -> list[Decision]:
    """Decisions of the text filters; NER runs (batched) only where no cheaper person step accepted.

    Records in ``sample.steps`` the rule that decided the language and the step that found the person.
    """
    decisions: list[Decision | None] = []
    need_ner: list[int] = []
    for i, sample in enumerate(samples):
        decision = first_failure(sample, cfg, TEXT_FILTERS)
        if decision.keep:
            sample.steps["language"] = decision.by.removeprefix("language:")
            decision = person_without_ner(sample, cfg)
            if not decision.keep and cfg.use_ner:
                need_ner.append(i)
                decision = None
        decisions.append(decision)
    if need_ner:
        texts = {i: caption_text(samples[i], cfg) for i in need_ner}
        entities = person_entities([texts[i] for i in need_ner])
        for i, ents in zip(need_ner, entities, strict=True):
            decisions[i] = filter_person_entities(samples[i], cfg, ents)
        need_recased = [i for i in need_ner if not decisions[i].keep and needs_recasing(texts[i])]
        need_recased = need_recased if cfg.use_ner_recased else []
        if need_recased:
            recased = person_entities([sentence_case(texts[i]) for i in need_recased])
            for i, ents in zip(need_recased, recased, strict=True):
                decisions[i] = filter_person_entities_recased(samples[i], cfg, ents)
    for sample, decision in zip(samples, decisions, strict=True):
        if decision.keep:
            sample.steps["person"] = decision.by
    return decisions


def decode_sample(sample: Sample) -> None:
    """Set ``sample.image`` (RGB uint8 [H, W, 3]) and ``decoded_size`` from its bytes; None when they do not decode."""
    if sample.image_bytes is None:
        return
    try:
        sample.image = np.asarray(decode_image(sample.image_bytes, name=sample.key))
    except ImageError:
        sample.image = None
    sample.decoded_size = None if sample.image is None else tuple(sample.image.shape[:2])


def check_decoded(sample: Sample, cfg: CurateConfig) -> Decision:
    """Decode the sample's bytes and confirm its size (the image filters before detection)."""
    decode_sample(sample)
    return first_failure(sample, cfg, IMAGE_FILTERS[:2])


def detect_stage(
    samples: list[Sample], decisions: list[Decision], cfg: CurateConfig, detect: BatchDetector
) -> list[Decision]:
    """Faces of the samples ``decisions`` still keep (one ``detect`` call), then the face filters.

    Returns the decisions, updated for those samples; the others are passed through.
    """
    todo = [i for i, d in enumerate(decisions) if d.keep]
    if not todo:
        return list(decisions)
    for i, faces in zip(todo, detect([samples[i].image for i in todo]), strict=True):
        samples[i].faces = faces
    decided = list(decisions)
    for i in todo:
        decided[i] = first_failure(samples[i], cfg, IMAGE_FILTERS[2:])
    return decided


def image_stage(
    samples: list[Sample], cfg: CurateConfig, detect: BatchDetector, fetcher: Fetcher | None = None
) -> list[Decision]:
    """Download, decode, confirm size, detect faces (only on images that passed the size check)."""
    download_stage(samples, fetcher or shared_fetcher(DownloadConfig()))
    decisions = [check_decoded(sample, cfg) for sample in samples]
    return detect_stage(samples, decisions, cfg, detect)


def curate_batch(
    samples: list[Sample], cfg: CurateConfig, detect: BatchDetector, fetcher: Fetcher | None = None
) -> list[Decision]:
    """The whole cascade: one decision per sample, in input order."""
    decisions = text_stage(samples, cfg)
    survivors = [i for i, d in enumerate(decisions) if d.keep]
    image_decisions = image_stage([samples[i] for i in survivors], cfg, detect, fetcher)
    for i, decision in zip(survivors, image_decisions, strict=True):
        decisions[i] = decision
    return decisions


def reference_decisions(
    samples: list[Sample],
    cfg: CurateConfig,
    detect: BatchDetector | None,
    entities_of: Callable[[list[str]], list[list[str]]] = person_entities,
) -> list[Decision]:
    """Every filter on every sample (NER on every caption, every image fetched, decoded, detected one at a time).

    The slow definition the cascade must agree with. ``detect=None`` stops after the text filters;
    ``entities_of`` maps captions to their PERSON entities (default: the batched tok2vec + ner pipeline).
    A caption over ``cfg.max_caption_chars`` is not given to NER (it is dropped before any model).
    """
    texts = [caption_text(s, cfg) if filter_caption_length(s, cfg).keep else "" for s in samples]
    entities = entities_of(texts) if cfg.use_ner else [[] for _ in samples]
    recased_texts = [sentence_case(t) if needs_recasing(t) else "" for t in texts]
    recased = entities_of(recased_texts) if cfg.use_ner_recased else [[] for _ in samples]
    person = []
    for sample, ents, ents_recased in zip(samples, entities, recased, strict=True):
        steps = [step(sample, cfg) for step in CHEAP_PERSON_STEPS]
        steps += [filter_person_entities(sample, cfg, ents), filter_person_entities_recased(sample, cfg, ents_recased)]
        person.append(next((d for d in steps if d.keep), Decision.drop(reasons.NO_PERSON_IN_CAPTION)))
    if detect is not None:
        download_stage(samples, shared_fetcher(DownloadConfig()))
        for sample in samples:
            decode_sample(sample)
            if sample.image is not None:
                (sample.faces,) = detect([sample.image])
    decisions = []
    for sample, person_decision in zip(samples, person, strict=True):
        verdicts = [f(sample, cfg) for f in TEXT_FILTERS]
        verdicts.append(person_decision)
        if detect is not None:
            verdicts += [f(sample, cfg) for f in IMAGE_FILTERS]
        decisions.append(next((v for v in verdicts if not v.keep), verdicts[-1]))
    return decisions
