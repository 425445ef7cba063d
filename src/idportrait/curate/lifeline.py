"""Worker processes that die with the run that started them (even when it is SIGKILLed).

`die_with_parent` is the process-pool initializer of `run_local`'s workers:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the worker when its parent
  dies (through ctypes; no effect elsewhere);
- a daemon watchdog thread checks every `POLL_SECONDS` that the parent is still the one that
  started the worker (``os.getppid()`` changes when a parent dies), which also covers other systems
  and the window before ``prctl`` took effect.

Once the workers are gone, multiprocessing's resource tracker sees its last pipe close and exits too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog thread still ends the worker


def _watch(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(POLL_SECONDS)


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (the process that started it) dies."""
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="parent-watchdog", daemon=True).start()
