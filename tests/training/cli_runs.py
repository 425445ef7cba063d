"""Running `idportrait` in-process the way a user does, for the training CLI tests."""

from __future__ import annotations

import in_process_cli


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """Exit code and the lines on stderr (never a traceback)."""
    code, err = in_process_cli.run_cli(monkeypatch, capsys, *args)
    assert "Traceback" not in err
    return code, err.strip().splitlines()
