"""The insightface backend's real loading/detection path, on tiny ONNX packs built by the tests.

insightface's model-zoo router loads the fake SCRFD/ArcFace files (see faces_fake_packs.py), so this
covers the model-dir checks, provider selection, RGB->BGR, largest-face order, the 112 norm_crop
feeding the recognizer and raw vs normed embeddings. Accuracy of the real buffalo_l/antelopev2
weights is not covered here (they cannot be downloaded in tests).
"""

import warnings

import numpy as np
import pytest
from faces_fake_packs import expected_embedding, write_fake_pack

from idportrait.errors import CheckpointError, ModelNotFoundError
from idportrait.faces import get_face_analyzer, norm_crop
from idportrait.faces.insightface_backend import PACKS, onnx_providers, resolve_model_dir


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    write_fake_pack(root / "buffalo_l", "buffalo_l")
    return root


@pytest.fixture(scope="module")
def analyzer(pack_root):
    return get_face_analyzer("insightface:buffalo_l", model_dir=pack_root)


def _two_faces() -> np.ndarray:
    """640x640 RGB: a small, confident "face" (red 8x8 cell) and a big, weaker one (green 32x32 cell)."""
    image = np.zeros((640, 640, 3), np.uint8)
    image[96:104, 200:208] = (255, 0, 0)
    image[320:352, 384:416] = (0, 180, 0)
    return image


def test_detects_in_rgb_largest_first_with_raw_embeddings(analyzer):
    faces = analyzer.detect(_two_faces())
    assert [f.bbox.tolist() for f in faces] == [[320, 256, 448, 384], [184, 80, 216, 112]]
    assert faces[0].score < faces[1].score  # order is by area, not by detector score
    np.testing.assert_allclose(faces[1].kps[0], [200 - 0.7 * 8, 96 - 0.4 * 8], atol=1e-4)
    for face in faces:
        expected = expected_embedding(norm_crop(_two_faces(), face.kps, 112))
        np.testing.assert_allclose(face.embedding, expected, rtol=1e-4, atol=1e-4)
        assert abs(np.linalg.norm(face.embedding) - 1) > 0.5  # raw, not normalised
        np.testing.assert_allclose(np.linalg.norm(face.normed_embedding), 1, rtol=1e-6)
    assert analyzer.largest_face(_two_faces(), "two.png").bbox.tolist() == [320, 256, 448, 384]


def test_image_is_converted_to_bgr_for_insightface(analyzer):
    swapped = np.ascontiguousarray(_two_faces()[:, :, ::-1])  # what feeding RGB as BGR would look like
    boxes = [f.bbox.tolist() for f in analyzer.detect(swapped, embed=False)]
    assert boxes == [[320, 256, 448, 384]]  # the red face is only found when channels are right


def test_det_size_rescales_boxes(pack_root):
    small = get_face_analyzer("insightface:buffalo_l", model_dir=pack_root, det_size=320)
    image = np.zeros((640, 640, 3), np.uint8)
    image[320:384, 384:448] = (0, 180, 0)  # one stride-32 cell of the half-size detector input
    faces = small.detect(image, embed=False)
    assert [f.bbox.tolist() for f in faces] == [[256, 192, 512, 448]]
    assert faces[0].embedding is None


@pytest.mark.parametrize("layout", ["pack_dir", "root_with_pack", "insightface_root", "nested_zip"])
def test_model_dir_layouts(tmp_path, layout):
    target = {
        "pack_dir": tmp_path,
        "root_with_pack": tmp_path / "antelopev2",
        "insightface_root": tmp_path / "models" / "antelopev2",
        "nested_zip": tmp_path / "antelopev2" / "antelopev2",
    }[layout]
    write_fake_pack(target, "antelopev2")
    assert resolve_model_dir("antelopev2", tmp_path) == target


def test_missing_pack_error_names_the_expected_files_on_one_line(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model_dir("buffalo_l", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for name in (PACKS["buffalo_l"].detector, PACKS["buffalo_l"].recognizer, "readme.txt", str(tmp_path / "buffalo_l")):
        assert name in message
    with pytest.raises(ModelNotFoundError, match="unknown insightface pack"):
        resolve_model_dir("buffalo_xl", tmp_path)


def test_placeholder_and_misrouted_files_are_named(tmp_path):
    folder = write_fake_pack(tmp_path / "buffalo_l")
    (folder / "w600k_r50.onnx").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(CheckpointError, match=r"w600k_r50\.onnx: is a .*Git LFS pointer"):
        resolve_model_dir("buffalo_l", folder)

    folder = write_fake_pack(tmp_path / "swapped")
    (folder / "det_10g.onnx").write_bytes((folder / "w600k_r50.onnx").read_bytes())
    with pytest.raises(CheckpointError, match=r"det_10g\.onnx: expected a detection model, .* as recognition"):
        get_face_analyzer("insightface:buffalo_l", model_dir=folder)

    folder = write_fake_pack(tmp_path / "corrupt")
    (folder / "w600k_r50.onnx").write_bytes(b"\x08" * 4096)
    with pytest.raises(CheckpointError, match=r"w600k_r50\.onnx: onnxruntime could not load it"):
        get_face_analyzer("insightface:buffalo_l", model_dir=folder)


def test_providers_cpu_and_clear_cuda_fallback(monkeypatch):
    import onnxruntime

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert onnx_providers("auto") == ["CPUExecutionProvider"]
    with pytest.warns(RuntimeWarning, match="no CUDAExecutionProvider.*run on CPU"):
        assert onnx_providers("cuda") == ["CPUExecutionProvider"]
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert onnx_providers("auto")[0] == ("CUDAExecutionProvider", {"device_id": 0})
        assert onnx_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]


def test_a_gpu_without_onnxruntime_cuda_runs_the_pack_in_torch(monkeypatch, pack_root):
    import onnxruntime
    import torch

    from idportrait.faces import insightface_torch
    from idportrait.faces.insightface_backend import insightface_runtime

    assert insightface_runtime("cuda:1", ["CPUExecutionProvider"]) == "torch"
    assert insightface_runtime("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "onnxruntime"
    assert insightface_runtime("cpu", ["CPUExecutionProvider"]) == "onnxruntime"

    built = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(insightface_torch, "InsightFaceTorchBackend", lambda pack, **kw: built.update(pack=pack, **kw))
    analyzer = get_face_analyzer("insightface:buffalo_l", model_dir=pack_root, device="cuda")
    assert analyzer.name == "insightface-torch:buffalo_l"
    assert built["pack"] == "buffalo_l" and built["device"] == "cuda"
    assert get_face_analyzer("insightface:buffalo_l", model_dir=pack_root, device="cpu").name == "insightface:buffalo_l"


def test_threads_bound_each_onnxruntime_session(pack_root):
    analyzer = get_face_analyzer("insightface:buffalo_l", model_dir=pack_root, threads=1)
    for model in (analyzer.backend.detector, analyzer.backend.recognizer):
        options = model.session.get_session_options()
        assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    image = _two_faces()
    assert [f.bbox.tolist() for f in analyzer.detect(image)] == [
        f.bbox.tolist() for f in get_face_analyzer("insightface:buffalo_l", model_dir=pack_root).detect(image)
    ]
