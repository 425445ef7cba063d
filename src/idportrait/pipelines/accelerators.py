"""Few-step accelerators next to any method: an LCM-LoRA, Hyper-SD or TCD LoRA with its matching scheduler.

    defaults = load_accelerator(pipe, "lcm")            # registry hub LoRA, or weights="path/or/hub-id"
    images = pipe(..., **defaults)                      # {"num_inference_steps": 4, "guidance_scale": 1.0}

The LoRA goes through diffusers' own ``load_lora_weights`` (it reads the released kohya ``lora_unet_*`` and
diffusers ``unet.*`` key layouts alike) as the peft adapter ``accelerator`` on the UNet projections; the
scheduler is swapped for the one the LoRA was distilled for (`SCHEDULERS`), and the LoRA is folded into the
UNet's weights at its scale (`fuse_peft_loras`). ConsistentID's own LoRA lives in its attention processors;
`fuse_lora` folds it into the base weights underneath the peft layers, so both compose. Change the
accelerator's scale only with ConsistentID's LoRA unfused (`unfuse_lora` keeps the weights it found).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idportrait.errors import UserError
from idportrait.hub import first_line

ADAPTER_NAME = "accelerator"


@dataclass(frozen=True)
class Accelerator:
    """A distilled LoRA's sampling recipe: steps, CFG scale (1 = no CFG: one UNet pass per step), scheduler."""

    steps: int
    guidance: float
    scheduler: str


ACCELERATORS = {
    "lcm": Accelerator(steps=4, guidance=1.0, scheduler="LCMScheduler"),
    "hyper-sd": Accelerator(steps=4, guidance=1.0, scheduler="trailing EulerDiscreteScheduler"),
    "tcd": Accelerator(steps=4, guidance=1.0, scheduler="TCDScheduler"),
}
"""Accelerator name -> recipe (the registry's 4-step LoRAs; LCM and TCD sample well at 4-8 steps)."""


def accelerator(name: str) -> Accelerator:
    """The recipe of ``name``; `UserError` naming the choices for anything else."""
    if name not in ACCELERATORS:
        raise UserError(f"unknown accelerator {name!r}; choose one of {', '.join(ACCELERATORS)}")
    return ACCELERATORS[name]


def matching_scheduler(name: str, config: Any) -> Any:
    """The scheduler ``name``'s LoRA was distilled for, built from the pipeline's scheduler ``config``."""
    from diffusers import EulerDiscreteScheduler, LCMScheduler, TCDScheduler

    if accelerator(name).scheduler == "LCMScheduler":
        return LCMScheduler.from_config(config)
    if accelerator(name).scheduler == "TCDScheduler":
        return TCDScheduler.from_config(config)
    return EulerDiscreteScheduler.from_config(config, timestep_spacing="trailing")


def accelerator_file(name: str, sdxl: bool, weights: str | Path | None = None) -> Path:
    """The LoRA file: ``weights`` (a file, a folder holding the released file, or a hub repo) or the registry's."""
    from idportrait.hub import hub_file
    from idportrait.registry import ACCELERATOR_LORAS

    accelerator(name)
    repo, filename = ACCELERATOR_LORAS[(name, sdxl)]
    return hub_file(str(weights or repo), filename, f"{name} LoRA", "--accelerator-weights")


def load_accelerator(pipe: Any, name: str, weights: str | Path | None = None, scale: float = 1.0) -> dict[str, Any]:
    """Load accelerator ``name`` into ``pipe`` (LoRA adapter ``accelerator`` at ``scale``, matching scheduler).

    ``pipe``: any diffusers SD1.5 / SDXL pipeline with LoRA loading (ConsistentID, InstantID, IP-Adapter...).
    Returns the call defaults ``{"num_inference_steps", "guidance_scale"}`` of the accelerator. Scale 0 leaves
    the UNet's output as without the LoRA. A file whose keys fit no UNet module raises `UserError`.
    """
    path = accelerator_file(name, hasattr(pipe, "text_encoder_2"), weights)
    try:
        pipe.load_lora_weights(str(path), adapter_name=ADAPTER_NAME)
    except (ValueError, KeyError, RuntimeError) as err:
        raise UserError(f"not a {name} LoRA for this base ({first_line(err, 160)})", path) from None
    set_accelerator_scale(pipe, scale)
    pipe.scheduler = matching_scheduler(name, pipe.scheduler.config)
    recipe = accelerator(name)
    return {"num_inference_steps": recipe.steps, "guidance_scale": recipe.guidance}


def set_accelerator_scale(pipe: Any, scale: float, others: dict[str, float] | None = None) -> None:
    """Weight the accelerator LoRA by ``scale``; ``others`` (adapter name -> weight) stay active next to it.

    All of them are folded into the UNet's weights (`fuse_peft_loras`).
    """
    from idportrait.pipelines.speed import fuse_peft_loras

    fuse_peft_loras(pipe, {**(others or {}), ADAPTER_NAME: float(scale)})


def sampling_settings(
    name: str | None, steps: int | None, guidance: float | None, plain: tuple[int, float]
) -> tuple[int, float]:
    """(steps, guidance) of a run: the given ones, else the accelerator's recipe, else ``plain`` (steps, guidance)."""
    recipe = (accelerator(name).steps, accelerator(name).guidance) if name is not None else plain
    return (steps if steps is not None else recipe[0], guidance if guidance is not None else recipe[1])
