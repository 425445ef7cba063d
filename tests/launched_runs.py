"""Killing a launched run and every process it started part-way, as a user's Ctrl-C or an OOM killer would, harder."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable

import psutil


def sigkill_after_outputs(proc: subprocess.Popen, outputs: Callable[[], int], at_least: int) -> None:
    """Wait until ``outputs()`` reaches ``at_least`` (at most 300 s), then SIGKILL the launcher and every worker.

    Asserts the run was still going, so the kill really cut it short.
    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and outputs() < at_least:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    kill_tree(proc)
    proc.wait()


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process it started: torchrun's workers run in sessions of their own, so
    killing the launcher's process group would leave them running."""
    launcher = psutil.Process(proc.pid)
    for process in [launcher, *launcher.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)


def run_to_end(command: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a launched command to its end; fails with the tail of its stderr when it exits non-zero, and kills it
    with every process it started when it runs past ``timeout`` seconds."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {command}\n{err[-3000:]}") from None
    assert proc.returncode == 0, f"exit {proc.returncode}: {command}\n{err[-3000:]}"
    return subprocess.CompletedProcess(command, proc.returncode, out, err)
