"""The parity fixtures' deterministic weight recipe (../shared/fixtures/consistentid/README.md §0)."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "consistentid"
SEED = 1234


def recipe_tensor(key: str, shape: list[int], seed: int = SEED, conv_he: bool = False) -> torch.Tensor:
    """One tensor of the recipe, built from its key alone."""
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")) ^ seed)
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    if conv_he and len(shape) == 4:
        return r * math.sqrt(2 / (shape[1] * shape[2] * shape[3]))
    r = r * 0.02
    if key.endswith("running_var"):
        return 1 + r.abs()
    if len(shape) == 1 and key.endswith(".weight"):
        return 1 + r
    return r


def load_manifest(name: str) -> list[tuple[str, list[int]]]:
    """A fixture manifest: ``[(key, shape), ...]`` in state_dict order."""
    return [(k, list(s)) for k, s in json.loads((FIXTURES / name).read_text())]


def recipe_state_dict(manifest: str | list, seed: int = SEED, conv_he: bool = False) -> dict[str, torch.Tensor]:
    """Build the state dict of a manifest (file name in the fixtures folder, or the list itself)."""
    entries = load_manifest(manifest) if isinstance(manifest, str) else manifest
    return {k: recipe_tensor(k, s, seed, conv_he) for k, s in entries}


FIXTURES_SDXL = FIXTURES.parent / "consistentid_sdxl"
SDXL_SEED = 13579


def sdxl_recipe_tensor(key: str, shape: list[int] | tuple[int, ...], scale: float = 0.02) -> torch.Tensor:
    """One tensor of the SDXL fixture's recipe (../shared/fixtures/consistentid_sdxl/README.md, "The world")."""
    shape = tuple(shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("position_ids"):
        return torch.arange(shape[-1]).expand(shape).clone()
    g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")) ^ SDXL_SEED)
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    if key.endswith("running_var"):
        return 1 + 0.02 * r.abs()
    if len(shape) == 1 and key.endswith(".weight"):
        return 1 + 0.02 * r
    if len(shape) == 4:
        return r * math.sqrt(2 / (shape[1] * shape[2] * shape[3]))
    return r * scale
