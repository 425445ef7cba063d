"""User-facing errors: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input (file, option, checkpoint), not a bug.

    The CLI prints ``str(err)`` on one line and exits with ``exit_code``.
    """

    exit_code: int = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ImageError(UserError):
    """Unreadable, corrupt, empty or oversized image."""


class NoFaceError(UserError):
    """No (usable) face in an image."""


class CheckpointError(UserError):
    """A checkpoint that is missing, of the wrong format, or has wrong/missing keys."""


class ModelNotFoundError(UserError):
    """A model that could not be fetched from the hub or found locally."""
