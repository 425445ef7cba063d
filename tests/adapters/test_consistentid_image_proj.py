"""Parity of the ID projector with the official ProjPlusModel (fixture 1)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from recipe import load_manifest, recipe_state_dict


@pytest.fixture(scope="module")
def image_proj_case(fixtures_dir):
    model = ProjPlusModel(cross_attention_dim=768, id_embeddings_dim=512, clip_embeddings_dim=1280, num_tokens=4)
    model.load_state_dict(recipe_state_dict("image_proj_manifest.json"), strict=True)
    inputs = load_file(fixtures_dir / "image_proj_inputs.safetensors")
    expected = load_file(fixtures_dir / "image_proj_expected.safetensors")
    return model.eval(), inputs, expected


def test_state_dict_keys_match_manifest(image_proj_case):
    model, _, _ = image_proj_case
    manifest = load_manifest("image_proj_manifest.json")
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == manifest


@pytest.mark.parametrize(
    ("name", "shortcut", "scale"),
    [
        ("out_shortcut_false", False, 1.0),
        ("out_shortcut_true_scale1", True, 1.0),
        ("out_shortcut_true_scale0p5", True, 0.5),
    ],
)
def test_image_proj_parity(image_proj_case, assert_parity, name, shortcut, scale):
    model, inputs, expected = image_proj_case
    with torch.no_grad():
        out = model(inputs["id_embeds"], inputs["clip_hidden_states"], shortcut=shortcut, scale=scale)
    assert out.shape == (2, 4, 768)
    assert_parity(name, out, expected[name], atol=1e-5, rtol=1e-4)


def test_image_proj_intermediate(image_proj_case, assert_parity):
    model, inputs, expected = image_proj_case
    with torch.no_grad():
        x = model.id_latents(inputs["id_embeds"])
    assert_parity("intermediate_x_after_proj_norm", x, expected["intermediate_x_after_proj_norm"], atol=1e-5, rtol=1e-4)


def test_image_proj_sdxl_size_runs():
    model = ProjPlusModel(cross_attention_dim=2048, depth=1)
    assert model.perceiver_resampler.layers[0][0].heads == 32
    out = model(torch.randn(1, 512), torch.randn(1, 257, 1280), shortcut=True)
    assert out.shape == (1, 4, 2048)
