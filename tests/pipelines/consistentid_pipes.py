"""ConsistentID SD1.5 pipelines of tiny models, loaded through the real loaders, for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import torch

from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
from idportrait.pipelines.loading import load_sd15_pipeline


def load_pipe(base: str | Path, adapter: str | Path, dtype: torch.dtype | None = None) -> ConsistentIDPipeline:
    """The base folder with the adapter file loaded into it (CPU, float32 unless ``dtype``), progress bars off."""
    pipe = load_sd15_pipeline(ConsistentIDPipeline, str(base), dtype=dtype)
    pipe.load_consistentid(str(adapter))
    pipe.set_progress_bar_config(disable=True)
    return pipe
