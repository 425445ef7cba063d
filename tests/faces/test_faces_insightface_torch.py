"""The torch path of the insightface packs equals insightface (onnxruntime) on the same files.

Packs: SCRFD- and IResNet-shaped torch networks with random weights exported to ONNX (benchmarks/face_nets.py, the
stand-ins the device suite times) and the hand-built fake packs of faces_fake_packs.py. Both backends read the same
files; boxes, keypoints, scores and embeddings must agree to float tolerance, photo by photo and batched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from faces_fake_packs import write_fake_pack
from faces_photos import astronaut, insightface_image, negatives
from onnx import TensorProto, helper

from idportrait.errors import CheckpointError
from idportrait.faces import get_face_analyzer
from idportrait.faces.insightface_backend import InsightFaceBackend
from idportrait.faces.insightface_torch import InsightFaceTorchBackend
from idportrait.faces.onnx_graph import GraphModule, converted_graph, read_onnx

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from face_nets import write_random_pack


def photos() -> list[np.ndarray]:
    """A portrait, a wide group photo (non-square: another letterbox) and a photo without people (random weights
    see "faces" in it too)."""
    return [astronaut(), np.asarray(insightface_image("t1.jpg")), negatives()["coffee"]]


@pytest.fixture(scope="module")
def net_pack(tmp_path_factory) -> Path:
    return write_random_pack(tmp_path_factory.mktemp("nets") / "buffalo_l", photo_rgb=astronaut(), tiny=True)


@pytest.fixture(scope="module")
def backends(net_pack, tmp_path_factory):
    cache = tmp_path_factory.mktemp("onnx-cache")
    return InsightFaceBackend("buffalo_l", net_pack), InsightFaceTorchBackend("buffalo_l", net_pack, cache_dir=cache)


def assert_same_faces(expected, actual) -> None:
    assert len(actual) == len(expected)
    for e, a in zip(expected, actual, strict=True):
        np.testing.assert_allclose(a.bbox, e.bbox, atol=2e-3, rtol=1e-5)
        np.testing.assert_allclose(a.kps, e.kps, atol=2e-3, rtol=1e-5)
        assert abs(a.score - e.score) < 1e-4
        if e.embedding is None:
            assert a.embedding is None
        else:  # the 112 px crop follows the keypoints, whose last bits differ: cosine, not bits
            cosine = a.embedding @ e.embedding / (np.linalg.norm(a.embedding) * np.linalg.norm(e.embedding))
            assert cosine > 0.9999, cosine
            np.testing.assert_allclose(a.embedding, e.embedding, atol=2e-3)


@pytest.mark.slow
def test_torch_path_equals_insightface_on_scrfd_and_iresnet_graphs(backends):
    onnxruntime_backend, torch_backend = backends
    expected = [onnxruntime_backend.detect(p) for p in photos()]
    assert all(len(f) > 1 for f in expected)  # random weights find "faces" everywhere: NMS and order are exercised
    for e, photo in zip(expected, photos(), strict=True):
        assert_same_faces(e, torch_backend.detect(photo))
    assert all(f.embedding.shape == (512,) for per in expected for f in per)


@pytest.mark.slow
def test_batched_calls_equal_photo_by_photo(backends):
    onnxruntime_backend, torch_backend = backends
    batch = photos()
    batch[1] = np.ascontiguousarray(batch[1][:, :512])  # photos of several sizes in one batch
    for backend in (onnxruntime_backend, torch_backend):
        together = backend.detect_batch(batch, embed=True)
        for photo, faces in zip(batch, together, strict=True):
            assert_same_faces(backend.detect(photo), faces)
    assert_same_faces(onnxruntime_backend.detect_batch(batch)[0], torch_backend.detect_batch(batch)[0])
    assert all(f.embedding is None for per in torch_backend.detect_batch(batch, embed=False) for f in per)


@pytest.mark.slow
def test_converted_graph_is_cached_and_keeps_the_batch(net_pack, tmp_path, monkeypatch):
    import onnxruntime

    path = net_pack / "det_10g.onnx"
    first = converted_graph(path, tmp_path)
    assert len(list(tmp_path.glob("det_10g-*.safetensors"))) == 1
    monkeypatch.setattr("idportrait.faces.onnx_graph.read_onnx", lambda p: pytest.fail("read the ONNX again"))
    again = converted_graph(path, tmp_path)
    assert [n.op for n in again.nodes] == [n.op for n in first.nodes]
    assert all(torch.equal(again.tensors[k], first.tensors[k]) for k in first.tensors)
    # a batch of 3 through the graph exported at batch 1 (GroupNorm's [1, groups, -1] reshape keeps the batch)
    x = torch.randn(3, 3, 96, 128)
    outs = GraphModule(again)(x)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in range(3):
        expected = session.run(None, {"input.1": x[b : b + 1].numpy()})
        for out, e in zip(outs, expected, strict=True):
            got = out.reshape(3, -1, e.shape[-1])[b].numpy()
            np.testing.assert_allclose(got, e, atol=1e-4, rtol=1e-4)


def test_hand_built_fake_pack_through_the_analyzer(tmp_path, monkeypatch):
    monkeypatch.setenv("IDPORTRAIT_CACHE", str(tmp_path / "cache"))
    write_fake_pack(tmp_path / "buffalo_l")
    image = np.zeros((640, 640, 3), np.uint8)
    image[96:104, 200:208] = (255, 0, 0)
    image[320:352, 384:416] = (0, 180, 0)
    onnxruntime_faces = get_face_analyzer("insightface:buffalo_l", model_dir=tmp_path).detect(image)
    analyzer = get_face_analyzer("insightface-torch:buffalo_l", model_dir=tmp_path)
    assert analyzer.name == "insightface-torch:buffalo_l"
    assert_same_faces(onnxruntime_faces, analyzer.detect(image))
    assert [f.bbox.tolist() for f in analyzer.detect(image)] == [[320, 256, 448, 384], [184, 80, 216, 112]]
    assert list((tmp_path / "cache" / "onnx").glob("*.safetensors"))


def test_unsupported_op_names_the_file_and_the_op(tmp_path):
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,jk->ik")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "odd.onnx")
    with pytest.raises(CheckpointError, match=r"odd\.onnx: ONNX ops Einsum are not supported by the torch runner"):
        converted_graph(tmp_path / "odd.onnx", tmp_path / "cache")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=r"junk\.onnx: not a readable ONNX model"):
        read_onnx(tmp_path / "junk.onnx")


def test_shape_and_elementwise_ops_equal_onnxruntime(tmp_path):
    """The ops the exported nets do not use (shape arithmetic, reductions, element-wise maths) against onnxruntime."""
    import onnxruntime
    from onnx import numpy_helper

    def const(name, values, dtype=np.int64):
        return numpy_helper.from_array(np.array(values, dtype), name)

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["x", "flat_shape"], ["flat"]),
        helper.make_node("Slice", ["flat", "starts", "ends", "axes1"], ["sliced"]),
        helper.make_node("Exp", ["sliced"], ["e"]),
        helper.make_node("Sqrt", ["e"], ["r"]),
        helper.make_node("Neg", ["r"], ["n"]),
        helper.make_node("Floor", ["x"], ["f"]),
        helper.make_node("Tanh", ["f"], ["t"]),
        helper.make_node("Pow", ["x", "two"], ["p"]),
        helper.make_node("Clip", ["p", "lo", "hi"], ["c"]),
        helper.make_node("ReduceMean", ["c"], ["m"], axes=[2, 3], keepdims=1),
        helper.make_node("Softmax", ["n"], ["s"], axis=-1),
        helper.make_node("Cast", ["batch1"], ["batch_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["s", "batch_float"], ["out1"]),
        helper.make_node("Squeeze", ["m", "axes23"], ["out2"]),
        helper.make_node("Add", ["t", "m"], ["out3"]),
    ]
    inits = [const("zero", 0), const("axes0", [0]), const("minus1", [-1]), const("starts", [3]), const("ends", [40]),
             const("axes1", [1]), const("axes23", [2, 3]), const("two", 2.0, np.float32), const("lo", 0.1, np.float32),
             const("hi", 4.0, np.float32)]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 4, 5])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("out1", "out2", "out3")],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "ops.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32) * 2
    session = onnxruntime.InferenceSession(str(tmp_path / "ops.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})
    got = GraphModule(converted_graph(tmp_path / "ops.onnx", tmp_path / "cache"))(torch.from_numpy(x))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, atol=1e-6, rtol=1e-5)
