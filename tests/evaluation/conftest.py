"""Tiny metric models (CLIP, DINO) saved in the hub folder layout, and real photos shipped in packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A 2-layer CLIPModel (32-d, ViT patch 32, projection 16) + tokenizer + image processor."""
    from transformers import CLIPConfig, CLIPModel

    from idportrait.pipelines.clip_processor import clip_image_processor
    from idportrait.tiny import clip_tokenizer_from_bpe

    out = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    text = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, vocab_size=49408)
    text |= dict(max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, patch_size=32)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(out)
    clip_tokenizer_from_bpe(out)
    clip_image_processor().save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_dino_dir(tmp_path_factory) -> Path:
    """A 2-layer ViT-S/16-shaped DINO (32-d) + the dino-vits16 image processor settings."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    out = tmp_path_factory.mktemp("tiny_dino")
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=224, patch_size=16
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(out)
    ViTImageProcessor(
        size={"height": 224, "width": 224},
        resample=2,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def facenet_weights(tmp_path_factory) -> Path:
    """Randomly initialised FaceNet saved like the release (``20180402-114759-vggface2.pt``, 8631 classes)."""
    from idportrait.evaluation.facenet import InceptionResnetV1

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("facenet") / "20180402-114759-vggface2.pt"
    torch.save(InceptionResnetV1(num_classes=8631).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """scikit-image's astronaut photo (Eileen Collins), 512x512 RGB."""
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def tom_hanks() -> Image.Image:
    """insightface's bundled sample portrait."""
    import insightface

    return Image.open(Path(insightface.__file__).parent / "data/images/Tom_Hanks_54745.png").convert("RGB")


@pytest.fixture(scope="session")
def noise_image() -> Image.Image:
    """A 256x256 uniform-noise RGB image (no face, no content)."""
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))


@pytest.fixture(scope="session")
def dlib_detect():
    """The offline face analyzer (dlib HOG + 128-d ResNet descriptors): ``detect(image) -> list[Face]``."""
    from idportrait.faces import get_face_analyzer

    return get_face_analyzer("dlib").detect
