"""Input shards: LAION-style parquet (url/caption/width/height...) and img2dataset webdataset tars.

Column names are taken as LAION and img2dataset write them (``URL``, ``TEXT``, ``WIDTH``, ``HEIGHT``,
``NSFW``, ``punsafe``, ``pwatermark``, ``LANGUAGE``, ``similarity``...) or in lower case; columns
the cascade does not use are passed through to the output json.

A shard is the unit of work: it is processed whole by one worker and leaves exactly one set of
output files, so a killed job resumes shard by shard. Paths go through fsspec (local, s3://,
memory://, ...). Bad rows become samples with a drop reason; a file that is not a parquet/tar at
all raises `InputError` naming it.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from idportrait.curate import reasons
from idportrait.curate.download import detail_of_message
from idportrait.curate.types import Sample
from idportrait.errors import UserError
from idportrait.shards.files import filesystem

CAPTION_COLUMNS = ("caption", "TEXT", "text")
URL_COLUMNS = ("url", "URL")
WIDTH_COLUMNS = ("width", "WIDTH", "original_width")
HEIGHT_COLUMNS = ("height", "HEIGHT", "original_height")
KEY_COLUMNS = ("key", "SAMPLE_ID")
IMAGE_COLUMNS = ("jpg", "image", "image_bytes", "png", "webp")
LANGUAGE_COLUMNS = ("LANGUAGE", "language", "lang")
NSFW_COLUMNS = ("NSFW", "nsfw")
PUNSAFE_COLUMNS = ("punsafe",)
PWATERMARK_COLUMNS = ("pwatermark",)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SHARD_EXTENSIONS = (".parquet", ".tar")


class InputError(UserError):
    """An input shard that cannot be read at all (not a parquet/tar file, truncated, unknown type)."""


@dataclass(frozen=True)
class Shard:
    """One input file and the stem its outputs are named after (unique within a job).

    size, modified: the file's size in bytes and modification stamp (mtime, LastModified or ETag, as
    the filesystem gives it) when listed: its identity for resuming (`settings.input_identities`).
    """

    path: str
    name: str
    size: int | None = None
    modified: str | None = None


def _modified(info: dict[str, Any]) -> str | None:
    stamp = next((info[k] for k in ("mtime", "LastModified", "last_modified", "ETag", "created") if k in info), None)
    if isinstance(stamp, datetime.datetime):
        stamp = stamp.timestamp()
    return None if stamp is None else str(stamp)


def is_img2dataset_metadata(path: str, siblings: set[str]) -> bool:
    """img2dataset's own ``<n>.parquet`` beside its ``<n>.tar`` and ``<n>_stats.json``: a download record.

    Never an input: its successful rows are the tar's samples, its failed rows are read with the tar (`read_shard`).
    """
    stem = path.rsplit(".", 1)[0]
    return path.endswith(".parquet") and f"{stem}.tar" in siblings and f"{stem}_stats.json" in siblings


def list_shards(inputs: list[str]) -> list[Shard]:
    """Expand files, directories and globs into shards, sorted by path; unique output names."""
    import glob

    from fsspec.implementations.local import LocalFileSystem

    files: dict[str, dict[str, Any]] = {}
    for spec in inputs:
        fs, root = filesystem(spec)
        expanded = sorted(fs.glob(root)) if glob.has_magic(root) else [root]
        for path in expanded:
            if fs.isdir(path):
                found = fs.find(path, detail=True)
                inside = set(found)
                found = {p: i for p, i in found.items() if p.endswith(SHARD_EXTENSIONS)}
                found = {p: i for p, i in found.items() if not is_img2dataset_metadata(p, inside)}
            elif fs.exists(path):
                found = {path: fs.info(path)}
            else:
                raise InputError("input not found", path)
            for p, info in sorted(found.items()):
                if not p.endswith(SHARD_EXTENSIONS):
                    raise InputError(f"unknown input type (expected {' or '.join(SHARD_EXTENSIONS)})", p)
                if info.get("type") != "file":
                    raise InputError("not a regular file (a pipe, socket or device cannot be a shard)", p)
                files[p if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(p)] = info
    if not files:
        raise InputError(f"no {' or '.join(SHARD_EXTENSIONS)} files found in {', '.join(inputs)}")
    shards, seen = [], set()
    for path in sorted(files):
        stem = posixpath.basename(path).rsplit(".", 1)[0]
        name, n = stem, 1
        while name in seen:
            name, n = f"{stem}-{n}", n + 1
        seen.add(name)
        shards.append(Shard(path, name, files[path].get("size"), _modified(files[path])))
    return shards


def read_shard(shard: Shard) -> Iterator[Sample]:
    """Samples of one shard, in file order.

    An img2dataset tar is followed by the rows img2dataset could not fetch, from its own parquet beside
    it (`is_img2dataset_metadata`): samples without bytes, decided ``download_failed:<detail>`` or
    ``broken_image``, so every url it was given is decided once.
    """
    if shard.path.endswith(".parquet"):
        return _read_parquet(shard)
    return itertools.chain(_read_tar(shard), _img2dataset_failures(shard))


def decode_caption(raw: bytes | str | None) -> tuple[str | None, str | None]:
    """(caption, load error): strict UTF-8; empty or whitespace-only captions count as missing."""
    if not isinstance(raw, (str, bytes)):
        return None, reasons.MISSING_CAPTION
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, reasons.CAPTION_NOT_UTF8
    text = raw.strip()
    return (text, None) if text else (None, reasons.MISSING_CAPTION)


def _size(value: Any) -> int | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or value <= 0 else int(value)


def _score(value: Any) -> float | None:
    """A probability column value as float; None when missing or not a number."""
    if value is None or isinstance(value, (str, bytes, bool)):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first(names: tuple[str, ...], columns: list[str] | set[str] | dict) -> str | None:
    return next((c for c in names if c in columns), None)


LAION_FIELDS: dict[str, tuple[tuple[str, ...], Any]] = {
    "language": (LANGUAGE_COLUMNS, _text),
    "nsfw": (NSFW_COLUMNS, _text),
    "punsafe": (PUNSAFE_COLUMNS, _score),
    "pwatermark": (PWATERMARK_COLUMNS, _score),
}
"""Sample field -> (accepted column names, value parser) of LAION's language and safety columns."""


