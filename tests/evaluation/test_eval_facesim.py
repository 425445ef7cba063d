from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from idportrait.errors import CheckpointError
from idportrait.evaluation.facenet import InceptionResnetV1, load_facenet
from idportrait.evaluation.facesim import arcface_embedding, cosine100, facenet_crop, facenet_embedding


def test_arcface_variant_identical_maximal_unrelated_lower(dlib_detect, astronaut, tom_hanks):
    ref = arcface_embedding(dlib_detect, astronaut)
    assert ref is not None and ref.shape == (128,)
    assert cosine100(ref, arcface_embedding(dlib_detect, astronaut)) == pytest.approx(100.0, abs=1e-4)
    assert cosine100(ref, arcface_embedding(dlib_detect, tom_hanks)) < 95.0


def test_no_face_gives_none_not_zero(dlib_detect, astronaut, noise_image):
    assert arcface_embedding(dlib_detect, noise_image) is None
    assert cosine100(arcface_embedding(dlib_detect, astronaut), None) is None


def test_facenet_variant_through_the_release_loader(facenet_weights, dlib_detect, astronaut, tom_hanks, noise_image):
    facenet = load_facenet(facenet_weights)
    ref = facenet_embedding(facenet, dlib_detect, astronaut)
    assert ref.shape == (512,) and np.linalg.norm(ref) == pytest.approx(1.0, abs=1e-5)
    assert cosine100(ref, facenet_embedding(facenet, dlib_detect, astronaut)) == pytest.approx(100.0, abs=1e-4)
    assert cosine100(ref, facenet_embedding(facenet, dlib_detect, tom_hanks)) < 99.999  # random weights: close
    assert facenet_embedding(facenet, dlib_detect, noise_image) is None


def test_facenet_loader_is_strict(tmp_path):
    state = InceptionResnetV1(num_classes=10).state_dict()
    del state["last_bn.running_mean"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not an InceptionResnetV1 state dict"):
        load_facenet(tmp_path / "bad.pt")


def test_facenet_crop_is_the_clipped_box(dlib_detect, astronaut):
    face = dlib_detect(astronaut)[0]
    crop = facenet_crop(astronaut, face)
    x1, y1, x2, y2 = face.bbox.astype(int)
    expected = np.asarray(astronaut.crop((x1, y1, x2, y2)).resize((160, 160), Image.BOX), np.float32)
    assert crop.shape == (160, 160, 3)
    assert np.abs(crop.astype(np.float32) - expected).mean() < 3.0
