"""The LLaVA captioner loads through from_pretrained (as llava-hf/llava-1.5-7b-hf would) and decodes greedily."""

from __future__ import annotations

import pytest
from PIL import Image

from idportrait.annotate.captioner import load_captioner
from idportrait.errors import ModelNotFoundError, UserError


def test_tiny_llava_captions_are_deterministic_and_prompt_dependent(tiny_llava):
    captioner = load_captioner(str(tiny_llava), max_new_tokens=12)
    image = Image.new("RGB", (40, 30), (200, 120, 90))
    first = captioner.caption(image, "Describe this person.")
    assert isinstance(first, str) and first
    assert captioner.caption(image, "Describe this person.") == first
    inputs = captioner.processor(
        images=image,
        text=captioner.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this person."}]}],
            add_generation_prompt=True,
        ),
        return_tensors="pt",
    )
    image_id = captioner.model.config.image_token_index
    assert int((inputs["input_ids"] == image_id).sum()) == 4  # 2x2 patches of the 28 px tower, CLS dropped


def test_missing_model_and_4bit_without_cuda_are_user_errors(tmp_path, tiny_llava):
    with pytest.raises(ModelNotFoundError, match="--vlm"):
        load_captioner(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="CUDA"):
        load_captioner(str(tiny_llava), load_in_4bit=True)
