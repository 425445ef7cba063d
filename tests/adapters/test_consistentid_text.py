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
from recipe import FIXTURES, FIXTURES_SDXL

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


def test_sdxl_release_format_joins_with_semicolon_and_ends_in_a_mouth(tokenizer):
    from idportrait.adapters.consistentid.text import SDXL_FORMAT

    regions = ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    fp = build_facial_prompt(tokenizer, "a man in a suit", regions, SDXL_FORMAT.caption, SDXL_FORMAT.joiner)
    marked = "The person has one face <|facial|>, two ears <|facial|>, two eyes <|facial|>, one nose <|facial|>, "
    assert fp.prompt_face == "a man in a suit; Detail:" + marked + "and a mouth <|facial|>,"
    words = [tokenizer.decode([fp.input_ids[p]]) for p in fp.class_token_positions]
    assert words == ["face", "ears", "eyes", "nose", "mouth"]

    long_prompt = "a man in a grey suit standing in a sunlit library with tall shelves and old books, " * 3
    fp = build_facial_prompt(tokenizer, long_prompt, regions, SDXL_FORMAT.caption, SDXL_FORMAT.joiner)
    assert fp.alternate_assembly_used
    assert fp.prompt_face == "; Detail:" + marked + "and a mouth <|facial|>, Caption:" + long_prompt
    assert len(fp.input_ids) == 77 and fp.input_ids[-1] != tokenizer.eos_token_id  # cut, no end token added back
    assert [tokenizer.decode([fp.input_ids[p]]) for p in fp.class_token_positions] == words


def test_tokenize_with_another_tokenizers_marker_keeps_its_pieces(tokenizer):
    """The release's SDXL tokenizer_2 knows <|image|> only: the first tokenizer's marker id removes nothing."""
    from transformers import CLIPTokenizer

    from idportrait.adapters.consistentid.text import tokenize_with_markers

    second = CLIPTokenizer.from_pretrained(FIXTURES_SDXL / "world" / "tokenizer_2")  # SDXL's: pads with "!"
    assert add_consistentid_tokens(second, facial=False) is None
    assert "<|facial|>" not in second.get_vocab()
    text = "a man; Detail:The person has one face <|facial|>,"
    ids, flagged = tokenize_with_markers(second, text, facial_id=tokenizer.convert_tokens_to_ids("<|facial|>"))
    pieces = second(text).input_ids
    assert flagged == [] and ids[: len(pieces)] == pieces and len(pieces) > len(tokenizer(text).input_ids)
    assert ids[len(pieces) :] == [second.convert_tokens_to_ids("!")] * (77 - len(pieces))  # its own pad token
