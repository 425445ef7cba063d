"""Optional download stage: LAION url parquet -> webdataset shards with img2dataset (cluster extra).

Rows whose width/height columns are below ``min_side`` are dropped before any download (the
metadata pre-filter); the rest are fetched with ``resize_mode="no"`` and ``skip_reencode`` so the
curation cascade sees the original bytes. Failed urls are left out of the shards and counted in img2dataset's own
``*_stats.json`` files beside them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from idportrait.curate.readers import CAPTION_COLUMNS, HEIGHT_COLUMNS, URL_COLUMNS, WIDTH_COLUMNS, InputError


def metadata_prefilter(url_list: str, dest: str, min_side: int) -> int:
    """Copy the rows of ``url_list`` that can reach ``min_side`` (unknown sizes kept) to ``dest``; row count."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(url_list)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"not a readable parquet file ({err})", url_list) from None
    columns = table.column_names
    if not any(c in columns for c in URL_COLUMNS):
        raise InputError(f"no url column (expected one of {', '.join(URL_COLUMNS)})", url_list)
    width = next((c for c in WIDTH_COLUMNS if c in columns), None)
    height = next((c for c in HEIGHT_COLUMNS if c in columns), None)
    if width and height:
        big = pc.and_(pc.greater_equal(table[width], min_side), pc.greater_equal(table[height], min_side))
        table = table.filter(pc.or_kleene(pc.is_null(big), big))
    pq.write_table(table, dest)
    return table.num_rows


def download_shards(
    url_list: str,
    out: str,
    processes: int = 1,
    threads: int = 16,
    min_side: int = 512,
    timeout: int = 10,
) -> list[str]:
    """Run img2dataset on the pre-filtered rows; returns the written ``.tar`` shard paths."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        from img2dataset import download
    except ImportError as err:
        raise InputError(f"img2dataset is not installed (pip install 'idportrait[cluster]'): {err}") from None
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        filtered = str(Path(tmp) / "urls.parquet")
        metadata_prefilter(url_list, filtered, min_side)
        columns = pq.read_schema(filtered).names
        download(
            url_list=filtered,
            input_format="parquet",
            url_col=next(c for c in URL_COLUMNS if c in columns),
            caption_col=next((c for c in CAPTION_COLUMNS if c in columns), None),
            output_format="webdataset",
            output_folder=out,
            processes_count=processes,
            thread_count=threads,
            resize_mode="no",
            skip_reencode=True,
            timeout=timeout,
            retries=0,
            enable_wandb=False,
            distributor="multiprocessing",
        )
    return sorted(str(p) for p in Path(out).glob("*.tar"))
