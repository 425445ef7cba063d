"""The bundled curation sample, built at run time from photos that ship inside installed packages.

``data/curate_sample/manifest.json`` lists the rows (captions in several languages, bad rows, the
decision each should get); `build_sample` renders them into LAION-style input shards:

    <dir>/laion-00000.parquet   url/caption/width/height/jpg columns, bad rows included
    <dir>/laion-00001.tar       img2dataset-style webdataset shard (jpg, txt, json)
    <dir>/laion-00002.tar       an empty shard
    <dir>/laion-00003.parquet   a shard missing its caption and size columns

Photos: scikit-image's astronaut (full frame: face about 3.4 % of the image; crops: > 4 %), coffee
and chelsea (no face), insightface's Tom_Hanks_54745.png (one face) and t1.jpg (six faces).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _insightface_image(name: str) -> Image.Image:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the curation sample needs the insightface package (its sample images)")
    return Image.open(Path(spec.origin).parent / "data" / "images" / name).convert("RGB")


def _skimage(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())


def _astronaut_crop() -> Image.Image:
    return _skimage("astronaut").crop((80, 0, 400, 320)).resize((640, 640), Image.LANCZOS)


PHOTOS: dict[str, Callable[[], Image.Image]] = {
    "astronaut": lambda: _skimage("astronaut"),
    "astronaut_crop": _astronaut_crop,
    "astronaut_crop_flipped": lambda: _astronaut_crop().transpose(Image.FLIP_LEFT_RIGHT),
    "astronaut_small": lambda: _skimage("astronaut").resize((256, 256), Image.LANCZOS),
    "tom_hanks": lambda: _insightface_image("Tom_Hanks_54745.png").resize((576, 576), Image.BICUBIC),
    "group": lambda: _insightface_image("t1.jpg"),
    "coffee": lambda: _skimage("coffee").resize((900, 600), Image.BICUBIC),
    "chelsea": lambda: _skimage("chelsea").resize((902, 600), Image.BICUBIC),
}
BROKEN_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
"""A JPEG header followed by nothing decodable."""


def load_manifest() -> dict[str, Any]:
    path = resources.files("idportrait") / "data" / "curate_sample" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _row_image(row: dict[str, Any], cache: dict[str, bytes]) -> tuple[bytes | None, int | None, int | None]:
    """(encoded bytes, width, height) of a manifest row's photo; sizes from the row win when given."""
    photo = row.get("photo")
    if photo is None:
        return None, row.get("width"), row.get("height")
    if photo == "broken":
        return BROKEN_JPEG, row.get("width", 800), row.get("height", 800)
    if photo not in cache:
        cache[photo] = _jpeg(PHOTOS[photo]())
    with Image.open(io.BytesIO(cache[photo])) as im:
        size = im.size
    return cache[photo], row.get("width", size[0]), row.get("height", size[1])


def _caption_bytes(row: dict[str, Any]) -> bytes | None:
    if "caption_hex" in row:
        return bytes.fromhex(row["caption_hex"])
    return None if row.get("caption") is None else row["caption"].encode("utf-8")


def _write_parquet(path: Path, shard: dict[str, Any], cache: dict[str, bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, row in enumerate(shard["rows"]):
        image, width, height = _row_image(row, cache)
        rows.append(
            {
                "key": f"{path.stem}-{i:04d}",
                "url": row.get("url", f"https://images.example.org/{path.stem}/{i:04d}.jpg" if image else None),
                "caption": row.get("caption"),
                "width": width,
                "height": height,
                "similarity": 0.3,
                "jpg": image,
            }
        )
    table = pa.Table.from_pylist(rows)
    table = table.drop_columns([c for c in shard.get("drop_columns", []) if c in table.column_names])
    pq.write_table(table, path)


def _write_tar(path: Path, shard: dict[str, Any], cache: dict[str, bytes], index: int) -> None:
    with tarfile.open(path, "w") as tar:
        for i, row in enumerate(shard["rows"]):
            key = f"{index:05d}{i:04d}"
            image, width, height = _row_image(row, cache)
            meta = {"key": key, "width": width, "height": height, "status": "success"}
            members = [("json", json.dumps(meta).encode()), ("txt", _caption_bytes(row))]
            if image is not None:
                members.insert(0, ("jpg", image))
            for ext, data in members:
                if data is None:
                    continue
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def build_sample(out_dir: str | Path) -> list[Path]:
    """Write the sample input shards into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[str, bytes] = {}
    paths = []
    for index, shard in enumerate(load_manifest()["shards"]):
        path = out_dir / shard["name"]
        if shard["format"] == "parquet":
            _write_parquet(path, shard, cache)
        else:
            _write_tar(path, shard, cache, index)
        paths.append(path)
    return paths


def expected_decisions() -> dict[str, str]:
    """Key -> the decision ("kept" or a drop reason) the manifest expects under default thresholds."""
    expected = {}
    for index, shard in enumerate(load_manifest()["shards"]):
        stem = shard["name"].rsplit(".", 1)[0]
        for i, row in enumerate(shard["rows"]):
            key = f"{stem}-{i:04d}" if shard["format"] == "parquet" else f"{index:05d}{i:04d}"
            expected[key] = row["expect"]
    return expected


def sample_image_array(photo: str) -> np.ndarray:
    """One of the sample photos as RGB uint8 [H, W, 3] (tests and benchmarks)."""
    return np.asarray(PHOTOS[photo]())
