"""A checkpoint write that finds the disk full: one line naming the checkpoint folder, exit code 2, the half
checkpoint removed and the complete one before it kept; the rerun after freeing space resumes and finishes."""

from __future__ import annotations

import errno
import os

import pytest
from training_shards import write_faceid_shard

from cli_run import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_train_on_a_full_disk_then_after_freeing_space(tmp_path, monkeypatch, capsys, tiny_base):
    shard = write_faceid_shard(tmp_path / "shard.tar", n=4)
    out = tmp_path / "run"
    args = ["train", "ipadapter-faceid", "--data", str(shard), "--output-dir", str(out), "--base", str(tiny_base),
            "--resolution", "32", "--batch-size", "2", "--max-steps", "2", "--checkpointing-steps", "1",
            "--lora-rank", "4"]  # fmt: skip
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the second checkpoint's optimizer state finds the disk full
        if "checkpoint_1/.optimizer.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith(f"error: {out / 'checkpoints' / 'checkpoint_1'}: no space left on the device")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_0"]
    assert not (out / "adapter.safetensors").exists()

    monkeypatch.setattr(os, "fsync", real_fsync)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert (out / "adapter.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
