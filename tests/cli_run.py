"""Run the ``idportrait`` console entry point in-process, as a user runs it: exit code, stdout, stderr."""

from __future__ import annotations

import sys

from idportrait.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``idportrait ARGS...`` through `idportrait.cli.main` (user errors: one ``error:`` line, exit code 2)."""
    monkeypatch.setattr(sys, "argv", ["idportrait", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
