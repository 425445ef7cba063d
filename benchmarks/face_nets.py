"""insightface-pack stand-ins built in code: SCRFD and ArcFace-IResNet in torch, exported to ONNX with random weights.

    write_random_pack(folder, "buffalo_l")                  # real sizes: SCRFD-10G-like detector, IResNet-50
    write_random_pack(folder, "buffalo_l", tiny=True)       # the same graphs, narrow and shallow (tests)

The packs cannot be fetched on a benchmark machine; the cost of a network does not depend on its weights, so timing
runs on these. The detector has SCRFD's graph interface (input ``[1, 3, H, W]``, 9 outputs: scores, box and
keypoint distances for strides 8, 16, 32 with 2 anchors, each ``[N, k]`` as insightface's non-batched export) and
its parts (a ResNet trunk with BatchNorm, an FPN with nearest upsampling, 3-conv heads with GroupNorm and a learned
box scale); the recognizer is ArcFace's IResNet (BN-conv-BN-PReLU-conv-BN blocks, BN + FC + BN embedding, input
``[batch, 3, 112, 112]``). The score heads' bias is calibrated on a given photo so that a few anchors pass the
0.5 threshold there (a face or two after NMS), as on a real portrait.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from idportrait.faces.insightface_backend import PACKS


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))  # fmt: skip
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.AvgPool2d(stride, stride), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class SCRFDLike(nn.Module):
    """[1, 3, H, W] -> 9 outputs (scores 1, boxes 4, keypoints 10 per anchor; strides 8, 16, 32; 2 anchors)."""

    def __init__(self, stem: int = 56, planes=(56, 88, 88, 224), blocks=(3, 4, 2, 3), neck: int = 56,
                 head: int = 80, head_convs: int = 3) -> None:  # fmt: skip
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, stem // 2, 2), conv_bn(stem // 2, stem // 2), conv_bn(stem // 2, stem),
                                  nn.MaxPool2d(3, 2, 1))  # fmt: skip
        stages, cin = [], stem
        for i, (p, n) in enumerate(zip(planes, blocks, strict=True)):
            stages.append(nn.Sequential(*[Basic(cin if j == 0 else p, p, 2 if i and j == 0 else 1) for j in range(n)]))
            cin = p
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(p, neck, 1) for p in planes[1:])
        self.smooth = nn.ModuleList(conv_bn(neck, neck) for _ in planes[1:])
        self.heads = nn.ModuleList(self._head(neck, head, head_convs) for _ in planes[1:])
        self.outs = nn.ModuleList(nn.Conv2d(head, 2 * k, 3, 1, 1) for k in (1, 4, 10) for _ in planes[1:])
        self.box_scale = nn.Parameter(torch.ones(3))

    @staticmethod
    def _head(cin: int, width: int, convs: int) -> nn.Sequential:
        layers = []
        for i in range(convs):
            layers += [nn.Conv2d(cin if i == 0 else width, width, 3, 1, 1, bias=False), nn.GroupNorm(16, width),
                       nn.ReLU()]  # fmt: skip
        return nn.Sequential(*layers)

    def score_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every anchor's score logit (before the sigmoid) of every stride, flattened: [N]."""
        return torch.logit(torch.cat(self(x)[:3]).reshape(-1), eps=1e-12)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats, x = [], self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        laterals = [conv(f) for conv, f in zip(self.lateral, feats[1:], strict=True)]
        for i in (1, 0):
            laterals[i] = laterals[i] + nn.functional.interpolate(laterals[i + 1], scale_factor=2.0, mode="nearest")
        levels = [smooth(f) for smooth, f in zip(self.smooth, laterals, strict=True)]
        scores, boxes, kps = [], [], []
        for i, f in enumerate(levels):
            h = self.heads[i](f)
            rows = lambda t, k: t.permute(0, 2, 3, 1).reshape(-1, k)  # noqa: E731 (insightface's [N, k] layout)
            scores.append(rows(torch.sigmoid(self.outs[i](h)), 1))
            boxes.append(rows(self.outs[3 + i](h) * self.box_scale[i], 4))
            kps.append(rows(self.outs[6 + i](h), 10))
        return (*scores, *boxes, *kps)


class IBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))  # fmt: skip
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.short(x)


class IResNet(nn.Module):
    """ArcFace IResNet: [B, 3, 112, 112] -> [B, dim] (layers (3, 4, 14, 3) = IResNet-50, (3, 13, 30, 3) = -100)."""

    def __init__(self, layers=(3, 4, 14, 3), widths=(64, 128, 256, 512), dim: int = 512) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.PReLU(widths[0]))  # fmt: skip
        blocks, cin = [], widths[0]
        for n, w in zip(layers, widths, strict=True):
            blocks += [IBlock(cin if j == 0 else w, w, 2 if j == 0 else 1) for j in range(n)]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin * 7 * 7, dim)
        self.features = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(torch.flatten(self.bn(self.blocks(self.stem(x))), 1)))


def randomise_norms(model: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm statistics and affine weights (eval mode), so folding and normalising are exercised."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def export(model: nn.Module, example: torch.Tensor, path: Path, inputs: str, dynamic: dict) -> Path:
    """The TorchScript ONNX export (opset 17) of ``model`` at ``example``, with ``dynamic`` input axes."""
    out = model(example)
    outputs = [f"out{i}" for i in range(len(out) if isinstance(out, tuple) else 1)]
    with warnings.catch_warnings():  # GroupNorm's shape check is traced as a constant: right for these graphs
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, example, str(path), input_names=[inputs], output_names=outputs, opset_version=17,
                          dynamic_axes={inputs: dynamic}, dynamo=False)  # fmt: skip
    return path


@torch.no_grad()
def calibrate_scores(detector: SCRFDLike, photo_rgb: np.ndarray, passing: int = 12) -> None:
    """Shift the score heads' bias so that ``passing`` anchors of ``photo_rgb`` (insightface's 640 px detector input)
    score at least 0.5, with a margin to the next one."""
    from idportrait.faces.insightface_torch import SCRFD_MEAN, SCRFD_STD, letterbox

    canvas, _ = letterbox(np.ascontiguousarray(photo_rgb[:, :, ::-1]), (640, 640))
    blob = (torch.from_numpy(canvas[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() - SCRFD_MEAN) / SCRFD_STD
    logits = detector.score_logits(blob).sort(descending=True).values
    spread = float(logits[: passing * 4].std()) + 1e-3
    gain = 4.0 / spread  # the passing anchors spread over about 4 logit units
    threshold = float(logits[passing - 1] + logits[passing]) / 2
    for level in range(3):
        detector.outs[level].weight.mul_(gain)
        detector.outs[level].bias.mul_(gain).sub_(gain * threshold)


def write_random_pack(folder: Path, pack: str = "buffalo_l", photo_rgb: np.ndarray | None = None, tiny: bool = False,
                      seed: int = 0, passing: int = 12) -> Path:  # fmt: skip
    """The pack's detector and recognizer file names in ``folder``, random weights (scores calibrated on
    ``photo_rgb`` when given, ``passing`` anchors above 0.5 there); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if tiny:
        detector = SCRFDLike(stem=16, planes=(16, 16, 32, 32), blocks=(1, 1, 1, 1), neck=16, head=16, head_convs=1)
        recognizer = IResNet(layers=(1, 1, 1, 1), widths=(8, 16, 16, 32))
    else:
        detector = SCRFDLike()
        recognizer = IResNet(layers=(3, 13, 30, 3) if pack == "antelopev2" else (3, 4, 14, 3))
    randomise_norms(detector, seed)
    if photo_rgb is not None:
        calibrate_scores(detector, photo_rgb, passing)
    with torch.no_grad():
        export(detector, torch.zeros(1, 3, 640, 640), folder / PACKS[pack].detector,
               "input.1", {2: "height", 3: "width"})  # fmt: skip
        export(randomise_norms(recognizer, seed + 1), torch.zeros(1, 3, 112, 112), folder / PACKS[pack].recognizer,
               "data", {0: "batch"})  # fmt: skip
    return folder
