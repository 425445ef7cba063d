"""Curation image stage: images/s against the number of local worker processes (1, 2), one table.

    python benchmarks/curate_image_stage.py [--shards 4] [--per-shard 10] [--detector dlib]

Input: ``--shards`` parquet shards of ``--per-shard`` rows each, every caption English with a person
keyword, so every row goes through the image stage (decode, size check, face detection with
embeddings, face filters) and the writer. Photos cycle through the bundled sample's
(astronaut crop, Tom Hanks, coffee, chelsea, astronaut). Wall time covers the whole `run_local`
call: worker start-up and model loading included (the offline dlib detector by default; the
FaceID-6M default insightface:antelopev2 needs its model pack locally). "shard s (sum)" adds up
each shard's seconds from its first sample to its last file (model loading included, process
start-up not). `benchmarks/curate_scale.py` measures each stage apart, downloads and Ray included.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from idportrait.curate.config import CurateConfig
from idportrait.curate.runner import run_local
from idportrait.curate.sample import PHOTOS
from idportrait.curate.writer import load_stats

CYCLE = ("astronaut_crop", "tom_hanks", "coffee", "chelsea", "astronaut")
CAPTIONS = ("Portrait of a young woman", "Actor smiling at the camera", "A woman drinking coffee")


def write_inputs(folder: Path, shards: int, per_shard: int) -> None:
    jpegs = {}
    for name in CYCLE:
        buf = io.BytesIO()
        PHOTOS[name]().save(buf, format="JPEG", quality=90)
        jpegs[name] = buf.getvalue()
    for s in range(shards):
        rows = [
            {
                "key": f"s{s}-{i}",
                "caption": CAPTIONS[i % len(CAPTIONS)],
                "jpg": jpegs[CYCLE[(s * per_shard + i) % len(CYCLE)]],
            }
            for i in range(per_shard)
        ]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"bench-{s:03d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=10)
    parser.add_argument("--detector", default="dlib")
    args = parser.parse_args()
    cfg = CurateConfig(detector=args.detector)
    images = args.shards * args.per_shard
    table = Table(title=f"Curation image stage, {images} images in {args.shards} shards ({args.detector})")
    for column in ("workers", "wall s", "images/s", "vs 1 worker", "shard s (sum)", "kept"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        write_inputs(inputs, args.shards, args.per_shard)
        base = None
        for workers in (1, 2):
            start = time.perf_counter()
            out = str(Path(tmp) / f"out{workers}")
            summary = run_local([str(inputs)], out, cfg, workers=workers)
            wall = time.perf_counter() - start
            busy = sum(s["seconds"] for s in load_stats(out))
            base = base or wall
            table.add_row(
                str(workers),
                f"{wall:.1f}",
                f"{images / wall:.2f}",
                f"{base / wall:.2f}x",
                f"{busy:.1f}",
                str(summary.kept),
            )
    Console().print(table)
    Console().print(f"CPU cores visible: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} during the run")


if __name__ == "__main__":
    main()
