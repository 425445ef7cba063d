"""Optional download stage: LAION url parquet -> webdataset shards with img2dataset (cluster extra).

    url list --text_stage--> the rows that can still be kept (captions, safety columns, metadata size,
             language, person) --img2dataset--> <out>/00000.tar, 00001.tar ... (``shard_size`` rows each,
             so `curate run --workers N` has shards to share), and img2dataset's own 00000.parquet +
             00000_stats.json beside each tar, recording every url it was given and why it failed
             <out>/text_stage.json: rows in, rows passed on, drops per reason

Nothing is downloaded for a row the text stage drops. Images are fetched with ``resize_mode="no"`` and
``skip_reencode`` so the cascade sees the original bytes. `curate run <out>` reads the tars and, after
each, the rows img2dataset could not fetch (`readers.read_shard`); it never takes img2dataset's parquet
files for inputs. So every url passed on is decided once, its failure named like curate's own
(``download_failed:http_404``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

from idportrait.curate.cascade import text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.readers import (
    CAPTION_COLUMNS,
    HEIGHT_COLUMNS,
    KEY_COLUMNS,
    URL_COLUMNS,
    WIDTH_COLUMNS,
    InputError,
    Shard,
    read_shard,
)
from idportrait.shards.files import atomic_output

TEXT_STAGE_FILE = "text_stage.json"


def text_prefilter(url_list: str, dest: str, cfg: CurateConfig, batch: int = 1024) -> dict[str, Any]:
    """Copy the rows of ``url_list`` that pass `text_stage` to ``dest``; the counts (rows, passed, dropped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(url_list)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"not a readable parquet file ({err})", url_list) from None
    if not any(c in table.column_names for c in URL_COLUMNS):
        raise InputError(f"no url column (expected one of {', '.join(URL_COLUMNS)})", url_list)
    passed: list[int] = []
    dropped: Counter[str] = Counter()
    samples = read_shard(Shard(url_list, Path(url_list).stem))
    start = 0
    while chunk := list(islice(samples, batch)):
        for i, decision in enumerate(text_stage(chunk, cfg)):
            if decision.keep:
                passed.append(start + i)
            else:
                dropped[decision.reason] += 1
        start += len(chunk)
    pq.write_table(table.take(passed), dest)
    return {"source": url_list, "rows": table.num_rows, "passed": len(passed), "dropped": dict(sorted(dropped.items()))}


def download_shards(
    url_list: str,
    out: str,
    cfg: CurateConfig,
    processes: int = 1,
    threads: int = 16,
    shard_size: int = 1000,
    timeout: int = 10,
) -> tuple[list[str], dict[str, Any]]:
    """Run the text stage, then img2dataset on what passed; (the written ``.tar`` paths, the text-stage counts)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        from img2dataset import download
    except ImportError as err:
        raise InputError(f"img2dataset is not installed (pip install 'idportrait[cluster]'): {err}") from None
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        filtered = str(Path(tmp) / "urls.parquet")
        counts = text_prefilter(url_list, filtered, cfg)
        columns = pq.read_schema(filtered).names
        url_col = next(c for c in URL_COLUMNS if c in columns)
        caption_col = next((c for c in CAPTION_COLUMNS if c in columns), None)
        own = {url_col, caption_col, *WIDTH_COLUMNS, *HEIGHT_COLUMNS, *KEY_COLUMNS}
        if counts["passed"]:
            download(
                url_list=filtered,
                input_format="parquet",
                url_col=url_col,
                caption_col=caption_col,
                save_additional_columns=[c for c in columns if c not in own] or None,
                output_format="webdataset",
                output_folder=out,
                number_sample_per_shard=shard_size,
                processes_count=processes,
                thread_count=threads,
                resize_mode="no",
                skip_reencode=True,
                timeout=timeout,
                retries=0,
                enable_wandb=False,
                distributor="multiprocessing",
            )
    with atomic_output(f"{out.rstrip('/')}/{TEXT_STAGE_FILE}") as f:
        f.write(json.dumps(counts, indent=2, ensure_ascii=False).encode("utf-8"))
    return sorted(str(p) for p in Path(out).glob("*.tar")), counts
