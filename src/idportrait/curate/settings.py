"""The settings an output folder was curated with: a rerun resumes only under the same settings.

    <out>/settings.json   `CurateConfig.to_dict()` of the run that created the folder

A rerun with other thresholds into the same folder would mix decisions of two settings, so it stops
with one line naming the differing settings; ``overwrite`` clears the folder's outputs first.
"""

from __future__ import annotations

import json
from typing import Any

from idportrait.curate.config import CurateConfig
from idportrait.curate.writer import atomic_output, load_stats
from idportrait.errors import UserError

SETTINGS_FILE = "settings.json"
OUTPUT_DIRS = ("shards", "index", "decisions", "stats", "failures", "report")
"""Everything a run writes under ``out`` (cleared by ``overwrite``)."""
NOT_SETTINGS = ("face_model_dir",)
"""Config fields that say where things are, not how samples are decided."""


class SettingsMismatchError(UserError):
    """An output folder holds results of other settings than this run's."""


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON-normalised settings without the location-only fields (tuples become lists)."""
    return {k: v for k, v in json.loads(json.dumps(settings)).items() if k not in NOT_SETTINGS}


def previous_settings(out: str) -> dict[str, Any] | None:
    """The settings ``out`` was curated with: its settings.json, else the config of a finished shard."""
    import fsspec

    fs, _, (path,) = fsspec.get_fs_token_paths(f"{out.rstrip('/')}/{SETTINGS_FILE}")
    if fs.exists(path):
        with fs.open(path, "rb") as f:
            return json.loads(f.read())
    stats = load_stats(out)
    return stats[0].get("config") if stats else None


def differing(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``name: old -> new`` for every setting that differs."""
    before, now = comparable(before), comparable(now)
    return [
        f"{k}: {before.get(k)!r} -> {now.get(k)!r}"
        for k in sorted(set(before) | set(now))
        if before.get(k) != now.get(k)
    ]


def prepare_output(out: str, cfg: CurateConfig, overwrite: bool = False) -> None:
    """Check that ``out`` holds results of ``cfg`` (or nothing), or clear it; then record ``cfg``.

    Raises `SettingsMismatchError` naming the differing settings when ``out`` was curated with
    other settings and ``overwrite`` is off.
    """
    import fsspec

    root = out.rstrip("/")
    fs, _, (real,) = fsspec.get_fs_token_paths(root)
    if overwrite:
        for name in (*OUTPUT_DIRS, SETTINGS_FILE):
            if fs.exists(f"{real}/{name}"):
                fs.rm(f"{real}/{name}", recursive=True)
    before = previous_settings(out)
    if before is not None:
        changes = differing(before, cfg.to_dict())
        if changes:
            raise SettingsMismatchError(
                f"holds results of other settings ({'; '.join(changes)}); "
                "use another --out, the same settings to resume, or --overwrite",
                out,
            )
        return
    with atomic_output(f"{root}/{SETTINGS_FILE}") as f:
        f.write(json.dumps(cfg.to_dict(), indent=2).encode("utf-8"))
