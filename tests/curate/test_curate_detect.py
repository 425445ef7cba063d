"""Batched face detection in curation: the same faces as one image at a time, whatever the batch size.

insightface runs on tiny ONNX stand-ins of the antelopev2 pack (tests/faces/faces_fake_packs.py) through its
real model-zoo loading path: a red 8x8 cell is a small confident face, a green 32x32 cell a larger one.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from faces.faces_fake_packs import write_fake_pack
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import make_detector
from idportrait.curate.options import StageOptions
from idportrait.curate.runner import run_local
from idportrait.faces import get_face_analyzer


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    write_fake_pack(root / "antelopev2", "antelopev2")
    return root


def _photos() -> list[np.ndarray]:
    """Photos of several sizes with 0, 1 or 2 "faces" (coloured cells) at seeded places."""
    rng = np.random.default_rng(0)
    photos = []
    for i, (h, w) in enumerate([(640, 640), (512, 768), (900, 600), (640, 640), (1024, 512)]):
        image = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
        for _ in range(i % 3):
            y, x = int(rng.integers(0, h - 200)), int(rng.integers(0, w - 200))
            image[y : y + 160, x : x + 160] = (0, 200, 0)
        photos.append(image)
    return photos


def test_batch_detection_gives_the_faces_of_one_image_at_a_time(pack_root):
    photos = _photos()
    detect = make_detector("insightface:antelopev2", str(pack_root), "cpu")
    analyzer = get_face_analyzer("insightface:antelopev2", model_dir=pack_root)
    batched = detect(photos)
    one_by_one = [analyzer.detect(photo) for photo in photos]
    assert [len(faces) for faces in batched] == [len(faces) for faces in one_by_one]
    assert sum(len(faces) for faces in batched) >= 3
    for got, want in zip(batched, one_by_one, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.bbox, b.bbox)
            np.testing.assert_array_equal(a.kps, b.kps)
            np.testing.assert_array_equal(a.embedding, b.embedding)
            assert a.score == b.score


def test_outputs_do_not_depend_on_the_detection_batch_size(pack_root, tmp_path):
    rows = []
    for i, photo in enumerate(_photos()):
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format="PNG")
        rows.append({"key": f"k{i}", "caption": "Portrait of a woman", "png": buf.getvalue()})
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "s.parquet")
    cfg = CurateConfig(face_model_dir=str(pack_root), min_face_ratio=0.01, max_faces=20)
    outputs = []
    for batch in (1, 3):
        out = tmp_path / f"out{batch}"
        summary = run_local([str(tmp_path / "in")], str(out), cfg, options=StageOptions(detect_batch=batch))
        outputs.append(
            {p.name: p.read_bytes() for kind in ("shards", "index", "decisions") for p in (out / kind).glob("*")}
        )
    assert summary.kept >= 2
    assert outputs[0] == outputs[1]


def test_the_device_reaches_onnxruntime(pack_root):
    """--device cuda asks onnxruntime for its CUDA provider; a CPU-only build says so and stays on the CPU."""
    import warnings

    import onnxruntime

    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    make_detector.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detect = make_detector("insightface:antelopev2", str(pack_root), "cuda")
    first = detect.__self__.backend.providers[0]
    assert (first[0] if isinstance(first, tuple) else first) == (
        "CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider"
    )
    assert has_cuda or any("CUDAExecutionProvider" in str(w.message) for w in caught)
    photo = _photos()[1]
    assert len(detect([photo])[0]) == len(make_detector("insightface:antelopev2", str(pack_root), "cpu")([photo])[0])


def test_each_local_worker_gets_its_share_of_the_cores():
    from idportrait.curate.runner import worker_threads

    assert [worker_threads(n, 16) for n in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]
    assert worker_threads(2, None) == 1
