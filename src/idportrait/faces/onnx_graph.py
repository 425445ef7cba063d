"""An ONNX model run with torch ops: the insightface packs' detector and recognizer on any torch device, batched.

    graph = converted_graph("det_10g.onnx")           # read once, then from the safetensors cache
    net = GraphModule(graph).to("cuda")               # weights as buffers
    outputs = net(blob)                                # [B, 3, H, W] float32 -> the graph's outputs, in order

Conversion is data only: the initializers (and ``Constant`` values) become tensors of a safetensors file, the node
list (op type, input/output names, attributes) JSON in its metadata. Running it looks each op type up in `OPS`, a
fixed table of torch functions; nothing from the file is ever executed, and an op outside the table is a
`CheckpointError` naming the file and the op (the onnxruntime backend runs any graph).

Batch: the graph runs with the batch on dim 0, whatever batch it was exported with. A ``Reshape`` whose target fixes
dim 0 to 1 (a batch-1 export, e.g. a GroupNorm's ``[1, groups, -1]``) keeps the input's batch instead.
Shape arithmetic (``Shape``, ``Gather``, ``Concat`` of int64 tensors ...) stays on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from idportrait.errors import CheckpointError

FORMAT = "idportrait.onnx_graph.v1"


@dataclass
class Node:
    """One ONNX node: ``op`` type, input and output value names ("" = omitted optional input), attributes."""

    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class OnnxGraph:
    """A converted ONNX graph: nodes in execution order, constant tensors by value name, graph inputs/outputs."""

    nodes: list[Node]
    tensors: dict[str, torch.Tensor]
    inputs: list[str]
    outputs: list[str]
    source: str = ""


def read_onnx(path: str | Path) -> OnnxGraph:
    """Parse an ONNX file into an `OnnxGraph` (no onnxruntime involved); `CheckpointError` when unreadable."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as err:
        raise CheckpointError(f"not a readable ONNX model ({type(err).__name__})", path) from None
    graph = model.graph
    tensors = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {}
        for attr in node.attribute:
            value = onnx.helper.get_attribute_value(attr)
            if isinstance(value, onnx.TensorProto):
                key = f"{node.output[0]}::{attr.name}"
                tensors[key] = torch.from_numpy(numpy_helper.to_array(value).copy())
                value = {"tensor": key}
            elif isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list | tuple):
                value = [v.decode() if isinstance(v, bytes) else v for v in value]
            elif not isinstance(value, int | float | str):
                raise CheckpointError(f"node {node.name or node.op_type}: unsupported attribute {attr.name}", path)
            attrs[attr.name] = value
        nodes.append(Node(node.op_type, list(node.input), list(node.output), attrs, node.name))
    inputs = [i.name for i in graph.input if i.name not in tensors]
    return OnnxGraph(nodes, tensors, inputs, [o.name for o in graph.output], str(path))


def save_graph(graph: OnnxGraph, path: str | Path) -> None:
    """Write ``graph`` as one safetensors file (atomically): tensors by index, the rest as JSON metadata."""
    from idportrait.imageio import write_safetensors

    names = list(graph.tensors)
    tensors = {f"t{i}": graph.tensors[n].contiguous() for i, n in enumerate(names)}
    meta = {
        "format": FORMAT,
        "tensor_names": json.dumps(names),
        "nodes": json.dumps([[n.op, n.inputs, n.outputs, n.attrs, n.name] for n in graph.nodes]),
        "inputs": json.dumps(graph.inputs),
        "outputs": json.dumps(graph.outputs),
        "source": graph.source,
    }
    write_safetensors(path, tensors, meta)


def load_graph(path: str | Path) -> OnnxGraph:
    """Read a file written by `save_graph`; `CheckpointError` for anything else."""
    from idportrait.imageio import read_safetensors

    path = Path(path)
    stored, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a converted ONNX graph (format {meta.get('format')!r})", path)
    names = json.loads(meta["tensor_names"])
    nodes = [Node(op, inputs, outputs, attrs, name) for op, inputs, outputs, attrs, name in json.loads(meta["nodes"])]
    tensors = {name: stored[f"t{i}"] for i, name in enumerate(names)}
    return OnnxGraph(nodes, tensors, json.loads(meta["inputs"]), json.loads(meta["outputs"]), meta.get("source", ""))


def default_cache_dir() -> Path:
    """Where converted graphs are kept: ``$IDPORTRAIT_CACHE/onnx`` (default ``~/.cache/idportrait/onnx``)."""
    return Path(os.environ.get("IDPORTRAIT_CACHE", "~/.cache/idportrait")).expanduser() / "onnx"


