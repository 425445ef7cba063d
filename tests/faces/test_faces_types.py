import numpy as np

from idportrait.faces import Face, Parsing
from idportrait.faces.labels import CLASS_NAMES, NUM_CLASSES, REGION_LABELS, select_regions


def test_face_record_types_and_properties():
    face = Face(bbox=[10, 20, 50, 100], kps=np.arange(10), score=0.5, embedding=[3.0, 4.0])
    assert face.bbox.dtype == np.float32 and face.bbox.shape == (4,)
    assert face.kps.shape == (5, 2) and face.kps[1, 0] == 2
    assert face.area == 40 * 80
    assert face.size == 40
    np.testing.assert_allclose(face.normed_embedding, [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(face.embedding, [3.0, 4.0])  # raw embedding is kept
    assert Face(bbox=[5, 5, 1, 1], kps=np.zeros((5, 2)), score=1).area == 0
    assert Face(bbox=[0, 0, 1, 1], kps=np.zeros((5, 2)), score=1).normed_embedding is None


def test_parsing_record_shape():
    labels = np.zeros((4, 6), np.uint8)
    p = Parsing(labels=labels, regions={"Face": labels == 0}, person_mask=labels != 0)
    assert p.shape == (4, 6)


def test_label_facts_match_consistentid():
    assert NUM_CLASSES == len(CLASS_NAMES) == 19
    for name, label in REGION_LABELS.items():
        assert CLASS_NAMES[label] == name
    assert select_regions({0, 1, 4, 5, 7, 8, 10, 12, 13}) == ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    assert select_regions({1, 5, 10, 13}) == ["Face", "Right_Eye", "Nose", "Lower_Lip"]
    assert select_regions({0, 17}) == []
