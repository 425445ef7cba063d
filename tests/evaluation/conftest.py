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

    from idportrait.tiny import clip_image_processor, clip_tokenizer_from_bpe

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
    """A real, offline face detector + recogniser for the tests: dlib HOG boxes and 128-d ResNet descriptors.

    Returns ``detect(image) -> list[Face]`` (largest first), the analyzer interface FaceSim takes. Key
    points are box-relative placeholders (FaceSim uses boxes and embeddings only).
    """
    import importlib.util

    import dlib

    from idportrait.faces.types import Face

    # the package's __init__ needs pkg_resources; only its data files are used
    models = Path(next(iter(importlib.util.find_spec("face_recognition_models").submodule_search_locations))) / "models"
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recogniser = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    canonical = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32)

    def detect(image: Image.Image) -> list[Face]:
        rgb = np.asarray(image.convert("RGB"))
        rects, scores, _ = detector.run(rgb, 1)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32)
            size = box[2:] - box[:2]
            embedding = np.array(recogniser.compute_face_descriptor(rgb, shapes(rgb, rect)), np.float32)
            faces.append(Face(bbox=box, kps=box[:2] + canonical * size, score=score, embedding=embedding))
        return sorted(faces, key=lambda f: (-f.area, -f.score))

    return detect