def laion_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Sample keyword arguments from one row's LAION language/safety columns (also kept in ``meta``)."""
    found = {}
    for field_name, (names, parse) in LAION_FIELDS.items():
        column = _first(names, values)
        if column is not None:
            found[field_name] = parse(values[column])
    return found


def _read_parquet(shard: Shard) -> Iterator[Sample]:
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fsspec.open(shard.path, "rb") as f:
        try:
            parquet = pq.ParquetFile(f)
            columns = parquet.schema_arrow.names
            batches = parquet.iter_batches(batch_size=1024)
            col = {
                "caption": _first(CAPTION_COLUMNS, columns),
                "url": _first(URL_COLUMNS, columns),
                "width": _first(WIDTH_COLUMNS, columns),
                "height": _first(HEIGHT_COLUMNS, columns),
                "key": _first(KEY_COLUMNS, columns),
                "image": _first(IMAGE_COLUMNS, columns),
            }
            used = {c for c in col.values() if c}
            row = 0
            for batch in batches:
                data = {}
                for name in batch.schema.names:
                    array = batch.column(name)
                    if name == col["caption"] and pa.types.is_string(array.type):
                        array = array.cast(pa.binary())  # decode ourselves: strict UTF-8, per row
                    elif name == col["caption"] and pa.types.is_large_string(array.type):
                        array = array.cast(pa.large_binary())
                    data[name] = array.to_pylist()
                for i in range(batch.num_rows):
                    yield _parquet_sample(shard, row, {k: v[i] for k, v in data.items()}, col, used)
                    row += 1
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"not a readable parquet file ({err})", shard.path) from None


