from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny SD1.5 base in the diffusers layout (its image_encoder/ doubles as the CLIP vision tower)."""
    from idportrait.tiny import save_tiny_sd15

    return save_tiny_sd15(tmp_path_factory.mktemp("tiny_base"))


class TemplateVLM:
    """Stands in for LLaVA in training tests: fixed captions that contain every facial class word."""

    name = "template"
    overall = "A woman in an orange space suit. She smiles at the camera in front of a flag."
    facial = "The woman in the image has an oval face, small ears, brown eyes, a straight nose, and a smiling mouth."

    def caption(self, image, prompt: str) -> str:
        from idportrait.annotate.prompts import FACIAL_PROMPT

        return self.facial if prompt == FACIAL_PROMPT else self.overall


def astronaut_variants(out_dir: Path, n: int) -> Path:
    """``n`` crops/flips of scikit-image's astronaut photo (a real face photo shipped with the package)."""
    from skimage import data

    out_dir.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(0)
    for i in range(n):
        size = int(rng.integers(300, 420))
        left, top = int(rng.integers(60, 512 - size + 1 - 60 + 60)), int(rng.integers(0, 512 - size + 1))
        left = min(left, 512 - size)
        crop = photo.crop((left, top, left + size, top + size))
        if i % 2:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(out_dir / f"astronaut_{i:02d}.png")
    return out_dir


def annotate_with_template(photos: Path, out: Path) -> Path:
    """Run the real annotation (dlib analyzer, landmark parser) with `TemplateVLM` captions."""
    from idportrait.annotate.annotate import annotate
    from idportrait.faces import get_face_analyzer, get_face_parser

    models = {"vlm": "template", "face_analyzer": "dlib", "face_parser": "landmarks"}
    annotate([photos], out, get_face_analyzer("dlib"), get_face_parser("landmarks"), TemplateVLM(), models)
    return out


@pytest.fixture(scope="session")
def fgid_folder(tmp_path_factory) -> Path:
    """An annotated FGID folder of 4 astronaut variants (128-d dlib embeddings, landmark parsing)."""
    root = tmp_path_factory.mktemp("fgid")
    return annotate_with_template(astronaut_variants(root / "photos", 4), root / "annotated")
