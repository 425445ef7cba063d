"""Training checkpoints that hold only data: safetensors, JSON and weights-only tensor files, never code.

    checkpoints/checkpoint_<n>/
        model.safetensors           every weight of the trained module
        optimizer.pt                the optimizer state (tensors and numbers; read with ``weights_only=True``)
        scaler.json                 the fp16 gradient scaler state (only with ``--mixed-precision fp16``)
        random_states_<rank>.json   Python, NumPy and torch RNG states of each process
        state.json                  progress (optimizer steps, global samples seen), accelerate's micro-step,
                                    the process count, the run's settings and its data's fingerprint

``state.json`` is written last, once every process is done: a folder without it (killed mid-save) is skipped.
A resume refuses a checkpoint whose settings or data differ from the run's, and any file that is not plain data.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from idportrait.errors import CheckpointError
from idportrait.hub import first_line, read_torch_file
from idportrait.imageio import atomic_open, write_json
from idportrait.shards.index import fingerprint_changes

STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.pt"
SCALER = "scaler.json"
LEGACY_MARKER = "idportrait_complete"
"""The completion marker of checkpoints saved by accelerate's ``save_state`` (pickled optimizer/RNG state)."""


def rng_file(folder: Path, rank: int) -> Path:
    return folder / f"random_states_{rank}.json"


def number(folder: Path) -> int:
    return int(folder.name.split("_")[-1])


def checkpoint_folders(checkpoints: Path) -> list[Path]:
    """``checkpoint_<n>`` folders, oldest first (complete or not)."""
    found = (p for p in checkpoints.glob("checkpoint_*") if p.is_dir() and p.name.split("_")[-1].isdigit())
    return sorted(found, key=number)


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint; a newest one in the old pickled format is refused."""
    saved = [f for f in checkpoint_folders(checkpoints) if is_complete(f)]
    if not saved:
        return None
    if not (saved[-1] / STATE).is_file():
        raise CheckpointError(
            "saved as pickles by an older idportrait, which a resume no longer unpickles; "
            "rerun with --no-resume or another --output-dir",
            saved[-1],
        )
    return saved[-1]


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states as JSON-able lists."""
    version, python_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(python_state), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def is_complete(folder: Path) -> bool:
    """A checkpoint is complete once its ``state.json`` (written last) exists (or the old format's marker)."""
    return (folder / STATE).is_file() or (folder / LEGACY_MARKER).is_file()


def new_checkpoint_folder(checkpoints: Path) -> Path:
    """Make ``checkpoint_<last + 1>`` (main process); folders of a save that never completed are removed first."""
    folders = checkpoint_folders(checkpoints)
    folder = checkpoints / f"checkpoint_{number(folders[-1]) + 1 if folders else 0}"
    for unfinished in (f for f in folders if not is_complete(f)):
        shutil.rmtree(unfinished)
    folder.mkdir(parents=True)
    return folder


def prune_checkpoints(checkpoints: Path, total_limit: int | None) -> None:
    """Delete the oldest complete checkpoints beyond ``total_limit`` (main process, after a save completed): the
    newest complete one is never deleted before its successor exists, so a failed save loses nothing."""
    if total_limit is None:
        return
    complete = [f for f in checkpoint_folders(checkpoints) if is_complete(f)]
    for old in complete[: max(len(complete) - total_limit, 0)]:
        shutil.rmtree(old)


def save_weights(folder: Path, model: nn.Module, optimizer: Any, scaler: Any) -> None:
    """Write the model, optimizer and (fp16) scaler state into ``folder`` (main process)."""
    from safetensors.torch import save_model

    save_model(model, str(folder / MODEL))
    with atomic_open(folder / OPTIMIZER, "wb") as f:
        torch.save(optimizer.state_dict(), f)
    if scaler is not None:
        write_json(folder / SCALER, scaler.state_dict())


def read_state(folder: Path) -> dict[str, Any]:
    return _read_json(folder / STATE)


def load_weights(folder: Path, model: nn.Module, optimizer: Any, scaler: Any, device: torch.device) -> None:
    """Load what `save_weights` wrote; anything that is not plain data raises `CheckpointError` unread."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(folder / MODEL), strict=True, device="cpu" if device.type == "cpu" else str(device))
    except (OSError, RuntimeError, SafetensorError) as err:
        raise CheckpointError(f"unusable model weights ({first_line(err)})", folder / MODEL) from None
    optimizer_state = read_torch_file(folder / OPTIMIZER, "optimizer state")
    try:
        optimizer.load_state_dict(optimizer_state)
    except (ValueError, KeyError, TypeError) as err:
        reason = f"optimizer state does not fit this run ({first_line(err)})"
        raise CheckpointError(reason, folder / OPTIMIZER) from None
    if scaler is not None:
        scaler.load_state_dict(_read_json(folder / SCALER))


def load_rng_state(folder: Path, rank: int) -> None:
    path = rng_file(folder, rank)
    try:
        set_rng_state(_read_json(path))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"not an RNG state ({first_line(err)})", path) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError("missing from the checkpoint", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"not valid JSON ({first_line(err)})", path) from None


def check_settings(folder: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume from ``folder`` when the run's settings are not the ones its checkpoint was trained with."""
    differ = [
        f"{key} {current.get(key)!r} (checkpoint: {saved.get(key)!r})"
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key) != current.get(key)
    ]
    if differ:
        raise CheckpointError(
            f"cannot resume with other settings: {', '.join(differ)}; "
            "rerun with the checkpoint's settings, --no-resume or another --output-dir",
            folder,
        )


def check_data(folder: Path, saved: dict[str, Any], current: dict[str, Any], allow_changed: bool) -> list[str]:
    """Refuse to resume from ``folder`` on data other than its own (the index fingerprints differ), unless
    ``allow_changed``; returns what changed (empty when nothing did)."""
    changes = fingerprint_changes(saved, current)
    if changes and not allow_changed:
        shown = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
        raise CheckpointError(
            f"cannot resume on other data: {shown}; rerun with the checkpoint's data, --allow-changed-data to go "
            "on with this data from the same sample position, --no-resume or another --output-dir",
            folder,
        )
    return changes