def converted_graph(path: str | Path, cache_dir: str | Path | None = None) -> OnnxGraph:
    """`read_onnx` once per file version (path, size, modification time), then the cached safetensors copy."""
    path = Path(path).resolve()
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = Path(cache_dir or default_cache_dir()) / f"{path.stem}-{key}.safetensors"
    if cached.is_file():
        return load_graph(cached)
    graph = read_onnx(path)
    check_ops(graph)
    cached.parent.mkdir(parents=True, exist_ok=True)
    save_graph(graph, cached)
    return graph


def check_ops(graph: OnnxGraph) -> None:
    """`CheckpointError` naming the file and every op type this runner lacks."""
    missing = sorted({n.op for n in graph.nodes} - set(OPS) - {"Constant"})
    missing += [
        f"Constant without a tensor value ({n.name})"
        for n in graph.nodes
        if n.op == "Constant" and "value" not in n.attrs
    ]
    if missing:
        raise CheckpointError(
            f"ONNX ops {', '.join(missing)} are not supported by the torch runner; use the onnxruntime backend",
            graph.source,
        )


# ---------------------------------------------------------------------------------------------- ops
def _ints(value: torch.Tensor) -> list[int]:
    return [int(v) for v in value.reshape(-1).tolist()]


def _conv(x, w, b=None, *, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), group=1, **_):
    half = len(pads) // 2
    if list(pads[:half]) != list(pads[half:]):  # asymmetric: [x1_begin, x2_begin, x1_end, x2_end]
        x = F.pad(x, [p for i in reversed(range(half)) for p in (pads[i], pads[i + half])])
        pads = (0,) * len(pads)
    return F.conv2d(x, w, b, stride=strides, padding=pads[:half], dilation=dilations, groups=group)


def _pool(kind: str):
    def pool(x, *, kernel_shape, strides=None, pads=(0, 0, 0, 0), ceil_mode=0, count_include_pad=0, **_):
        half = len(pads) // 2
        if list(pads[:half]) != list(pads[half:]):
            raise ValueError(f"asymmetric {kind} pooling pads {pads}")
        strides = strides or kernel_shape
        if kind == "max":
            return F.max_pool2d(x, kernel_shape, strides, pads[:half], ceil_mode=bool(ceil_mode))
        return F.avg_pool2d(
            x, kernel_shape, strides, pads[:half], ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad)
        )

    return pool


def _gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    a = a.t() if transA else a
    b = b.t() if transB else b
    out = alpha * (a @ b) if alpha != 1.0 else a @ b
    if c is not None:
        out = out + (beta * c if beta != 1.0 else c)
    return out


def _reshape(x, shape, *, allowzero=0, **_):
    target = _ints(shape)
    target = [x.shape[i] if v == 0 and not allowzero else v for i, v in enumerate(target)]
    if target and target[0] == 1 and x.dim() > 0 and x.shape[0] > 1:
        target[0] = x.shape[0]  # a batch-1 export keeps the batch it is run with
    return x.reshape(target)


def _resize(x, roi=None, scales=None, sizes=None, *, mode="nearest", coordinate_transformation_mode="half_pixel", **_):
    if sizes is not None and sizes.numel():
        size = _ints(sizes)[2:]
    else:
        size = [int(d * s) for d, s in zip(x.shape[2:], scales.reshape(-1).tolist()[2:], strict=True)]
    if mode == "nearest":
        if any(s % d for s, d in zip(size, x.shape[2:], strict=True)):
            raise ValueError(f"nearest Resize by a non-integer factor {list(x.shape[2:])} -> {size}")
        return F.interpolate(x, size=size, mode="nearest")
    align = coordinate_transformation_mode == "align_corners"
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align)


def _upsample(x, scales, *, mode="nearest", **kwargs):
    return _resize(x, None, scales, None, mode=mode, coordinate_transformation_mode="asymmetric")


def _slice(x, starts, ends, axes=None, steps=None, **_):
    axes = _ints(axes) if axes is not None else list(range(starts.numel()))
    steps = _ints(steps) if steps is not None else [1] * len(axes)
    index = [slice(None)] * x.dim()
    for a, s, e, st in zip(axes, _ints(starts), _ints(ends), steps, strict=True):
        index[a] = slice(s, min(e, x.shape[a]) if e >= 0 else e, st)
    return x[tuple(index)]


def _axes(axes: torch.Tensor | list[int] | None) -> list[int] | None:
    """Axes given as an input tensor (opset 13+) or as an attribute list (earlier opsets)."""
    return _ints(axes) if isinstance(axes, torch.Tensor) else axes


def _unsqueeze(x, axes=None, **_):
    for a in sorted(_axes(axes)):
        x = x.unsqueeze(a if a >= 0 else a + x.dim() + 1)
    return x


def _squeeze(x, axes=None, **_):
    axes = _axes(axes)
    return x.squeeze() if axes is None else x.squeeze(tuple(axes))


