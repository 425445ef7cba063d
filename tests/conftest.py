from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from recipe import FIXTURES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """../shared/fixtures/consistentid (parity fixtures; never edited)."""
    assert FIXTURES.is_dir(), f"parity fixtures not found at {FIXTURES}"
    return FIXTURES


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight other test processes for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def face_models():
    """The offline face analyzer (dlib, 128-D descriptor) and the landmark parser."""
    from idportrait.faces import get_face_analyzer, get_face_parser

    return get_face_analyzer("dlib"), get_face_parser("landmarks")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(base folder, adapter safetensors) of the demo: tiny SD1.5 + tiny ConsistentID, written to disk."""
    from idportrait.demo import build_demo_models

    return build_demo_models(tmp_path_factory.mktemp("tiny-models"))


def _assert_parity(name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> float:
    """allclose with the max abs diff in the message (and printed, for the parity table with ``-s``)."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual.double() - expected.double()).abs().max().item()
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), f"{name}: max abs diff {diff:.3e}"
    print(f"parity {name}: max abs diff {diff:.3e}")
    return diff


@pytest.fixture(scope="session")
def assert_parity() -> Callable[..., float]:
    """``assert_parity(name, actual, expected, atol, rtol)``: the tensors equal within allclose; returns the max abs
    diff (``-s`` prints one line per check)."""
    return _assert_parity
