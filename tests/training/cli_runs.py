"""Running `idportrait` in-process the way a user does, for the training CLI tests."""

from __future__ import annotations

import sys

import pytest

from idportrait.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """Exit code and the lines on stderr (never a traceback)."""
    monkeypatch.setattr(sys, "argv", ["idportrait", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exit_.value.code, err.strip().splitlines()
