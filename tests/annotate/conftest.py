from __future__ import annotations

from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def save_tiny_llava(out_dir: Path) -> Path:
    """A randomly initialised LLaVA-1.5-shaped model + processor, saved like ``llava-hf/llava-1.5-7b-hf``.

    Llama text model (1 layer, 16 d) over a 300-token byte-level BPE trained here on a few sentences, with
    ``<image>``; CLIP vision tower (2 layers, 16 d) at 28 px / patch 14, features from layer -2 without CLS.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["USER: describe this person. ASSISTANT: a woman with an oval face, two ears, eyes, a nose and a mouth."]
    bpe.train_from_iterator(corpus * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}),
        tokenizer=tokenizer,
        patch_size=14,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2, image_size=28,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            hidden_size=16, intermediate_size=32, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=1,
            vocab_size=len(tokenizer), max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=3,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=4,
        vision_feature_layer=-2,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def astronaut_photos(tmp_path_factory) -> Path:
    """Two face photos: scikit-image's astronaut and its mirror image (real photos shipped with a package)."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    photo = Image.fromarray(data.astronaut()).crop((120, 20, 320, 220))
    photo.save(root / "astronaut.png")
    photo.transpose(Image.FLIP_LEFT_RIGHT).save(root / "astronaut_mirror.png")
    return root
