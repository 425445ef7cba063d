"""ConsistentID prompt processing against every case of the text fixture (fixture 4)."""

from __future__ import annotations

import json

import pytest

from idportrait.adapters.consistentid.text import (
    FACIAL_CAPTION,
    add_consistentid_tokens,
    build_facial_prompt,
    mark_caption,
    remove_duplicate_keywords,
    token_regions,
)
from idportrait.faces.labels import REGION_LABELS, select_regions
from idportrait.tiny import clip_tokenizer_from_bpe
from recipe import FIXTURES

TEXT_FIXTURE = json.loads((FIXTURES / "text_cases.json").read_text())
CASES = TEXT_FIXTURE["cases"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    tok = clip_tokenizer_from_bpe(tmp_path_factory.mktemp("clip_tokenizer"))
    assert add_consistentid_tokens(tok) == 49409
    assert tok.convert_tokens_to_ids("<|image|>") == 49408
    return tok


def test_region_labels_match_fixture():
    assert TEXT_FIXTURE["label_values"] == REGION_LABELS


def test_tokenizer_known_ids(tokenizer):
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("case", CASES, ids=[f"case{c['case']}" for c in CASES])
def test_text_case(tokenizer, case):
    inp = case["input"]
    regions = select_regions([REGION_LABELS[name] for name in inp["present_regions"]])
    assert regions == case["region_dict_after_parsing"]
    fp = build_facial_prompt(tokenizer, inp["user_prompt"], regions, inp["caption"])
    assert fp.marked_caption == case["marked_caption"]
    assert fp.prompt_face == case["prompt_face"]
    assert fp.alternate_assembly_used == case["alternate_assembly_used"]
    assert fp.caption_too_long_fallback == case["caption_too_long_fallback"]
    assert fp.n_tokens_default_assembly == case["n_tokens_of_default_assembly_incl_markers_bos_eos"]
    assert fp.input_ids == case["input_ids"]
    assert fp.class_token_positions == case["class_token_positions"]
    assert len(fp.class_tokens_mask) == case["class_token_mask_len"]
    assert [i for i, f in enumerate(fp.class_tokens_mask) if f] == case["class_token_positions"]
    assert fp.facial_token_idx == case["facial_token_idx"]
    assert fp.facial_token_idx_mask == case["facial_token_idx_mask"]
    assert fp.regions == case["region_order"]
    assert fp.region_label_values == case["region_label_values"]
    assert (len(fp.regions) == len(fp.class_token_positions)) == case["n_regions_equals_n_class_tokens"]
    assert fp.prompt_text_only == case["prompt_text_only"]
    assert fp.text_only_input_ids == case["text_only_input_ids"]


def test_release_pairing_swaps_eye_and_ear():
    marked, regions = mark_caption(FACIAL_CAPTION, ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"])
    words = [w for w in ("face", "ears", "eyes", "nose", "mouth") if w in marked]
    assert marked.index("ears") < marked.index("eyes")
    assert dict(zip(words, token_regions(regions, 5), strict=True))["ears"] == "Left_Eye"


def test_remove_duplicate_keywords():
    assert remove_duplicate_keywords("Face, eyes; the FACE - eyes!") == "Face , eyes ; the   !"
