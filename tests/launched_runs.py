"""Killing a launched run and every process it started part-way, as a user's Ctrl-C or an OOM killer would, harder."""

from __future__ import annotations

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
    launcher = psutil.Process(proc.pid)
    for process in [launcher, *launcher.children(recursive=True)]:  # e.g. torchrun and its workers (own sessions)
        process.send_signal(signal.SIGKILL)
    proc.wait()
