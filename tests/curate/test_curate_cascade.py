from __future__ import annotations

import dataclasses
import random
from importlib import resources

from idportrait.curate import cascade, reasons
from idportrait.curate.cascade import curate_batch, reference_decisions, text_stage
from idportrait.curate.config import PRESETS
from idportrait.curate.filters import FILTERS, TEXT_FILTERS, first_failure
from idportrait.curate.keywords import find_credit, find_person_keyword
from idportrait.curate.names import rare_name
from idportrait.curate.readers import list_shards, read_shard
from idportrait.curate.types import Sample


def _text_samples() -> list[Sample]:
    """The labelled language sample with random metadata sizes and LAION columns (seeded), plus edge cases."""
    text = (resources.files("idportrait") / "data" / "curate" / "lang_eval.tsv").read_text(encoding="utf-8")
    captions = [line.split("\t", 1)[1] for line in text.splitlines() if line and not line.startswith("#")]
    rng = random.Random(0)
    sides = [rng.choice([None, 256, 511, 512, 1024]) for _ in captions]
    extra = [
        "Taylor Swift at the Grammys",
        "Angela Merkel in Berlin, 2015",
        "a red car",
        "",
        "   ",
        "Crop_oktoberfest_old_couple_in_tracht.jpg",
        "Seattle night, fine art print by Jane Doe",
        "Starry Night Vincent Van Gogh Backpack",
        "Frida Kahlo Tote Bag Canvas",
        "Mexican pottery vase",
        "Salman Khan",
        "Рукавички дитячі зимові теплі Nike",
        "grey " * 240_000,
    ]
    columns = [
        {"language": rng.choice([None, None, "en", "de"]), "nsfw": rng.choice([None, "UNLIKELY", "NSFW"]), "punsafe": p}
        for p in rng.choices([None, 0.1, 0.6], k=len(captions))
    ]
    captions += extra
    sides += [None] * len(extra)
    columns += [{}] * len(extra)
    samples = []
    for i, (caption, side, laion) in enumerate(zip(captions, sides, columns, strict=True)):
        samples.append(
            Sample(
                f"s{i}",
                caption.strip() or None,
                width=side,
                height=side,
                load_error=None if caption.strip() else reasons.MISSING_CAPTION,
                **laion,
            )
        )
    return samples


def test_text_cascade_equals_every_filter_on_every_sample(dlib_cfg):
    samples = _text_samples()
    got = text_stage(samples, dlib_cfg)
    want = reference_decisions(samples, dlib_cfg, detect=None)
    assert got == want
    one_by_one = [first_failure(s, dlib_cfg, FILTERS[: len(TEXT_FILTERS) + 1]) for s in samples]
    assert got == one_by_one  # the pure filters, NER called per caption
    assert {d.reason for d in got} >= {
        None,
        "not_english",
        "no_person_in_caption",
        "low_resolution_metadata",
        "nsfw_tag",
        "unsafe_score",
        "caption_too_long",
    }
    assert {d.by for d in got if d.keep} >= {"keywords", "credit", "ner", "names"}  # the accepting step agrees too


def test_cascade_equals_reference_with_each_step_switched_off(dlib_cfg):
    samples = _text_samples()
    changes = (
        {"normalise": False},
        {"use_credit": False},
        {"use_ner": False},
        {"assume_language": "en"},
        {"use_fasttext": False},
        {"use_name_gazetteer": False},
        {"adjective_lists": ()},
        PRESETS["faceid6m"],
    )
    for change in changes:
        cfg = dataclasses.replace(dlib_cfg, **change)
        assert text_stage(samples, cfg) == reference_decisions(samples, cfg, detect=None), change


def test_ner_runs_only_on_captions_no_keyword_accepted(dlib_cfg, monkeypatch):
    seen: list[str] = []
    real = cascade.person_entities

    def counting(captions, *args, **kwargs):
        captions = list(captions)
        seen.extend(captions)
        return real(captions, *args, **kwargs)

    monkeypatch.setattr(cascade, "person_entities", counting)
    samples = _text_samples()
    decisions = text_stage(samples, dlib_cfg)
    assert seen, "some English captions need NER"
    lists = dlib_cfg.keyword_lists, dlib_cfg.adjective_lists
    assert all(find_person_keyword(c, *lists) is None and not find_credit(c) and not rare_name(c) for c in seen)
    ner_candidates = [s for s in samples if s.caption in seen]
    assert all(s.caption and (s.width is None or s.width >= 512) for s in ner_candidates)
    assert len(seen) < len([d for d in decisions if d.keep or d.reason == "no_person_in_caption"])
    taylor = next(d for s, d in zip(samples, decisions, strict=True) if s.caption == "Taylor Swift at the Grammys")
    assert "Taylor Swift at the Grammys" in seen and taylor.keep


def test_full_cascade_equals_reference_on_the_bundled_sample(sample_inputs, dlib_cfg, dlib_detect):
    calls = []

    def counting_detect(images):
        calls.extend(image.shape for image in images)
        return dlib_detect(images)

    for shard in list_shards([str(sample_inputs)]):
        got = curate_batch(list(read_shard(shard)), dlib_cfg, counting_detect)
        want = reference_decisions(list(read_shard(shard)), dlib_cfg, dlib_detect)
        assert got == want, shard.name
    assert calls and all(min(shape[:2]) >= 512 for shape in calls)  # detector only sees survivors


def test_text_stage_is_linear_in_caption_length(dlib_cfg):
    """1.2 M-character captions (each shape once hit a quadratic regex) take a blink, not hours."""
    cfg = dataclasses.replace(dlib_cfg, max_caption_chars=2_000_000)
    n = 1_200_000
    captions = [
        "x" * n,
        "www." + "x" * n,
        "<a" * (n // 2),
        "grey " * (n // 5),
        "by jane, " * (n // 9),
        "aB." * (n // 3),
    ]
    decisions = text_stage([Sample(f"k{i}", c) for i, c in enumerate(captions)], cfg)
    assert [d.reason for d in decisions[:3]] == ["no_person_in_caption"] * 3
    assert decisions[4].by == "credit"  # the prefix every step reads still ends in a credit line
