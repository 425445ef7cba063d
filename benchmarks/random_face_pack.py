"""A real-size antelopev2 pack with random weights, for timing insightface curation where the real pack is absent.

    python benchmarks/random_face_pack.py DIR      # writes DIR/antelopev2/{scrfd_10g_bnkps,glintr100}.onnx

- ``glintr100.onnx``: ArcFace's iresnet100 (the architecture of the released recognizer: blocks [3, 13, 30, 3],
  widths 64-512, a 25088 -> 512 embedding layer), [N, 3, 112, 112] -> [N, 512], random weights.
- ``scrfd_10g_bnkps.onnx``: a detector of about SCRFD-10G's compute at 640 x 640 (a ResNet-18-like backbone at
  3/4 width, an FPN, shared 3-conv heads for strides 8, 16, 32, 2 anchors each) with SCRFD's 9 outputs, so
  insightface's model zoo loads it as SCRFD. Its weights are random and small; constant biases make exactly
  one confident 128 px "face" with plausible keypoints at the image centre, so every image costs one
  detection and one embedding, as a one-face photo does.

The times these give are the real models' (same layers, same sizes); the faces they find are not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

DET_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
KPS_OFFSETS = ((-0.35, -0.2), (0.35, -0.2), (0.0, 0.1), (-0.28, 0.45), (0.28, 0.45))
"""Keypoints (eyes, nose, mouth corners) around the box centre, in box sides."""


class IBasicBlock(nn.Module):
    """iresnet's block: BN, 3x3 conv, BN, PReLU, 3x3 conv (stride), BN, plus the shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def iresnet100() -> nn.Module:
    """[N, 3, 112, 112] -> [N, 512]: ArcFace's iresnet100."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)]
    cin = 64
    for cout, blocks in zip((64, 128, 256, 512), (3, 13, 30, 3), strict=True):
        for i in range(blocks):
            layers.append(IBasicBlock(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += [nn.BatchNorm2d(512), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512)]
    return nn.Sequential(*layers)


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    block = [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        *block,
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class Detector(nn.Module):
    """[1, 3, 640, 640] -> SCRFD's outputs: scores [A, 1] x 3, boxes [A, 4] x 3, keypoints [A, 10] x 3."""

    def __init__(self) -> None:
        super().__init__()
        widths = (48, 96, 192, 384)
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.stages = nn.ModuleList(
            [_stage(c, w, s) for c, w, s in zip((32, *widths[:-1]), widths, (1, 2, 2, 2), strict=True)]
        )
        self.lateral = nn.ModuleList([nn.Conv2d(w, 128, 1) for w in widths[1:]])
        self.head = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(128, 128, 3, 1, 1), nn.ReLU())])
        self.score = nn.Conv2d(128, ANCHORS, 3, 1, 1)
        self.box = nn.Conv2d(128, ANCHORS * 4, 3, 1, 1)
        self.kps = nn.Conv2d(128, ANCHORS * 10, 3, 1, 1)
        for conv in (self.score, self.box, self.kps):
            nn.init.normal_(conv.weight, std=1e-4)
        nn.init.constant_(self.box.bias, 2.0)  # +-2 strides around the anchor
        kps = [c * 4 for xy in KPS_OFFSETS for c in xy]  # in strides: the box side is 4 strides
        nn.init.zeros_(self.kps.bias)
        with torch.no_grad():
            self.kps.bias.copy_(torch.tensor(kps * ANCHORS))
        logits = {s: torch.full((1, ANCHORS, DET_SIZE // s, DET_SIZE // s), -12.0) for s in STRIDES}
        logits[32][0, 0, DET_SIZE // 64, DET_SIZE // 64] = 12.0  # one face at the centre, 128 px
        for s in STRIDES:
            self.register_buffer(f"logits{s}", logits[s])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        pyramid = [lateral(f) for lateral, f in zip(self.lateral, feats[1:], strict=True)]
        for i in (1, 0):
            pyramid[i] = pyramid[i] + nn.functional.interpolate(pyramid[i + 1], scale_factor=2.0)
        scores, boxes, points = [], [], []
        for stride, level in zip(STRIDES, pyramid, strict=True):
            h = self.head(level)
            logit = self.score(h) + getattr(self, f"logits{stride}")
            scores.append(torch.sigmoid(logit).permute(0, 2, 3, 1).reshape(-1, 1))
            boxes.append(self.box(h).permute(0, 2, 3, 1).reshape(-1, 4))
            points.append(self.kps(h).permute(0, 2, 3, 1).reshape(-1, 10))
        return (*scores, *boxes, *points)


def _export(model: nn.Module, example: torch.Tensor, path: Path, outputs: list[str], batch_axis: bool) -> None:
    model.eval()
    axes = {"input.1": {0: "N"}, **{name: {0: "N"} for name in outputs}} if batch_axis else None
    with torch.no_grad():
        torch.onnx.export(
            model, example, str(path), input_names=["input.1"], output_names=outputs, dynamic_axes=axes, dynamo=False
        )


def write_random_pack(root: Path) -> Path:
    """Write ``root/antelopev2/{scrfd_10g_bnkps,glintr100}.onnx``; returns ``root`` (a --face-model-dir)."""
    folder = root / "antelopev2"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    names = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in STRIDES]
    _export(Detector(), torch.zeros(1, 3, DET_SIZE, DET_SIZE), folder / "scrfd_10g_bnkps.onnx", names, False)
    _export(iresnet100(), torch.zeros(2, 3, 112, 112), folder / "glintr100.onnx", ["embedding"], True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    root = write_random_pack(parser.parse_args().root)
    print(f"random-weight antelopev2 pack written: --face-model-dir {root}")


if __name__ == "__main__":
    main()
