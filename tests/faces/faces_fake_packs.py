"""Tiny ONNX stand-ins for an insightface pack, built with the onnx helper API.

`write_fake_pack(folder, pack)` writes a detector and a recognizer with the real file names and the
real input/output signatures, so insightface's model-zoo router loads them as SCRFD and ArcFace:

- detector (SCRFD, 9 outputs: scores/boxes/keypoints for strides 8, 16, 32, 2 anchors each):
  a stride-8 cell fires where it is red (R - B), a stride-32 cell where it is green (G - B), judged
  on the RGB blob insightface makes from a BGR image. Boxes are anchor +- 2 strides; keypoints sit
  at fixed offsets (`KPS_OFFSETS`, in strides) from the anchor.
- recognizer (ArcFace, [1, 3, 112, 112] -> [1, 512]): 14x14 average pool then a fixed linear map
  (`recognizer_weights`), applied to (x - 127.5) / 127.5 of the RGB aligned crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from idportrait.faces.insightface_backend import PACKS

KPS_OFFSETS = np.array([[-0.7, -0.4], [0.7, -0.4], [0.0, 0.2], [-0.55, 0.9], [0.55, 0.9]], np.float32)
SCORE_WEIGHTS = {8: [2.0, 0.0, -2.0], 16: [0.0, 0.0, 0.0], 32: [0.0, 2.0, -2.0]}
SCORE_BIAS = {8: -2.0, 16: -10.0, 32: -2.0}


def recognizer_weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((192, 512)).astype(np.float32), rng.standard_normal(512).astype(np.float32)


def _const_conv(name: str, x: str, weight: np.ndarray, bias: np.ndarray, out: str) -> tuple[list, list]:
    inits = [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]
    return [helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], name=name)], inits


def _to_rows(name: str, x: str, width: int, out: str) -> tuple[list, list]:
    shape = numpy_helper.from_array(np.array([-1, width], np.int64), f"{name}_shape")
    nodes = [
        helper.make_node("Transpose", [x], [f"{name}_t"], perm=[0, 2, 3, 1], name=f"{name}_transpose"),
        helper.make_node("Reshape", [f"{name}_t", f"{name}_shape"], [out], name=f"{name}_reshape"),
    ]
    return nodes, [shape]


def detector_model() -> onnx.ModelProto:
    nodes, inits, outputs = [], [], {"score": [], "bbox": [], "kps": []}
    for s in (8, 16, 32):
        pooled = f"pool{s}"
        nodes.append(helper.make_node("AveragePool", ["input.1"], [pooled], kernel_shape=[s, s], strides=[s, s]))
        heads = {
            "score": (
                np.tile(np.array(SCORE_WEIGHTS[s], np.float32).reshape(1, 3, 1, 1), (2, 1, 1, 1)),
                np.full(2, SCORE_BIAS[s], np.float32),
                1,
            ),
            "bbox": (np.zeros((8, 3, 1, 1), np.float32), np.full(8, 2.0, np.float32), 4),
            "kps": (np.zeros((20, 3, 1, 1), np.float32), np.tile(KPS_OFFSETS.reshape(-1), 2), 10),
        }
        for head, (w, b, width) in heads.items():
            conv_out = f"{head}{s}_map"
            n, i = _const_conv(f"{head}{s}_conv", pooled, w, b, conv_out)
            nodes += n
            inits += i
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [conv_out], [f"{conv_out}_sig"], name=f"sigmoid{s}"))
                conv_out = f"{conv_out}_sig"
            n, i = _to_rows(f"{head}{s}", conv_out, width, f"{head}_{s}")
            nodes += n
            inits += i
            outputs[head].append(helper.make_tensor_value_info(f"{head}_{s}", TensorProto.FLOAT, [f"n{s}", width]))
    graph = helper.make_graph(
        nodes,
        "fake_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def recognizer_model() -> onnx.ModelProto:
    weight, bias = recognizer_weights()
    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc1"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
        [numpy_helper.from_array(weight, "fc_w"), numpy_helper.from_array(bias, "fc_b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def write_fake_pack(folder: Path, pack: str = "buffalo_l") -> Path:
    """Write the pack's detector and recognizer file names into ``folder``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(detector_model(), folder / PACKS[pack].detector)
    onnx.save(recognizer_model(), folder / PACKS[pack].recognizer)
    return folder


def expected_embedding(aligned_rgb: np.ndarray) -> np.ndarray:
    """What the fake recognizer returns for an RGB 112x112 aligned crop (float32 [512])."""
    weight, bias = recognizer_weights()
    x = (aligned_rgb.astype(np.float32) - 127.5) / 127.5
    pooled = x.reshape(8, 14, 8, 14, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
    return pooled @ weight + bias
