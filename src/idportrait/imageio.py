"""Safe image loading and atomic file writing, shared by every command."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from PIL import Image, UnidentifiedImageError

from idportrait.errors import CheckpointError, ImageError, UserError, disk_full_error, find_disk_full

IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
"""Photo file suffix -> PIL format: the photos every command reads, and what `save_image` writes."""
IMAGE_SUFFIXES = tuple(IMAGE_FORMATS)
MAX_IMAGE_PIXELS = 64_000_000
"""Decompression-bomb guard: images with more pixels than this are refused (64 MP)."""


def check_pixels(width: int, height: int, name: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise `ImageError` naming ``name`` when a ``width`` x ``height`` image has more than ``max_pixels`` pixels."""
    if width * height > max_pixels:
        raise ImageError(
            f"image too large ({width}x{height} = {width * height / 1e6:.0f} MP, limit {max_pixels / 1e6:.0f} MP)",
            name,
        )


def load_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open an image file as RGB, with EXIF orientation applied.

    Raises `ImageError` naming the file when it is missing, not an image, corrupt,
    or larger than ``max_pixels``.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError("is a folder, not an image file", path)
    if not path.is_file():
        raise ImageError("file not found", path)
    try:
        with Image.open(path) as im:
            check_pixels(im.width, im.height, path, max_pixels)
            im.load()
            return _to_rgb(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a readable image file", path) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"corrupt or truncated image ({err})", path) from None


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode encoded image bytes (jpg/png/webp...) to RGB with the same checks as `load_image`."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            check_pixels(im.width, im.height, name, max_pixels)
            im.load()
            return _to_rgb(im)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"not a readable image ({type(err).__name__})", name) from None


def _to_rgb(im: Image.Image) -> Image.Image:
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):
        im = _gray_to_8bit(im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def _gray_to_8bit(im: Image.Image) -> Image.Image:
    """16-bit (``I;16*``) or 32-bit (``I``) grayscale -> 8-bit ``L``, scaling 0..65535 to 0..255.

    Pillow's own conversion clips every value above 255 to white. An ``I`` image whose values all fit in
    0..255 holds 8-bit data and is kept as it is.
    """
    import numpy as np

    values = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", size: int | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (text modes in UTF-8) and move it into place only on success.

    The file gets the permissions of any new file (0666 less the umask), so a shared output folder stays readable.
    On any failure the temporary file is removed; a full disk or quota (ENOSPC/EDQUOT) becomes one
    `DiskFullError` naming the folder, with ``size`` (the bytes to write, when the caller knows them), and a folder
    that cannot be written (read-only filesystem, no permission) one `UserError`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        if find_disk_full(err) is not None:
            raise disk_full_error(err, path, size) from None
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise UserError(f"cannot write {path.name} here ({err.strerror}); choose another output folder",
                            path.parent) from None  # fmt: skip
        raise
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, Exception) and find_disk_full(err) is not None:
            raise disk_full_error(err, path, size) from None
        raise


def append_lines(path: str | Path, text: str) -> None:
    """Append ``text`` (whole lines) to ``path`` after a newline, so a line cut short by a crash never swallows the
    next one, and fsync. A write that fails (a full disk) is cut back off, so no half line is left behind; a full
    disk becomes one `DiskFullError`."""
    with open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        try:
            if size > 0:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        except Exception as err:
            with contextlib.suppress(OSError):
                f.truncate(size)
            if find_disk_full(err) is None:
                raise
            raise disk_full_error(err, path, len(text.encode("utf-8"))) from None


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically (`atomic_open`; a full disk names the size needed)."""
    with atomic_open(path, "wb", size=len(data)) as f:
        f.write(data)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (indented, UTF-8)."""
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_image(path: str | Path, image: Image.Image, **save_kwargs: Any) -> None:
    """Save a PIL image atomically; the format comes from the suffix."""
    path = Path(path)
    buffer = io.BytesIO()
    image.save(buffer, format=IMAGE_FORMATS.get(path.suffix.lower(), "PNG"), **save_kwargs)
    write_bytes(path, buffer.getvalue())


def write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save`` written atomically, with the header's metadata keys sorted: the library writes
    them in a random order, so the same tensors and metadata would give other bytes in every process."""
    from safetensors.torch import save

    write_bytes(path, sorted_safetensors_metadata(save(tensors, metadata=metadata)))
    return Path(path)


def sorted_safetensors_metadata(data: bytes) -> bytes:
    """A safetensors file's bytes with the ``__metadata__`` of its JSON header in key order (tensors unchanged)."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads its header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


def read_safetensors(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(every tensor by key, the header's metadata, {} without) of a safetensors file, on the CPU; anything that
    is not one (or cannot be read) is a `CheckpointError` naming ``path``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as err:
        raise CheckpointError(f"not a safetensors file ({type(err).__name__})", path) from None


def check_output_folder(out: Path, option: str = "--out") -> None:
    """An output folder option (``--out``) must be a folder or not exist yet: one `UserError` line otherwise."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} must be a folder, and this is a file", out)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows (dicts) -> CSV with the union of their keys as header, atomically; floats to 4 decimals, NaN empty."""
    header = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_open(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    return path


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 4)
    return value
