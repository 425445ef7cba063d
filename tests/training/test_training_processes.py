"""The training CLI in real processes: DDP (gloo, CPU) with elastic resume 2 -> 1 and 1 -> 2 processes, and a
SIGKILL followed by a resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_shards import write_faceid_shard

from idportrait.training import checkpoint as ckpt
from idportrait.training.loop import read_log
from launched_runs import run_to_end, sigkill_after_outputs


def _train_args(shards: Path, out: Path, base: Path, steps: int, every: int, batch: int = 1) -> list[str]:
    return ["-m", "idportrait.cli", "train", "ipadapter-faceid", "--data", str(shards), "--output-dir", str(out),
            "--base", str(base), "--resolution", "32", "--batch-size", str(batch), "--max-steps", str(steps),
            "--checkpointing-steps", str(every), "--lora-rank", "4", "--lr", "1e-3"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}


def _run(shards: Path, out: Path, base: Path, steps: int, processes: int) -> None:
    """``steps`` optimizer steps of a global batch of 2: one process of batch 2, or two of batch 1 (torchrun)."""
    args = _train_args(shards, out, base, steps, every=2, batch=2 // processes)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if processes == 2 else []
    run_to_end([sys.executable, *launcher, *args], _env())


@pytest.fixture(scope="module")
def elastic_data(tmp_path_factory, tiny_base) -> tuple[Path, Path]:
    """5 samples (2 steps of 2 per epoch) and an uninterrupted single-process run of 5 steps (checkpoints at
    steps 2 and 4)."""
    root = tmp_path_factory.mktemp("elastic")
    shards = root / "shards"
    shards.mkdir()
    write_faceid_shard(shards / "s.tar", n=5)
    _run(shards, root / "straight", tiny_base, steps=5, processes=1)
    return shards, root / "straight"


@pytest.mark.slow
@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2)])
def test_elastic_resume_continues_at_the_same_global_sample(tmp_path, tiny_base, elastic_data, before, after):
    shards, straight_run = elastic_data
    straight = read_log(straight_run)
    assert [e["epoch"] for e in straight] == [0, 0, 1, 1, 2]
    assert all(len(e["keys"]) == 2 for e in straight) and len({k for e in straight[:2] for k in e["keys"]}) == 4

    out = tmp_path / "run"
    if before == 1:  # the uninterrupted run as it stood after step 3: its checkpoint of step 2
        shutil.copytree(straight_run, out)
        shutil.rmtree(out / "checkpoints" / "checkpoint_1")
    else:
        _run(shards, out, tiny_base, steps=3, processes=before)  # checkpoint at step 2; step 3 is redone after
    rng_files = sorted(p.name for p in (out / "checkpoints" / "checkpoint_0").glob("random_states_*.json"))
    assert rng_files == [f"random_states_{rank}.json" for rank in range(before)]
    _run(shards, out, tiny_base, steps=5, processes=after)

    resumed = read_log(out)
    assert [e["step"] for e in resumed] == [1, 2, 3, 4, 5]
    assert [e["keys"] for e in resumed] == [e["keys"] for e in straight]  # nothing skipped or repeated
    assert [e["epoch"] for e in resumed] == [0, 0, 1, 1, 2]
    assert ckpt.read_state(out / "checkpoints" / "checkpoint_1")["num_processes"] == after


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_base):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_faceid_shard(shards / "s.tar", n=5)
    steps, every = 24, 4
    straight = tmp_path / "straight"
    run_to_end([sys.executable, *_train_args(shards, straight, tiny_base, steps, every)], _env())

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, *_train_args(shards, killed, tiny_base, steps, every)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = killed / "train_log.jsonl"
    sigkill_after_outputs(proc, lambda: len(log.read_text().splitlines()) if log.exists() else 0, 2 * every + 2)
    killed_at = len(read_log(killed))
    assert every < killed_at < steps

    run_to_end([sys.executable, *_train_args(shards, killed, tiny_base, steps, every)], _env())
    straight_log, resumed_log = read_log(straight), read_log(killed)
    assert [e["step"] for e in resumed_log] == list(range(1, steps + 1))
    assert [e["keys"] for e in resumed_log] == [e["keys"] for e in straight_log]
    for a, b in zip(resumed_log, straight_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)
    want, got = load_file(straight / "adapter.safetensors"), load_file(killed / "adapter.safetensors")
    for key in want:
        assert torch.allclose(want[key], got[key], atol=1e-6), key
