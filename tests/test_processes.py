"""The processes of one launch: sharing, gathering and the teardown of the process group."""

from __future__ import annotations

import os
import subprocess
import sys

from idportrait.processes import Processes, close_process_group, launched_processes
from launched_runs import run_to_end
from loopback_port import free_port

# Two gloo processes gather Python objects (tensors the workers free), then close: both must return and leave no
# process group behind.
TWO_PROCESSES = """
import torch.distributed as dist
from idportrait.processes import launched_processes
processes = launched_processes()
assert processes.world_size == 2
got = processes.gather({"rank": processes.rank})
processes.wait()
processes.close()
assert not dist.is_initialized()
print("closed", processes.rank, [g["rank"] for g in got])
"""


def test_one_process_shares_everything_and_gathers_itself(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = launched_processes()
    assert processes == Processes() and processes.is_main
    assert processes.share(["a", "b", "c"]) == ["a", "b", "c"]
    assert processes.gather(7) == [7]
    processes.wait()
    processes.close()
    close_process_group()  # no group: nothing to tear down


def test_a_rank_takes_every_world_size_th_item():
    assert Processes(rank=1, world_size=3).share(list(range(8))) == [1, 4, 7]
    assert Processes(rank=2, world_size=3).device_for("auto") == "auto"  # no accelerator of its own
    assert Processes(rank=1, world_size=2, device="cuda:1").device_for("cuda") == "cuda:1"
    assert Processes(rank=1, world_size=2, device="cuda:1").device_for("cpu") == "cpu"


def test_two_launched_processes_gather_in_rank_order_and_close_the_group(tmp_path):
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESSES)
    port = str(free_port())
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    envs = [{**base, "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2"} for rank in (0, 1)]
    other = subprocess.Popen([sys.executable, str(script)], env=envs[1], stdout=subprocess.PIPE, text=True)
    try:
        main = run_to_end([sys.executable, str(script)], envs[0], timeout=120)
        other_out, _ = other.communicate(timeout=120)
    finally:
        other.kill()
    assert other.returncode == 0
    assert "closed 0 [0, 1]" in main.stdout
    assert "closed 1 [0, 1]" in other_out
