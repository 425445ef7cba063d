"""User-facing errors: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
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


class DiskFullError(UserError):
    """A write that found no space left (ENOSPC) or the user's quota used up (EDQUOT); see `disk_full_error`."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_MESSAGES = ("no space left on device", "disk quota exceeded", "database or disk is full")
"""How libraries that do not keep the errno (torch, sqlite, pyarrow) say the same, lower-cased."""


def original_user_error(err: UserError) -> UserError:
    """The `UserError` a framework wrapped, or ``err`` itself. Ray re-raises a task's exception as a subclass of
    both its own error and the task's exception class, whose text is the whole remote traceback; the task's own
    exception (its one line) is its ``cause``."""
    while isinstance(getattr(err, "cause", None), UserError) and err.cause is not err:
        err = err.cause
    return err


def find_disk_full(err: BaseException) -> BaseException | None:
    """The exception in ``err``'s chain (causes, contexts, a Ray task's cause) that says the disk is full, or None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return current
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        if any(text in str(current).lower() for text in DISK_FULL_MESSAGES):
            return current
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return None


def disk_full_error(err: BaseException, path: str | Path | None = None, needed: int | None = None) -> DiskFullError:
    """One line for a write that ran out of space: the folder, what was written, the space needed (when known) and
    the space left.

    ``path``: the file being written (default: the file the OSError names); ``needed``: its size in bytes.
    """
    if isinstance(err, DiskFullError):
        return err
    if path is None and isinstance(err, OSError) and err.filename:
        path = err.filename
    quota = (isinstance(err, OSError) and err.errno == errno.EDQUOT) or "quota" in str(err).lower()
    cause = "disk quota exceeded" if quota else "no space left on the device"
    if path is None:
        return DiskFullError(f"{cause} while writing the outputs; free some space and rerun")
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    details = [f"writing {path.name}" + (f" needs {_size(needed)}" if needed is not None else "")]
    with contextlib.suppress(OSError):
        details.append(f"{_size(shutil.disk_usage(folder).free)} free")
    return DiskFullError(
        f"{cause} ({', '.join(details)}); free some space and rerun",
        folder,
    )


@contextlib.contextmanager
def writing_into(folder: str | Path) -> Iterator[None]:
    """Any full-disk error raised inside (by a library that names no file) becomes one `DiskFullError` naming
    ``folder``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if find_disk_full(err) is None:
            raise
        raise disk_full_error(err, folder) from None


def _size(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``: a byte count for people (powers of 1000)."""
    units = ("B", "KB", "MB", "GB", "TB")
    k = 0
    while n >= 1000 and k < len(units) - 1:
        n, k = n / 1000, k + 1
    return f"{n:.0f} B" if k == 0 else f"{n:.1f} {units[k]}"
