"""Per-stage wall-clock timing (seconds per image split by stage, like ConsistentID's Table V).

Code that does the work marks its stages with the module-level `stage` context manager; it costs
nothing unless a `StageTimer` is active, so pipelines can be instrumented without any plumbing:

    from idportrait.evaluation.speed import stage
    with stage("unet"):
        ...

The evaluation runner activates a timer around each generation and records the totals:

    timer = StageTimer()
    with timer.activate():
        method.generate(...)
    timer.totals  # {"parsing": 0.8, "unet": 4.9, ...} seconds

On CUDA the device is synchronised before and after each stage, so asynchronous kernels are
charged to the stage that launched them. Nested stages are charged to both themselves and their
parent; stage names are free-form (the report orders the standard ones first, see `STAGES`).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

STAGES: tuple[str, ...] = ("parsing", "face_id", "encoders", "unet", "decode")
"""The standard stage names, in Table V order: BiSeNet parsing, InsightFace/ArcFace, image/text/facial
encoders, the denoising loop, VAE decoding."""

_ACTIVE: contextvars.ContextVar[StageTimer | None] = contextvars.ContextVar("idportrait_stage_timer", default=None)


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@dataclass
class StageTimer:
    """Accumulates seconds per stage name; ``totals`` maps stage -> seconds, ``counts`` -> calls."""

    totals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as stage ``name`` (CUDA-synchronised on both sides)."""
        _synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            _synchronize()
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start
            self.counts[name] = self.counts.get(name, 0) + 1

    @contextlib.contextmanager
    def activate(self) -> Iterator[StageTimer]:
        """Make this the timer that the module-level `stage` reports to, for the body."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def per_image(self, num_images: int) -> dict[str, float]:
        """Totals divided by ``num_images`` (seconds per image)."""
        return {name: seconds / max(num_images, 1) for name, seconds in self.totals.items()}


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the body as stage ``name`` on the active `StageTimer`; a no-op when none is active."""
    timer = _ACTIVE.get()
    if timer is None:
        yield
        return
    with timer.stage(name):
        yield
