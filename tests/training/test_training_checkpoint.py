"""Checkpoints hold only data: a resume never unpickles code, and refuses other settings with one line."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from training_shards import write_faceid_shard

from cli_run import run_cli_lines
from idportrait.training import checkpoint as ckpt


class CreatesFile:
    """Unpickling this object creates ``path``: the payload of a crafted checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def train_args(data: Path, out: Path, base: Path, steps: int = 2, rank: int = 4) -> list[str]:
    return ["train", "ipadapter-faceid", "--data", str(data), "--output-dir", str(out), "--base", str(base),
            "--resolution", "32", "--batch-size", "2", "--max-steps", str(steps), "--checkpointing-steps", "1",
            "--lora-rank", str(rank), "--num-workers", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory, tiny_base) -> tuple[Path, Path]:
    """(shard, run folder) of a CLI run stopped after step 1's checkpoint."""
    from typer.testing import CliRunner

    from idportrait.cli import app

    root = tmp_path_factory.mktemp("one_step")
    shard = write_faceid_shard(root / "shard.tar", n=4)
    result = CliRunner().invoke(app, train_args(shard, root / "run", tiny_base, steps=1), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return shard, root / "run"


def copy_run(one_step_run, tmp_path) -> tuple[Path, Path]:
    shard, run = one_step_run
    return shard, Path(shutil.copytree(run, tmp_path / "run"))


def test_checkpoint_holds_only_data_files(one_step_run):
    folder = one_step_run[1] / "checkpoints" / "checkpoint_0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.safetensors", "optimizer.pt", "random_states_0.json", "state.json",
    ]  # fmt: skip
    state = ckpt.read_state(folder)
    assert (state["global_step"], state["samples_seen"], state["num_processes"]) == (1, 2, 1)
    assert state["settings"]["lora_rank"] == 4 and state["settings"]["method"] == "FaceIDObjective"
    assert state["settings"]["global_batch_size"] == 2 and "data" not in state["settings"]
    shard = one_step_run[0]
    assert state["data"] == {"kind": "tar", "samples": 4, "sources": [[str(shard), shard.stat().st_size, 4]]}


def test_pickled_payload_in_optimizer_state_is_refused_and_never_runs(monkeypatch, capsys, tmp_path, tiny_base,
                                                                      one_step_run):  # fmt: skip
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(CreatesFile(probe)))
    assert probe.exists()  # the payload does run when unpickled

    shard, run = copy_run(one_step_run, tmp_path)
    marker = tmp_path / "marker"
    torch.save(CreatesFile(marker), run / "checkpoints" / "checkpoint_0" / "optimizer.pt")
    code, lines = run_cli_lines(monkeypatch, capsys, *train_args(shard, run, tiny_base))
    assert code == 2
    err = lines[-1]  # after the library's weight loading bars
    assert err.startswith("error: ")
    assert "optimizer.pt: not a usable optimizer state: it holds a reference to io.open" in err
    assert not marker.exists()


def test_old_pickled_checkpoint_is_refused_unread(monkeypatch, capsys, tmp_path, tiny_base, one_step_run):
    shard, run = copy_run(one_step_run, tmp_path)
    old = run / "checkpoints" / "checkpoint_1"  # as accelerate's save_state wrote it
    old.mkdir()
    marker = tmp_path / "marker"
    (old / "custom_checkpoint_0.pkl").write_bytes(pickle.dumps(CreatesFile(marker)))
    (old / "random_states_0.pkl").write_bytes(pickle.dumps(CreatesFile(marker)))
    (old / ckpt.LEGACY_MARKER).touch()
    code, [err] = run_cli_lines(monkeypatch, capsys, *train_args(shard, run, tiny_base))  # refused before models load
    assert code == 2
    assert err.startswith("error: ") and "checkpoint_1: saved as pickles" in err and "--no-resume" in err
    assert not marker.exists()


def test_resume_with_another_lora_rank_names_the_setting(monkeypatch, capsys, tmp_path, tiny_base, one_step_run):
    shard, run = copy_run(one_step_run, tmp_path)
    code, [err] = run_cli_lines(monkeypatch, capsys, *train_args(shard, run, tiny_base, rank=8))
    assert code == 2
    assert err.startswith("error: ") and "lora_rank 8 (checkpoint: 4)" in err and "--no-resume" in err
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["checkpoint_0"]  # nothing trained


def test_resume_on_changed_data_is_refused_unless_allowed(monkeypatch, capsys, tmp_path, tiny_base, one_step_run):
    shard, run = copy_run(one_step_run, tmp_path)
    data = tmp_path / "shard.tar"
    shutil.copy(shard, data)
    args = train_args(data, run, tiny_base)
    code, [err] = run_cli_lines(monkeypatch, capsys, *args)  # another path: the same bytes, somewhere else
    assert code == 2 and f"cannot resume on other data: {data} added; {shard} removed;" in err
    assert "--allow-changed-data" in err and "--no-resume" in err

    write_faceid_shard(data, n=6)
    code, _ = run_cli_lines(monkeypatch, capsys, *args, "--allow-changed-data")
    assert code == 0
    assert ckpt.read_state(ckpt.latest_checkpoint(run / "checkpoints"))["data"]["samples"] == 6
    write_faceid_shard(data, n=8)
    code, [err] = run_cli_lines(monkeypatch, capsys, *args, "--max-steps", "3")
    assert code == 2 and f"cannot resume on other data: {data} changed (" in err and ", 6 -> 8 samples)" in err


def test_rng_state_roundtrips_through_json():
    import json
    import random

    import numpy as np

    state = json.loads(json.dumps(ckpt.rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_total_limit_keeps_the_newest_complete_folders(tmp_path):
    for _ in range(4):
        folder = ckpt.new_checkpoint_folder(tmp_path)
        (folder / ckpt.STATE).write_text("{}")
        ckpt.prune_checkpoints(tmp_path, total_limit=2)
    assert [p.name for p in ckpt.checkpoint_folders(tmp_path)] == ["checkpoint_2", "checkpoint_3"]


def test_a_save_that_fails_never_costs_the_last_complete_checkpoint(tmp_path):
    (ckpt.new_checkpoint_folder(tmp_path) / ckpt.STATE).write_text("{}")
    ckpt.new_checkpoint_folder(tmp_path)  # a save that dies before its state.json (full disk, kill)
    ckpt.prune_checkpoints(tmp_path, total_limit=1)
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint_0"
    ckpt.new_checkpoint_folder(tmp_path)  # the next save clears the unfinished folder, keeps the complete one
    assert [p.name for p in ckpt.checkpoint_folders(tmp_path)] == ["checkpoint_0", "checkpoint_2"]
