"""One ``from_pretrained`` wrapper for the metric models: hub id or local folder, clear error when absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from idportrait.errors import ModelNotFoundError

T = TypeVar("T")


def from_pretrained(cls: type[T], name_or_path: str | Path, **kwargs: Any) -> T:
    """``cls.from_pretrained(name_or_path)``; a missing model becomes `ModelNotFoundError` naming it."""
    try:
        return cls.from_pretrained(str(name_or_path), **kwargs)  # type: ignore[attr-defined]
    except OSError as err:
        raise ModelNotFoundError(
            f"could not load {cls.__name__} from {name_or_path!r} ({err}). "
            "Pass a local folder or make the hub reachable."
        ) from None
