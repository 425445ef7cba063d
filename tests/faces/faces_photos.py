"""Real photos that ship inside installed packages (scikit-image data, insightface sample images)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image


def insightface_image(name: str) -> Image.Image:
    """``insightface/data/images/<name>`` (t1.jpg: 6 people; Tom_Hanks_54745.png: 112x112 aligned crop)."""
    folder = Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images"
    return Image.open(folder / name).convert("RGB")


def astronaut() -> np.ndarray:
    """512x512 RGB portrait (Eileen Collins), one face at about (175, 76)-(266, 167)."""
    return skimage.data.astronaut()


def negatives() -> dict[str, np.ndarray]:
    """Photos without faces: a coffee cup and a cat."""
    return {"coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea()}
