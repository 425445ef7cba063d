from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from recipe import FIXTURES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """../shared/fixtures/consistentid (parity fixtures; never edited)."""
    assert FIXTURES.is_dir(), f"parity fixtures not found at {FIXTURES}"
    return FIXTURES
