from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from idportrait.curate import reasons
from idportrait.curate.config import CurateConfig
from idportrait.curate.filters import (
    FILTERS,
    TEXT_FILTERS,
    confident_faces,
    filter_caption_length,
    filter_face_count,
    filter_face_size,
    filter_image_resolution,
    filter_language,
    filter_metadata_resolution,
    filter_nsfw_tag,
    filter_person_caption,
    filter_person_credit,
    filter_readable,
    filter_unsafe_score,
    filter_watermark_score,
    first_failure,
    largest_face_ratio,
)
from idportrait.curate.sample import sample_image_array
from idportrait.curate.types import Sample
from idportrait.faces.types import Face

CFG = CurateConfig()


def face(x1, y1, x2, y2, score=0.9) -> Face:
    return Face(bbox=[x1, y1, x2, y2], kps=np.zeros((5, 2)), score=score)


def image_sample(h=600, w=800, faces=None) -> Sample:
    return Sample("k", "a man", image=np.zeros((h, w, 3), np.uint8), faces=faces)


def test_every_filter_returns_a_named_reason_or_keep():
    bad = Sample("k", None, width=10, height=10, load_error=reasons.MISSING_CAPTION)
    for check in FILTERS:
        decision = check(bad, CFG)
        assert decision.keep or decision.reason in reasons.ORDER


def test_readable_and_metadata_resolution():
    assert filter_readable(Sample("k", None, load_error=reasons.CAPTION_NOT_UTF8), CFG).reason == "caption_not_utf8"
    assert filter_readable(Sample("k", "x"), CFG).keep
    assert filter_metadata_resolution(Sample("k", "x", width=1024, height=511), CFG).reason == "low_resolution_metadata"
    assert filter_metadata_resolution(Sample("k", "x", width=512, height=512), CFG).keep
    assert filter_metadata_resolution(Sample("k", "x", width=None, height=300), CFG).keep  # unknown: decode decides
    assert filter_metadata_resolution(Sample("k", "x", width=300, height=300), CurateConfig(min_side=256)).keep


def test_language_and_person_caption():
    assert filter_language(Sample("k", "Portrait of a young woman smiling"), CFG).keep
    assert filter_language(Sample("k", "Porträt einer jungen Frau mit roten Haaren"), CFG).reason == "not_english"
    assert filter_language(Sample("k", None), CFG).reason == "missing_caption"
    assert filter_person_caption(Sample("k", "Three firefighters at work"), CFG).keep
    assert filter_person_caption(Sample("k", "Red leather handbag with a gold chain"), CFG).reason == (
        "no_person_in_caption"
    )


def test_ner_catches_names_the_keyword_lists_miss():
    caption = Sample("k", "Taylor Swift at the Grammys")
    assert filter_person_caption(caption, CFG).keep
    assert not filter_person_caption(caption, dataclasses.replace(CFG, use_ner=False)).keep


def test_decoded_resolution_is_confirmed():
    assert filter_image_resolution(image_sample(600, 800), CFG).keep
    assert filter_image_resolution(image_sample(511, 800), CFG).reason == "low_resolution"
    assert filter_image_resolution(Sample("k", "x"), CFG).reason == "broken_image"
    assert filter_image_resolution(Sample("k", "x", fetch_error=reasons.DOWNLOAD_FAILED), CFG).reason == (
        "download_failed"
    )


def test_face_ratio_is_largest_clipped_bbox_over_image_area():
    faces = [face(0, 0, 100, 100), face(-50, -50, 150, 250)]  # second: clipped to 150 x 250
    assert largest_face_ratio(faces, 400, 500) == pytest.approx(150 * 250 / (400 * 500))
    assert largest_face_ratio([], 400, 500) == 0.0


def test_face_count_and_size_with_score_threshold():
    weak = face(0, 0, 300, 300, score=0.2)
    kept = confident_faces([face(0, 0, 10, 10), weak, face(0, 0, 20, 20, score=0.6)], 0.5)
    assert [f.area for f in kept] == [400, 100]  # weak one ignored, largest first
    assert filter_face_count(image_sample(faces=[]), CFG).reason == "no_face"
    assert filter_face_count(image_sample(faces=[weak]), CFG).reason == "no_face"
    assert filter_face_count(image_sample(faces=[face(0, 0, 150, 150)] * 3), CFG).keep
    assert filter_face_count(image_sample(faces=[face(0, 0, 150, 150)] * 4), CFG).reason == "too_many_faces"
    # 600 x 800 image: 4 % = 19200 px².
    assert filter_face_size(image_sample(faces=[face(0, 0, 140, 140)]), CFG).keep  # 19600
    assert filter_face_size(image_sample(faces=[face(0, 0, 138, 138), weak]), CFG).reason == "face_too_small"


@functools.cache
def _detections(photo: str) -> tuple[np.ndarray, list[Face]]:
    from idportrait.curate.detect import make_detector

    image = sample_image_array(photo)
    return image, make_detector("dlib")([image])[0]


@pytest.mark.parametrize(
    ("photo", "cfg", "reason"),
    [
        ("astronaut", CurateConfig(), "face_too_small"),  # face ~3.2-3.4 % of the frame
        ("astronaut", CurateConfig(min_face_ratio=0.03), None),
        ("astronaut_crop", CurateConfig(), None),
        ("group", CurateConfig(), "too_many_faces"),  # insightface t1.jpg, six faces
        ("group", CurateConfig(max_faces=6, min_face_ratio=0.01), None),
        ("coffee", CurateConfig(), "no_face"),
    ],
)
def test_face_filters_on_real_photos(photo, cfg, reason):
    image, faces = _detections(photo)
    sample = Sample("k", "a person", image=image, faces=faces)
    decision = filter_face_count(sample, cfg)
    if decision.keep:
        decision = filter_face_size(sample, cfg)
    assert decision.reason == reason


