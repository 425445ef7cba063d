"""FaceNet (Inception-ResNet-v1, VGGFace2) for ConsistentID/PhotoMaker-style FaceSim.

The architecture and parameter names of facenet-pytorch's ``InceptionResnetV1`` (Szegedy et al. 2016,
as trained by David Sandberg's facenet), so its released ``20180402-114759-vggface2.pt`` state dict
(`idportrait.registry.FACENET_VGGFACE2_URL`) loads strictly. facenet-pytorch itself is not a dependency:
it pins torch < 2.3 and imports torchvision on import.

Input: face crops float32 [B, 3, 160, 160], ``(pixel - 127.5) / 128`` ("fixed image standardisation").
Output: L2-normalised embeddings float32 [B, 512].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from idportrait.errors import CheckpointError
from idportrait.hub import first_line, url_state_dict
from idportrait.registry import FACENET_VGGFACE2_URL

FACENET_SIZE = 160
VGGFACE2_CLASSES = 8631


class BasicConv2d(nn.Sequential):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; children named conv, bn, relu."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.relu = nn.ReLU()


class ResidualBlock(nn.Module):
    """Parallel branches -> concat -> 1x1 conv ``conv2d`` -> ``x + scale * out`` -> optional ReLU.

    Block35 / Block17 / Block8 of Inception-ResNet-v1 differ only in their branches and scale.
    """

    def __init__(self, branches: list[nn.Module], concat: int, channels: int, scale: float, relu: bool = True):
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.num_branches = len(branches)
        self.conv2d = nn.Conv2d(concat, channels, 1)
        self.scale = scale
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.num_branches)], 1)
        out = x + self.scale * self.conv2d(out)
        return F.relu(out) if self.use_relu else out


def block35(scale: float = 0.17) -> ResidualBlock:
    """35x35 block on 256 channels."""
    return ResidualBlock(
        [
            BasicConv2d(256, 32, 1),
            nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
            nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, 1, 1), BasicConv2d(32, 32, 3, 1, 1)),
        ],
        96,
        256,
        scale,
    )


def factorized_branch(in_channels: int, channels: int, k: int) -> nn.Sequential:
    """1x1 conv to ``channels``, then a k x k conv factorised as 1 x k and k x 1 (same padding)."""
    return nn.Sequential(
        BasicConv2d(in_channels, channels, 1),
        BasicConv2d(channels, channels, (1, k), padding=(0, k // 2)),
        BasicConv2d(channels, channels, (k, 1), padding=(k // 2, 0)),
    )


def block17(scale: float = 0.10) -> ResidualBlock:
    """17x17 block on 896 channels."""
    return ResidualBlock([BasicConv2d(896, 128, 1), factorized_branch(896, 128, 7)], 256, 896, scale)


def block8(scale: float = 0.20, relu: bool = True) -> ResidualBlock:
    """8x8 block on 1792 channels."""
    return ResidualBlock([BasicConv2d(1792, 192, 1), factorized_branch(1792, 192, 3)], 384, 1792, scale, relu)


class Concat(nn.Module):
    """Parallel branches ``branch0..`` concatenated on channels (the reduction blocks Mixed_6a/7a)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.num_branches = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.num_branches)], 1)


class InceptionResnetV1(nn.Module):
    """Face crops [B, 3, 160, 160] (standardised) -> unit embeddings [B, 512]."""

    def __init__(self, num_classes: int = VGGFACE2_CLASSES) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[block35() for _ in range(5)])
        self.mixed_6a = Concat(
            [
                BasicConv2d(256, 384, 3, stride=2),
                nn.Sequential(BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, 1, 1), BasicConv2d(192, 256, 3, 2)),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.repeat_2 = nn.Sequential(*[block17() for _ in range(10)])
        self.mixed_7a = Concat(
            [
                nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
                nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
                nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, 1, 1), BasicConv2d(256, 256, 3, 2)),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.repeat_3 = nn.Sequential(*[block8() for _ in range(5)])
        self.block8 = block8(scale=1.0, relu=False)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=1e-3)
        self.logits = nn.Linear(512, num_classes)  # classifier head of the release; unused for embeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b"):
            x = getattr(self, name)(x)
        x = self.repeat_3(self.mixed_7a(self.repeat_2(self.mixed_6a(self.repeat_1(x)))))
        x = self.block8(x).mean(dim=(2, 3))
        return F.normalize(self.last_bn(self.last_linear(x)), dim=1)


def load_facenet(path: str | Path | None = None, device: str | torch.device = "cpu") -> InceptionResnetV1:
    """Load the VGGFace2 FaceNet strictly from a state-dict file (``torch.load(weights_only=True)``).

    ``path=None`` downloads `idportrait.registry.FACENET_VGGFACE2_URL` into the torch hub cache once.
    """
    path, state = url_state_dict(path, FACENET_VGGFACE2_URL, "FaceNet weights", "[metrics] facenet_weights")
    model = InceptionResnetV1(num_classes=state["logits.weight"].shape[0] if "logits.weight" in state else 0)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"not an InceptionResnetV1 state dict: {first_line(err)}", path) from None
    return model.to(device).eval()
