"""What an output folder was curated from and with: a rerun resumes only with the same inputs and settings.

    <out>/settings.json   `CurateConfig.to_dict()` of the run that created the folder, and under
                          ``inputs`` every input shard: name, path, size, modification stamp

A shard's outputs are named after its input (``stats/00000.json``), so a rerun over other inputs
(another folder whose files have the same names, an added, removed or rewritten file) would take
their outputs for its own; and a rerun with other thresholds would mix decisions of two settings.
Both stop with one line naming what differs; ``overwrite`` clears the folder's outputs first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from idportrait.curate.config import CurateConfig
from idportrait.curate.readers import Shard
from idportrait.curate.writer import load_stats
from idportrait.errors import UserError
from idportrait.shards.files import atomic_output, filesystem

SETTINGS_FILE = "settings.json"
OUTPUT_DIRS = ("shards", "index", "decisions", "stats", "failures", "report")
"""Everything a run writes under ``out`` (cleared by ``overwrite``)."""
NOT_SETTINGS = ("face_model_dir", "inputs")
"""settings.json fields that say where things are, not how samples are decided."""


class SettingsMismatchError(UserError):
    """An output folder holds results of other settings or other inputs than this run's."""


def check_out(out: str, inputs: list[str]) -> None:
    """`UserError` when ``out`` is an existing file, or (local paths) an input folder or inside one."""
    from fsspec.implementations.local import LocalFileSystem

    fs, real = filesystem(out)
    if fs.isfile(real):
        raise UserError("--out is an existing file; give a folder", out)
    if not isinstance(fs, LocalFileSystem):
        return
    target = Path(real).resolve()
    for spec in inputs:
        folder = Path(spec).resolve() if "://" not in spec else None
        if folder is not None and folder.is_dir() and (target == folder or folder in target.parents):
            raise UserError(f"--out is inside the input folder {spec}; a rerun would curate its own outputs", out)


def input_identities(shards: list[Shard]) -> list[dict[str, Any]]:
    """``{"name", "path", "size", "modified"}`` of each input shard: what a resumed run must find again."""
    return [{"name": s.name, "path": s.path, "size": s.size, "modified": s.modified} for s in shards]


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON-normalised settings without the location-only fields (tuples become lists)."""
    return {k: v for k, v in json.loads(json.dumps(settings)).items() if k not in NOT_SETTINGS}


def _read_json(fs: Any, path: str, what: str) -> dict[str, Any]:
    try:
        with fs.open(path, "rb") as f:
            record = json.loads(f.read())
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{what} is not valid JSON ({err}); delete it or rerun with --overwrite", path) from None
    if not isinstance(record, dict):
        raise UserError(f"{what} is not a JSON object; delete it or rerun with --overwrite", path)
    return record


def previous_settings(out: str) -> dict[str, Any] | None:
    """The settings ``out`` was curated with: its settings.json, else the config of a finished shard.

    A settings.json that is not a JSON object is a `UserError` naming it.
    """
    fs, path = filesystem(f"{out.rstrip('/')}/{SETTINGS_FILE}")
    if fs.exists(path):
        return _read_json(fs, path, SETTINGS_FILE)
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


def _listed(paths: list[str], limit: int = 3) -> str:
    more = f", and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def differing_inputs(before: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """What changed between two `input_identities` lists: added, removed, rewritten or renamed inputs."""
    old = {i["path"]: i for i in before}
    new = {i["path"]: i for i in now}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    both = sorted(set(old) & set(new))
    changed = [p for p in both if (old[p]["size"], old[p]["modified"]) != (new[p]["size"], new[p]["modified"])]
    renamed = [p for p in both if old[p]["name"] != new[p]["name"]]
    return [
        f"{len(found)} {what} ({_listed(found)})"
        for what, found in (("added", added), ("removed", removed), ("changed since", changed), ("renamed", renamed))
        if found
    ]


def _check_inputs_record(record: Any, path: str) -> None:
    """`UserError` unless ``record`` is a list of `input_identities` entries."""
    keys = {"name", "path", "size", "modified"}
    if not isinstance(record, list) or not all(isinstance(i, dict) and keys <= set(i) for i in record):
        raise UserError(
            f"{SETTINGS_FILE}: 'inputs' is not a list of input shards; delete it or rerun with --overwrite", path
        )


def _unrecorded_input_changes(out: str, shards: list[Shard]) -> list[str]:
    """For a folder from before inputs were recorded: finished shards whose source is not this run's input."""
    now = {s.name: s.path for s in shards}
    stats = [s for s in load_stats(out) if now.get(s["shard"]) != s.get("source")]
    return [f"{s['shard']} from {s.get('source')}, now {now.get(s['shard'])}" for s in stats]


def prepare_output(out: str, cfg: CurateConfig, shards: list[Shard], overwrite: bool = False) -> None:
    """Check that ``out`` holds results of ``cfg`` over ``shards`` (or nothing), or clear it; then record both.

    Raises `SettingsMismatchError` naming the differing settings or inputs when ``out`` was curated
    otherwise and ``overwrite`` is off.
    """
    root = out.rstrip("/")
    fs, real = filesystem(root)
    if overwrite:
        for name in (*OUTPUT_DIRS, SETTINGS_FILE):
            if fs.exists(f"{real}/{name}"):
                fs.rm(f"{real}/{name}", recursive=True)
    inputs = input_identities(shards)
    before = previous_settings(out)
    if before is not None:
        changes = differing(before, cfg.to_dict())
        if changes:
            raise SettingsMismatchError(
                f"holds results of other settings ({'; '.join(changes)}); "
                "use another --out, the same settings to resume, or --overwrite",
                out,
            )
        if "inputs" in before:
            _check_inputs_record(before["inputs"], f"{root}/{SETTINGS_FILE}")
            input_changes = differing_inputs(before["inputs"], inputs)
        else:
            input_changes = _unrecorded_input_changes(out, shards)
        if input_changes:
            raise SettingsMismatchError(
                f"holds results of other inputs ({'; '.join(input_changes)}); "
                "use another --out, the same inputs to resume, or --overwrite",
                out,
            )
        if "inputs" in before:
            return
    with atomic_output(f"{root}/{SETTINGS_FILE}") as f:
        f.write(json.dumps({**cfg.to_dict(), "inputs": inputs}, indent=2, ensure_ascii=False).encode("utf-8"))