def _parquet_sample(shard: Shard, row: int, values: dict[str, Any], col: dict[str, str | None], used: set) -> Sample:
    caption, error = decode_caption(values[col["caption"]]) if col["caption"] else (None, reasons.MISSING_CAPTION)
    key = values.get(col["key"]) if col["key"] else None
    image = values.get(col["image"]) if col["image"] else None
    url = values.get(col["url"]) if col["url"] else None
    meta = {k: v for k, v in values.items() if k not in used and isinstance(v, (str, int, float, bool))}
    return Sample(
        key=str(key) if key is not None else f"{shard.name}-{row:07d}",
        caption=caption,
        width=_size(values.get(col["width"])) if col["width"] else None,
        height=_size(values.get(col["height"])) if col["height"] else None,
        url=url if isinstance(url, str) else None,
        image_bytes=image if isinstance(image, bytes) and image else None,
        meta=meta,
        load_error=error,
        **laion_fields(values),
    )


def _read_tar(shard: Shard) -> Iterator[Sample]:
    """webdataset convention: members ``<key>.<ext>`` grouped by key (img2dataset: jpg, txt, json)."""
    import fsspec

    with fsspec.open(shard.path, "rb") as f:
        if not f.read(1):
            return  # an empty shard holds no samples
        f.seek(0)
        try:
            with tarfile.open(fileobj=f, mode="r|*") as tar:
                group: dict[str, bytes] = {}
                current = None
                for member in tar:
                    if not member.isfile():
                        continue
                    directory, base = posixpath.split(member.name)
                    if "." not in base:
                        continue
                    stem, ext = base.split(".", 1)
                    key = posixpath.join(directory, stem)
                    if key != current and group:
                        yield _tar_sample(current, group)
                        group = {}
                    current = key
                    group[ext.lower()] = tar.extractfile(member).read()
                if group:
                    yield _tar_sample(current, group)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise InputError(f"not a readable tar shard ({err})", shard.path) from None


def _tar_sample(key: str, group: dict[str, bytes]) -> Sample:
    try:
        meta = json.loads(group["json"]) if "json" in group else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    raw_caption = group.get("txt", group.get("caption"))
    if raw_caption is None and isinstance(meta.get("caption"), str):
        raw_caption = meta["caption"]
    caption, error = decode_caption(raw_caption)
    image = next((group[e] for e in IMAGE_EXTENSIONS if e in group), None)
    width = _size(meta.get("width", meta.get("original_width")))
    height = _size(meta.get("height", meta.get("original_height")))
    keep_meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) and k != "caption"}
    return Sample(
        key=str(meta.get("key") or key),
        caption=caption,
        width=width,
        height=height,
        url=meta.get("url") if isinstance(meta.get("url"), str) else None,
        image_bytes=image or None,
        meta=keep_meta,
        load_error=error,
        **laion_fields(meta),
    )


def _img2dataset_failures(shard: Shard) -> Iterator[Sample]:
    """The rows of img2dataset's ``<n>.parquet`` beside the tar that did not succeed, in its order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, stem = filesystem(shard.path.rsplit(".", 1)[0])
    parquet, stats = f"{stem}.parquet", f"{stem}_stats.json"
    if not (fs.exists(parquet) and fs.exists(stats)):
        return
    try:
        with fs.open(parquet, "rb") as f:
            rows = pq.read_table(f).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"img2dataset's record of failed downloads is not readable ({err})", parquet) from None
    for row in rows:
        if row.get("status") == "success" or not isinstance(row.get("key"), str):
            continue
        caption, error = decode_caption(row.get("caption"))
        failed_download = row.get("status") == "failed_to_download"
        detail = detail_of_message(row.get("error_message"))
        meta = {k: v for k, v in row.items() if k not in IMG2DATASET_COLUMNS and isinstance(v, (str, int, float, bool))}
        yield Sample(
            key=row["key"],
            caption=caption,
            url=row.get("url") if isinstance(row.get("url"), str) else None,
            meta=meta,
            load_error=error,
            fetch_error=reasons.download_failed(detail) if failed_download else None,
            **laion_fields(row),
        )


IMG2DATASET_COLUMNS = frozenset(
    ("caption", "url", "key", "status", "error_message", "width", "height", "original_width", "original_height",
     "exif", "sha256")
)  # fmt: skip
"""Columns of img2dataset's parquet that are its own record, not the input's."""
