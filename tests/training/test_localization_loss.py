"""Localization loss against the official values (fixture 6: cases A, B, C, D and D's per-layer values)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from idportrait.training.localization_loss import (
    localization_loss,
    localization_loss_from_token_maps,
    localization_loss_one_layer,
    token_maps_loss,
)
from recipe import FIXTURES

CASES = {c["name"]: c for c in json.loads((FIXTURES / "loss_cases.json").read_text())}


@pytest.fixture(scope="module")
def inputs():
    return load_file(FIXTURES / "loss_inputs.safetensors")


def case_inputs(inputs, name):
    return inputs[f"{name}.segmaps_uint8"].float(), inputs[f"{name}.token_idx"], inputs[f"{name}.token_idx_mask"].bool()


def assert_loss(name: str, actual: torch.Tensor, expected: float) -> None:
    diff = abs(actual.item() - expected)
    assert diff <= 1e-6 + 1e-4 * abs(expected), f"{name}: {actual.item()} vs {expected} (abs diff {diff:.3e})"
    print(f"parity loss {name}: abs diff {diff:.3e}")


@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_one_layer_cases(inputs, name):
    case = CASES[name]
    src = case.get("inputs_from", name)
    segmaps, idx, mask = case_inputs(inputs, src)
    loss = localization_loss_one_layer(
        inputs[f"{src}.attention_probs"], segmaps, idx, mask, normalize=case["normalize"]
    )
    assert_loss(name, loss, case["expected_loss_fp32"])


def test_multi_layer_case_d_and_per_layer(inputs):
    case = CASES["D"]
    segmaps, idx, mask = case_inputs(inputs, "D")
    layers = {name: inputs[f"D.layer.{name}"] for name in case["layer_order"]}
    for name, probs in layers.items():
        assert_loss(
            f"D.{name}", localization_loss_one_layer(probs, segmaps, idx, mask), case["per_layer_expected_fp32"][name]
        )
    assert_loss("D", localization_loss(layers, segmaps, idx, mask), case["expected_loss_fp32"])


def test_gathered_maps_give_the_same_loss(inputs):
    case = CASES["D"]
    segmaps, idx, mask = case_inputs(inputs, "D")
    maps = {}
    for name in case["layer_order"]:
        probs = inputs[f"D.layer.{name}"]
        b, k = idx.shape
        full = probs.view(b, -1, *probs.shape[1:])
        maps[name] = full.gather(3, idx.view(b, 1, 1, k).expand(b, full.shape[1], full.shape[2], k))
    assert_loss("D.gathered", localization_loss_from_token_maps(maps, segmaps, mask), case["expected_loss_fp32"])


def test_loss_prefers_attention_inside_the_region_and_ignores_padded_tokens():
    mask_map = torch.zeros(1, 2, 8, 8)
    mask_map[0, 0, :4] = 1
    inside = torch.zeros(1, 1, 64, 2)
    inside[0, 0, :32, 0] = 1 / 32
    outside = torch.zeros(1, 1, 64, 2)
    outside[0, 0, 32:, 0] = 1 / 32
    valid = torch.tensor([[True, False]])
    assert token_maps_loss(inside, mask_map, valid) < 0 < token_maps_loss(outside, mask_map, valid)
    noisy = outside.clone()
    noisy[..., 1] = torch.rand(64)
    assert torch.equal(token_maps_loss(noisy, mask_map, valid), token_maps_loss(outside, mask_map, valid))
    with pytest.raises(ValueError, match="square latent"):
        token_maps_loss(torch.zeros(1, 1, 60, 2), mask_map, valid)
