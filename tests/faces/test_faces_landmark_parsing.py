import numpy as np
import pytest
from faces_photos import astronaut

from idportrait.errors import NoFaceError
from idportrait.faces import Face, get_face_analyzer, get_face_parser, region_images
from idportrait.faces.labels import CLASS_IDS
from idportrait.faces.landmark_parsing import box_iou, landmark_labels


@pytest.fixture(scope="module")
def face():
    return get_face_analyzer("dlib").largest_face(astronaut())


def test_astronaut_regions(face):
    parsing = get_face_parser("landmarks").parse(astronaut(), face)
    assert parsing.labels.shape == (512, 512)
    assert list(parsing.regions) == ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    regions = parsing.regions
    for name in ("Left_Eye", "Nose", "Upper_Lip"):
        assert regions[name].any() and not (regions[name] & ~regions["Face"]).any(), name
    assert not (regions["Left_Ear"] & regions["Face"]).any()
    x, y = np.round(face.kps).astype(int).T
    assert regions["Left_Eye"][y[0], x[0]] and regions["Nose"][y[2] - 2, x[2]]
    assert parsing.labels[y[1], x[1]] == CLASS_IDS["Right_Eye"]
    x1, y1, x2, y2 = face.bbox
    assert 0.5 < regions["Face"].sum() / ((x2 - x1) * (y2 - y1)) < 1.5
    assert (parsing.person_mask == (parsing.labels != 0)).all()
    images = region_images(astronaut(), parsing)
    assert len(images) == 5 and images[0].size == (512, 512)


def test_parser_finds_the_face_itself_and_reports_none(face):
    parser = get_face_parser("landmarks")
    np.testing.assert_array_equal(parser.parse(astronaut()).labels, parser.parse(astronaut(), face).labels)
    with pytest.raises(NoFaceError, match="no face found"):
        parser.parse(np.zeros((64, 64, 3), np.uint8))


def test_ear_on_the_far_side_is_hidden(face):
    turned = face.landmarks.copy()
    turned[27:36, 0] -= 0.8 * (turned[30, 0] - turned[0, 0])  # nose pushed towards the image-left jaw edge
    labels = landmark_labels((512, 512), turned)
    assert not (labels == CLASS_IDS["Left_Ear"]).any()
    assert (labels == CLASS_IDS["Right_Ear"]).any()


def test_face_from_another_backend_is_matched_or_predicted_in_its_box(face):
    parser = get_face_parser("landmarks")
    reference = parser.parse(astronaut(), face).labels
    # an insightface-like box (taller, no landmarks) around the same face
    shifted = Face(bbox=face.bbox + np.array([-6, -10, 6, 4], np.float32), kps=face.kps, score=0.9)
    np.testing.assert_array_equal(parser.parse(astronaut(), shifted).labels, reference)

    only_box = parser._backend.landmarks_in_box(astronaut(), face.bbox)
    np.testing.assert_allclose(only_box.landmarks, face.landmarks, atol=1)
    far = Face(bbox=[400, 400, 480, 480], kps=np.zeros((5, 2)), score=0.9)  # no dlib face there
    assert parser.parse(astronaut(), far).labels.shape == (512, 512)


def test_box_iou():
    assert box_iou(np.array([0, 0, 2, 2]), np.array([1, 1, 3, 3])) == pytest.approx(1 / 7)
    assert box_iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0
