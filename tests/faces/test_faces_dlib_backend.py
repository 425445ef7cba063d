"""The offline dlib backend on real photos: counts, boxes, keypoints and identity similarity."""

import io
import itertools
import sys

import numpy as np
import pytest
from faces_photos import astronaut, insightface_image, negatives
from PIL import Image, ImageOps

from idportrait.errors import ModelNotFoundError
from idportrait.faces import dlib_backend, get_face_analyzer
from idportrait.faces.dlib_backend import (
    MODEL_FILES,
    DlibBackend,
    dlib_model_file,
    dlib_models_dir,
    kps_from_5,
    kps_from_68,
)


@pytest.fixture(scope="module")
def analyzer():
    return get_face_analyzer("dlib")


@pytest.fixture(scope="module")
def astro_face(analyzer):
    return analyzer.largest_face(astronaut(), "astronaut")


def cosine(a, b) -> float:
    return float(a.normed_embedding @ b.normed_embedding)


def test_models_found_without_importing_the_package():
    folder = dlib_models_dir()
    assert all((folder / name).is_file() for name in MODEL_FILES.values() if name)
    assert "face_recognition_models" not in sys.modules


def test_only_the_model_files_in_use_must_exist(tmp_path, monkeypatch):
    (tmp_path / MODEL_FILES["5"]).write_bytes(b"x")
    monkeypatch.setattr(dlib_backend, "dlib_models_dir", lambda: tmp_path)
    assert dlib_model_file("5") == tmp_path / MODEL_FILES["5"]
    with pytest.raises(ModelNotFoundError, match=f"incomplete, missing {MODEL_FILES['68']}"):
        dlib_model_file("68")


def test_kps_from_68_picks_eye_centres_nose_tip_and_mouth_corners():
    points = np.arange(136, dtype=np.float32).reshape(68, 2)
    kps = kps_from_68(points)
    np.testing.assert_allclose(kps[0], points[36:42].mean(0))
    np.testing.assert_allclose(kps[1], points[42:48].mean(0))
    np.testing.assert_array_equal(kps[2:], points[[30, 48, 54]])


def test_astronaut_one_plausible_face(analyzer, astro_face):
    assert len(analyzer.detect(astronaut(), embed=False)) == 1
    x1, y1, x2, y2 = astro_face.bbox
    assert 150 < x1 < 200 and 50 < y1 < 100 and 70 < x2 - x1 < 120 and 70 < y2 - y1 < 120
    kps = astro_face.kps
    assert ((kps[:, 0] > x1) & (kps[:, 0] < x2) & (kps[:, 1] > y1) & (kps[:, 1] < y2)).all()
    assert kps[0, 0] < kps[2, 0] < kps[1, 0] and kps[3, 0] < kps[4, 0]  # image-left before image-right
    assert kps[:2, 1].max() < kps[2, 1] < kps[3:, 1].min()  # eyes above nose above mouth
    assert astro_face.embedding.shape == (128,) and astro_face.landmarks.shape == (68, 2)
    assert 0.5 < astro_face.score <= 1


def test_five_point_model_agrees_with_68(astro_face):
    backend = DlibBackend(landmarks="5")
    face = max(backend.detect(astronaut()), key=lambda f: f.area)
    eye_distance = np.linalg.norm(astro_face.kps[1] - astro_face.kps[0])
    assert np.abs(face.kps[:2] - astro_face.kps[:2]).max() < 0.1 * eye_distance
    assert np.abs(face.kps - astro_face.kps).max() < 0.35 * eye_distance  # nose base, estimated mouth
    assert face.landmarks is None
    assert kps_from_5(np.zeros((5, 2), np.float32)).shape == (5, 2)


def test_identity_similarity_ordering(analyzer, astro_face):
    photo = Image.fromarray(astronaut())
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=85)
    same = {
        "jpeg": analyzer.largest_face(Image.open(buf)),
        "mirrored": analyzer.largest_face(ImageOps.mirror(photo)),
        "cropped": analyzer.largest_face(photo.crop((130, 30, 310, 210)).resize((360, 360))),
    }
    identical = analyzer.largest_face(photo)
    assert cosine(astro_face, identical) == pytest.approx(1.0, abs=1e-6)
    others = [analyzer.largest_face(insightface_image("Tom_Hanks_54745.png"))]
    assert max(cosine(astro_face, o) for o in others) < min(cosine(astro_face, f) for f in same.values())
    for face in same.values():
        assert cosine(astro_face, face) > 0.98
        assert np.linalg.norm(face.embedding - astro_face.embedding) < 0.6  # dlib's same-person rule


@pytest.mark.slow
def test_group_photo_six_different_people(analyzer, astro_face):
    faces = analyzer.detect(insightface_image("t1.jpg"))
    assert len(faces) == 6
    assert all(60 < f.size < 160 for f in faces)
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    pair_sims = [cosine(a, b) for a, b in itertools.combinations(faces, 2)]
    assert max(pair_sims) < 0.95 and max(cosine(astro_face, f) for f in faces) < 0.95
    assert all(np.linalg.norm(a.embedding - b.embedding) > 0.6 for a, b in itertools.combinations(faces, 2))


def test_aligned_crop_and_negatives(analyzer):
    faces = analyzer.detect(insightface_image("Tom_Hanks_54745.png"), embed=False)
    assert len(faces) == 1 and faces[0].size > 60
    for name, photo in negatives().items():
        assert analyzer.detect(photo, embed=False) == [], name
