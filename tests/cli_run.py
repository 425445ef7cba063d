"""Run the ``idportrait`` console entry point in-process, as a user runs it: exit code, stdout, stderr."""

from __future__ import annotations

import sys

import pytest

from idportrait.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``idportrait ARGS...`` through `idportrait.cli.main`, which always exits
    (user errors: one ``error:`` line, exit code 2)."""
    monkeypatch.setattr(sys, "argv", ["idportrait", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def run_cli_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str]]:
    """Exit code and the lines on stderr of ``idportrait ARGS...``, which hold no traceback."""
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert "Traceback" not in err
    return code, err.strip().splitlines()
