"""`idportrait index PATH...`: write the index file of every tar shard or JSON-lines file that lacks one.

Shards written by `idportrait curate` come with theirs; older output, img2dataset's shards and other tools' get
one here in one streaming pass over their tar headers (or lines). Training does the same on its own when it
starts, so this command only moves that pass to a moment of your choosing (and to a machine near the data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def index_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Tar shards, JSON-lines files, or folders of them (not searched below).")
    ],
    lines: Annotated[
        bool, typer.Option("--lines", help="Index *.jsonl files (the FaceID-6M release, records.jsonl) instead.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild index files that are up to date.")] = False,
) -> None:
    """Index tar shards (default) or JSON-lines files: each sample's byte offsets, beside the file as .idx.arrow."""
    from rich.console import Console
    from rich.progress import Progress

    from idportrait.shards.files import file_size
    from idportrait.shards.index import find_sources
    from idportrait.shards.index_file import index_file_count, index_file_path, index_source

    kind = "lines" if lines else "tar"
    sources = find_sources(paths, kind)
    written = samples = 0
    with Progress(transient=True) as bar:
        task = bar.add_task(f"indexing {len(sources)} files", total=len(sources))
        for source in sources:
            count = None if force else index_file_count(index_file_path(source), kind, file_size(source))
            if count is None:
                count = index_source(source, kind)
                written += 1
            samples += count
            bar.advance(task)
    Console().print(
        f"{samples} samples in {len(sources)} files; {written} index files written, "
        f"{len(sources) - written} already up to date (beside each file, as *.idx.arrow)",
        soft_wrap=True,
    )
