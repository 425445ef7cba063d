"""The processes of one launch (``accelerate launch`` or ``torchrun``, on one or several machines).

    processes = launched_processes()        # rank 0 of 1 when not launched that way
    mine = processes.share(jobs)            # jobs rank, rank + world_size, ... : fixed by the job list alone
    ... make them ...
    processes.wait()                        # everyone is done
    if processes.is_main: write what is merged once
    processes.close()                       # meet once more and tear the process group down

The process group comes from accelerate's `PartialState` (NCCL on GPUs, gloo on CPU-only machines); each
process uses the GPU accelerate gives it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Processes:
    """This process's place in the launch: ``rank`` in ``0 .. world_size - 1``; ``device`` its accelerator."""

    rank: int = 0
    world_size: int = 1
    device: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's items: every ``world_size``-th one, starting at ``rank``."""
        return list(items[self.rank :: self.world_size])

    def wait(self) -> None:
        """Block until every process gets here."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj: T) -> list[T]:
        """``obj`` of every process, in rank order (picklable objects only)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        """Meet every process and tear the process group down (`close_process_group`); the last call."""
        if self.world_size > 1:
            close_process_group()

    def device_for(self, device: str) -> str:
        """The device this process runs on: its own accelerator for ``auto``/``cuda`` when launched on several."""
        if self.world_size > 1 and self.device and device in ("auto", "cuda") and self.device.startswith("cuda"):
            return self.device
        return device


def close_process_group() -> None:
    """Meet every process, then tear the default process group down; nothing when there is none.

    Gloo's destructor joins its worker threads while holding the GIL, and a worker that frees the last collective
    (its tensors are Python's) needs the GIL: a process could hang there once its peers had exited (1 run in 5 of
    two training processes on a loaded 2-core machine). The final barrier's work is held here until the group is
    gone, so the workers free nothing then; it frees the earlier works it waited on when dropped, on this thread.
    Objects that hold the group (a DDP model) must be dropped before.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    last = dist.barrier(async_op=True)
    last.wait()
    dist.destroy_process_group()
    del last


def launched_processes() -> Processes:
    """The launch this process belongs to (``WORLD_SIZE``/``RANK`` set by accelerate launch or torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Processes()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo across CPU processes, else NCCL
    return Processes(rank=state.process_index, world_size=state.num_processes, device=str(state.device))
