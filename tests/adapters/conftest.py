from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def _assert_parity(name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> float:
    """allclose with the max abs diff in the message (and printed, for the parity table with ``-s``)."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual.double() - expected.double()).abs().max().item()
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), f"{name}: max abs diff {diff:.3e}"
    print(f"parity {name}: max abs diff {diff:.3e}")
    return diff


@pytest.fixture(scope="session")
def assert_parity() -> Callable[..., float]:
    return _assert_parity
