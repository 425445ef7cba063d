"""Safe image loading and atomic file writing, shared by every command."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from PIL import Image, UnidentifiedImageError

from idportrait.errors import ImageError

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
    import io

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
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (indented, UTF-8)."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def save_image(path: str | Path, image: Image.Image, **save_kwargs: Any) -> None:
    """Save a PIL image atomically; the format comes from the suffix."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower(), "PNG")
    with atomic_open(path, "wb") as f:
        image.save(f, format=fmt, **save_kwargs)


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
