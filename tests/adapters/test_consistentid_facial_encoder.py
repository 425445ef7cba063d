"""Parity of FacialEncoder with the official module (fixture 2)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from recipe import load_manifest, recipe_state_dict

TOL = {"atol": 1e-5, "rtol": 1e-4}


@pytest.fixture(scope="module")
def fe_case(fixtures_dir):
    fe = FacialEncoder()
    fe.load_state_dict(recipe_state_dict("facial_encoder_manifest.json"), strict=True)
    inputs = load_file(fixtures_dir / "facial_encoder_inputs.safetensors")
    expected = load_file(fixtures_dir / "facial_encoder_expected.safetensors")
    return fe.eval(), inputs, expected


def test_state_dict_keys_match_manifest(fe_case):
    fe, _, _ = fe_case
    assert [(k, list(v.shape)) for k, v in fe.state_dict().items()] == load_manifest("facial_encoder_manifest.json")


def test_region_tokens_parity(fe_case, assert_parity):
    fe, inputs, expected = fe_case
    with torch.no_grad():
        tokens = fe.encode_regions(inputs["region_clip_hidden_states"])
    assert_parity("facial_encoder.intermediate_region_tokens", tokens, expected["intermediate_region_tokens"], **TOL)


def test_fuse_k5_parity(fe_case, assert_parity):
    fe, inputs, expected = fe_case
    prompt = inputs["prompt_embeds"]
    before = prompt.clone()
    with torch.no_grad():
        out = fe(
            prompt,
            inputs["region_clip_hidden_states"],
            inputs["class_tokens_mask_k5"].bool(),
            inputs["valid_id_mask_k5"].bool(),
        )
    assert torch.equal(prompt, before), "the input prompt embedding must not be modified"
    assert_parity("facial_encoder.out_k5", out, expected["out_k5"], **TOL)


def test_fuse_k3_parity_and_unflagged_unchanged(fe_case, assert_parity):
    fe, inputs, expected = fe_case
    regions = inputs["region_clip_hidden_states"].clone()
    regions[:, 3:] = 0
    mask = inputs["class_tokens_mask_k3"].bool()
    with torch.no_grad():
        out = fe(inputs["prompt_embeds"], regions, mask, inputs["valid_id_mask_k3"].bool())
    assert_parity("facial_encoder.out_k3", out, expected["out_k3"], **TOL)
    assert torch.equal(out[~mask], inputs["prompt_embeds"][~mask])


def test_cached_region_tokens_give_same_result(fe_case):
    fe, inputs, _ = fe_case
    masks = inputs["class_tokens_mask_k5"].bool(), inputs["valid_id_mask_k5"].bool()
    with torch.no_grad():
        tokens = fe.encode_regions(inputs["region_clip_hidden_states"])
        direct = fe(inputs["prompt_embeds"], inputs["region_clip_hidden_states"], *masks)
        cached = fe.fuse(inputs["prompt_embeds"], tokens, *masks)
    assert torch.equal(direct, cached)


def test_count_mismatch_raises(fe_case):
    fe, inputs, _ = fe_case
    tokens = torch.zeros(1, 5, 768)
    with pytest.raises(ValueError, match="5 flagged class tokens but 3 valid regions"):
        fe.fuse(
            inputs["prompt_embeds"], tokens, inputs["class_tokens_mask_k5"].bool(), inputs["valid_id_mask_k3"].bool()
        )


def test_sdxl_size_runs():
    fe = FacialEncoder(embed_dim=2048, depth=1)
    assert fe.fuse_module.mlp1.layernorm.weight.shape == (4096,)
    prompt = torch.randn(2, 77, 2048)
    mask = torch.zeros(2, 77, dtype=torch.bool)
    mask[0, 3], mask[1, [4, 9]] = True, True
    valid = torch.tensor([[True, False], [True, True]])
    out = fe(prompt, torch.randn(2, 2, 257, 1280), mask, valid)
    assert out.shape == (2, 77, 2048)
    assert torch.equal(out[~mask], prompt[~mask]) and not torch.allclose(out[mask], prompt[mask])