def _gather(x, indices, *, axis=0, **_):
    picked = torch.index_select(x, axis, indices.reshape(-1).to(x.device).long())
    return picked.reshape([*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]])


def _instance_norm(x, scale, bias, *, epsilon=1e-5, **_):
    return F.instance_norm(x, weight=scale, bias=bias, eps=epsilon)


def _shape(x, *, start=0, end=None, **_):
    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)


def _concat(*xs, axis, **_):
    device = next((x.device for x in xs if x.device.type != "cpu"), torch.device("cpu"))
    return torch.cat([x.to(device) for x in xs], dim=axis)


def _reduce_mean(x, axes=None, *, keepdims=1, **_):
    axes = _axes(axes)
    return x.mean(dim=tuple(axes) if axes is not None else tuple(range(x.dim())), keepdim=bool(keepdims))


ONNX_DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64}


def _binary(fn):
    def op(a, b, **_):
        if a.device != b.device:  # a CPU shape constant meets a device tensor
            a, b = (a.to(b.device), b) if a.device.type == "cpu" else (a, b.to(a.device))
        return fn(a, b)

    return op


OPS: dict[str, Any] = {
    "Conv": _conv,
    "BatchNormalization": lambda x, s, b, m, v, *, epsilon=1e-5, **_: F.batch_norm(x, m, v, s, b, False, 0.0, epsilon),
    "InstanceNormalization": _instance_norm,
    "Relu": lambda x, **_: F.relu(x),
    "LeakyRelu": lambda x, *, alpha=0.01, **_: F.leaky_relu(x, alpha),
    "PRelu": lambda x, slope, **_: torch.where(x >= 0, x, x * slope),
    "Sigmoid": lambda x, **_: torch.sigmoid(x),
    "Softmax": lambda x, *, axis=-1, **_: torch.softmax(x, axis),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda x, **_: x.mean(dim=(2, 3), keepdim=True),
    "Resize": _resize,
    "Upsample": _upsample,
    "Concat": _concat,
    "Reshape": _reshape,
    "Transpose": lambda x, *, perm, **_: x.permute(perm),
    "Flatten": lambda x, *, axis=1, **_: x.reshape(*x.shape[:axis], -1) if axis else x.reshape(1, -1),
    "Gemm": _gemm,
    "MatMul": lambda a, b, **_: a @ b,
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Cast": lambda x, *, to, **_: x.to(ONNX_DTYPES[to]),
    "Identity": lambda x, **_: x,
    "Dropout": lambda x, *rest, **_: x,
    "Exp": lambda x, **_: torch.exp(x),
    "Sqrt": lambda x, **_: torch.sqrt(x),
    "Neg": lambda x, **_: -x,
    "Floor": lambda x, **_: torch.floor(x),
    "Ceil": lambda x, **_: torch.ceil(x),
    "Tanh": lambda x, **_: torch.tanh(x),
    "Pow": _binary(torch.pow),
    "Clip": lambda x, lo=None, hi=None, **_: torch.clamp(x, lo, hi),
    "ReduceMean": _reduce_mean,
}
"""ONNX op type -> torch function of (inputs..., **attributes); what SCRFD and ArcFace graphs use."""


class GraphModule(nn.Module):
    """``forward(*inputs) -> list of outputs`` of an `OnnxGraph`; floating tensors are buffers (``.to`` moves and
    casts them), integer ones (shapes, indices) stay CPU tensors."""

    def __init__(self, graph: OnnxGraph) -> None:
        super().__init__()
        check_ops(graph)
        self.nodes, self.inputs, self.outputs, self.source = graph.nodes, graph.inputs, graph.outputs, graph.source
        self.slots: dict[str, str] = {}
        self.constants: dict[str, torch.Tensor] = {}
        for i, (name, tensor) in enumerate(graph.tensors.items()):
            if tensor.is_floating_point():
                self.register_buffer(f"t{i}", tensor, persistent=False)
                self.slots[name] = f"t{i}"
            else:
                self.constants[name] = tensor

    def value(self, name: str) -> torch.Tensor:
        return getattr(self, self.slots[name]) if name in self.slots else self.constants[name]

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        values: dict[str, torch.Tensor | None] = dict(zip(self.inputs, inputs, strict=True))
        values[""] = None
        for node in self.nodes:
            if node.op == "Constant":
                values[node.outputs[0]] = self.value(node.attrs["value"]["tensor"])
                continue
            args = [values[n] if n in values else self.value(n) for n in node.inputs]
            while args and args[-1] is None:
                args.pop()
            try:
                out = OPS[node.op](*args, **node.attrs)
            except Exception as err:
                message = f"ONNX node {node.name or node.op} ({node.op}) failed: {type(err).__name__}: {err}"
                raise CheckpointError(message, self.source) from None
            values[node.outputs[0]] = out
        return [values[n] for n in self.outputs]
