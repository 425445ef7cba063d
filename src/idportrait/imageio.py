"""Safe image loading and atomic file writing, shared by every command."""

from __future__ import annotations

import contextlib
import json
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
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


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
