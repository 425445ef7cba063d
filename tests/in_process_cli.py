"""Run ``idportrait`` in the test's own process, as the console entry point does (exit code, stderr)."""

from __future__ import annotations

import sys

from idportrait.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of ``idportrait *args`` through `idportrait.cli.main`."""
    monkeypatch.setattr(sys, "argv", ["idportrait", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err
