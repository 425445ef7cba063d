"""The training CLI in real processes: two DDP workers (gloo, CPU), and a SIGKILL followed by a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_shards import write_faceid_shard

from idportrait.training.loop import read_log


def _train_args(shards: Path, out: Path, base: Path, steps: int, every: int) -> list[str]:
    return ["-m", "idportrait.cli", "train", "ipadapter-faceid", "--data", str(shards), "--output-dir", str(out),
            "--base", str(base), "--resolution", "32", "--batch-size", "1", "--max-steps", str(steps),
            "--checkpointing-steps", str(every), "--lora-rank", "4", "--lr", "1e-3"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_ddp_processes_shard_the_data(tmp_path, tiny_base):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_faceid_shard(shards / "s.tar", n=6)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           *_train_args(shards, out, tiny_base, steps=4, every=2)]  # fmt: skip
    subprocess.run(cmd, check=True, env=_env(), capture_output=True, timeout=600)
    log = read_log(out)
    assert [e["epoch"] for e in log] == [0, 0, 0, 1]  # 6 samples / 2 processes = 3 steps per epoch
    assert len({k for e in log[:3] for k in e["keys"]}) == 3
    checkpoint = out / "checkpoints" / "checkpoint_1"
    assert (checkpoint / "random_states_0.json").is_file() and (checkpoint / "random_states_1.json").is_file()
    assert (out / "adapter.safetensors").is_file()


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_base):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_faceid_shard(shards / "s.tar", n=5)
    steps, every = 24, 4
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, *_train_args(shards, straight, tiny_base, steps, every)], check=True,
                   env=_env(), capture_output=True, timeout=600)  # fmt: skip

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, *_train_args(shards, killed, tiny_base, steps, every)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        log = killed / "train_log.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 2 * every + 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(read_log(killed))
    assert every < killed_at < steps

    subprocess.run([sys.executable, *_train_args(shards, killed, tiny_base, steps, every)], check=True,
                   env=_env(), capture_output=True, timeout=600)  # fmt: skip
    straight_log, resumed_log = read_log(straight), read_log(killed)
    assert [e["step"] for e in resumed_log] == list(range(1, steps + 1))
    assert [e["keys"] for e in resumed_log] == [e["keys"] for e in straight_log]
    for a, b in zip(resumed_log, straight_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)
    want, got = load_file(straight / "adapter.safetensors"), load_file(killed / "adapter.safetensors")
    for key in want:
        assert torch.allclose(want[key], got[key], atol=1e-6), key
