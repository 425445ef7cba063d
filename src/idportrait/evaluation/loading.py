"""One ``from_pretrained`` wrapper for the metric models: hub id or local folder, clear error when absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from idportrait.hub import fetch

T = TypeVar("T")


def from_pretrained(cls: type[T], name_or_path: str | Path, option: str, **kwargs: Any) -> T:
    """``cls.from_pretrained(name_or_path)``; a missing model is a `ModelNotFoundError` naming it and ``option``."""

    def load(local_files_only: bool) -> T:
        return cls.from_pretrained(str(name_or_path), local_files_only=local_files_only, **kwargs)  # type: ignore[attr-defined]

    return fetch(cls.__name__, str(name_or_path), option, load)
