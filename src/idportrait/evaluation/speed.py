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

Methods whose code is not marked can still be split: `instrument` wraps the usual components of a
loaded method (face analyzer, face parser, encoders, UNet, VAE decode) so each call is a stage.

On CUDA the device is synchronised before and after each stage, so asynchronous kernels are
charged to the stage that launched them. A stage nested in another of the same name is counted once;
differently named nested stages are charged to both. Stage names are free-form (the report orders
the standard ones first, see `STAGES`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

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
    _open: set[str] = field(default_factory=set, repr=False)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as stage ``name`` (CUDA-synchronised on both sides)."""
        if name in self._open:  # already being timed further up the stack
            yield
            return
        self._open.add(name)
        _synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            _synchronize()
            self._open.discard(name)
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


INSTRUMENTED: dict[str, tuple[str, ...]] = {
    "parsing": ("face_parser.parse",),
    "face_id": ("face_analyzer.detect",),
    "encoders": (
        "pipe.text_encoder.forward",
        "pipe.text_encoder_2.forward",
        "pipe.image_encoder.forward",
        "pipe.image_proj.forward",
        "pipe.facial_encoder.forward",
        "pipe.controlnet.forward",
    ),
    "unet": ("pipe.unet.forward",),
    "decode": ("pipe.vae.decode",),
}
"""Stage -> attribute paths on a loaded method (`idportrait.methods`) that `instrument` times."""


def timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` wrapped in ``stage(name)`` (signature kept via ``functools.wraps``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with stage(name):
            return fn(*args, **kwargs)

    wrapper.__idportrait_stage__ = name  # type: ignore[attr-defined]
    return wrapper


def instrument(method: Any) -> list[str]:
    """Time the components of a loaded method that exist (see `INSTRUMENTED`); returns the paths wrapped.

    Wrapping sets an instance attribute over the bound method, so only this object is affected; it
    costs nothing unless a `StageTimer` is active. Calling it twice wraps nothing twice.
    """
    wrapped = []
    for name, paths in INSTRUMENTED.items():
        for path in paths:
            *parents, attr = path.split(".")
            owner = method
            for part in parents:
                owner = getattr(owner, part, None)
            fn = getattr(owner, attr, None) if owner is not None else None
            if fn is None or hasattr(fn, "__idportrait_stage__"):
                continue
            object.__setattr__(owner, attr, timed(fn, name))
            wrapped.append(path)
    return wrapped