def test_md_ner_finds_the_person_in_a_portrait_caption():
    from idportrait.curate.ner import person_entities

    assert person_entities(["Portrait of Taylor Swift at the Grammys", "A red sports car"]) == [["Taylor Swift"], []]


@pytest.mark.slow
def test_trimmed_ner_pipeline_agrees_with_the_full_one():
    import spacy

    from idportrait.curate.ner import default_ner_model_path, person_entities

    captions = [
        "Portrait of Taylor Swift at the Grammys",
        "Barack Obama and Angela Merkel meet in Berlin",
        "emma watson smiling",
        "Leonardo DiCaprio, Kate Winslet in Titanic (1997)",
        "Red leather handbag",
        "Tom Hanks attends the premiere of his new film in Los Angeles",
    ]
    full = spacy.load(default_ner_model_path())
    assert person_entities(captions) == [[e.text for e in full(c).ents if e.label_ == "PERSON"] for c in captions]


def test_laion_safety_columns_drop_first_under_named_reasons():
    foreign = "Porträt einer jungen Frau mit roten Haaren"  # would be not_english: the free checks come first
    assert first_failure(Sample("k", foreign, nsfw="NSFW"), CFG, TEXT_FILTERS).reason == "nsfw_tag"
    assert first_failure(Sample("k", foreign, punsafe=0.5), CFG, TEXT_FILTERS).reason == "unsafe_score"
    assert first_failure(Sample("k", foreign, nsfw="UNLIKELY", punsafe=0.49), CFG, TEXT_FILTERS).reason == "not_english"
    assert filter_nsfw_tag(Sample("k", "x", nsfw="UNSURE"), CFG).keep
    assert not filter_nsfw_tag(
        Sample("k", "x", nsfw="UNSURE"), dataclasses.replace(CFG, drop_nsfw=("NSFW", "UNSURE"))
    ).keep
    assert filter_unsafe_score(Sample("k", "x", punsafe=0.9), dataclasses.replace(CFG, max_punsafe=None)).keep
    assert filter_watermark_score(Sample("k", "x", pwatermark=0.99), CFG).keep  # off by default
    marked = dataclasses.replace(CFG, max_pwatermark=0.8)
    assert filter_watermark_score(Sample("k", "x", pwatermark=0.8), marked).reason == "watermark_score"
    assert filter_watermark_score(Sample("k", "x"), marked).keep  # no column: nothing to judge


def test_over_long_captions_are_dropped_before_any_model():
    long = Sample("k", "grey " * 240_000)  # 1.2 M characters, no person word
    assert filter_caption_length(long, CFG).reason == "caption_too_long"
    assert first_failure(long, CFG, TEXT_FILTERS).reason == "caption_too_long"
    assert filter_caption_length(Sample("k", "x" * CFG.max_caption_chars), CFG).keep


def test_ner_sees_a_bounded_text():
    from idportrait.curate.ner import MAX_NER_CHARS, person_entities

    (entities,) = person_entities(["Taylor Swift at the Grammys. " + "grey " * 240_000])  # no E088 error
    assert "Taylor Swift" in entities and MAX_NER_CHARS < 1_000_000  # spaCy's nlp.max_length


def test_credit_line_names_the_maker():
    assert filter_person_credit(Sample("k", "Seattle at night, fine art print by Jane Doe"), CFG).by == "credit"
    assert filter_person_credit(Sample("k", "Tavern Brawl by velinov"), CFG).keep
    assert not filter_person_credit(Sample("k", "Stand by the sea"), CFG).keep
    assert not filter_person_credit(Sample("k", "Print by Jane Doe"), dataclasses.replace(CFG, use_credit=False)).keep


def test_person_steps_name_what_accepted():
    assert filter_person_caption(Sample("k", "Crop_oktoberfest_old_couple_in_tracht"), CFG).by == "keywords"
    off = dataclasses.replace(CFG, normalise=False, use_ner=False)
    assert not filter_person_caption(Sample("k", "Crop_oktoberfest_old_couple_in_tracht"), off).keep


def test_faceid6m_preset_is_the_papers_keyword_and_ner_rule():
    from idportrait.curate.config import PRESETS
    from idportrait.curate.keywords import find_person_keyword
    from idportrait.curate.ner import person_entities

    paper = dataclasses.replace(CFG, **PRESETS["faceid6m"])
    captions = [
        "Mexican pottery vase",  # any keyword use counts in the paper's rule
        "Crop_oktoberfest_old_couple_in_tracht",  # the caption as written: no normalisation
        "Seattle at night, fine art print by Jane Doe",
        "Taylor Swift at the Grammys",
        "benedict cumberbatch likes to get cheeky",
        "Red leather handbag",
    ]
    want = [
        bool(find_person_keyword(c, CFG.keyword_lists) or ents)
        for c, ents in zip(captions, person_entities(captions), strict=True)
    ]
    assert [filter_person_caption(Sample("k", c), paper).keep for c in captions] == want
    assert want[0] and not filter_person_caption(Sample("k", captions[0]), CFG).keep
