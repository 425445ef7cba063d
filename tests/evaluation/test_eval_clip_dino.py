from __future__ import annotations

import numpy as np
import pytest
import torch

from idportrait.errors import ModelNotFoundError
from idportrait.evaluation.clip_score import clip_i, clip_t, load_clip
from idportrait.evaluation.dino import dino_similarity, load_dino


def test_clip_i_identical_images_are_maximal(tiny_clip_dir, astronaut, tom_hanks, noise_image):
    clip = load_clip(tiny_clip_dir)
    same = clip_i(clip, [astronaut, tom_hanks], [astronaut, tom_hanks])
    other = clip_i(clip, [astronaut, noise_image], [tom_hanks, astronaut])
    np.testing.assert_allclose(same, 100.0, atol=1e-3)
    assert np.all(other < 99.9)


def test_clip_t_matches_clip_model_logits(tiny_clip_dir, astronaut, tom_hanks):
    clip = load_clip(tiny_clip_dir)
    prompts = ["a woman in a spacesuit", "a man wearing a red hat"]
    scores = clip_t(clip, [astronaut, tom_hanks], prompts)
    tokens = clip.tokenizer(prompts, padding=True, return_tensors="pt")
    pixels = clip.processor(images=[astronaut, tom_hanks], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = clip.model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=pixels)
    expected = 100.0 * out.logits_per_image.diagonal() / clip.model.logit_scale.exp()
    np.testing.assert_allclose(scores, expected.detach().numpy(), rtol=1e-4)
    assert scores.shape == (2,)


def test_dino_identical_images_are_maximal(tiny_dino_dir, astronaut, tom_hanks, noise_image):
    dino = load_dino(tiny_dino_dir)
    assert dino.embed_images([astronaut]).shape == (1, 32)
    np.testing.assert_allclose(dino_similarity(dino, [astronaut], [astronaut]), 100.0, atol=1e-3)
    assert dino_similarity(dino, [noise_image], [tom_hanks])[0] < 99.9


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="could not load the DINO model"):
        load_dino(tmp_path / "nowhere")
