"""Load diffusers base pipelines (by local path or hub id, through `idportrait.hub.fetch`)."""

from __future__ import annotations

from typing import Any, TypeVar

from idportrait.errors import UserError
from idportrait.hub import fetch

T = TypeVar("T")


def load_sd15_pipeline(
    pipeline_cls: type[T],
    base: str,
    vae: str | None = None,
    device: str = "cpu",
    dtype: Any = None,
    offload: bool = False,
) -> T:
    """``pipeline_cls.from_pretrained(base)`` (any SD1.5-family diffusers folder or hub id), no safety checker.

    ``vae``: an external VAE (path or hub id), e.g. for bases published without one. ``offload`` moves each
    model to ``device`` only while it runs (needs CUDA). Failures raise `ModelNotFoundError`.
    """
    import torch

    if offload and not str(device).startswith("cuda"):
        raise UserError(f"--offload needs a GPU (device is {device})")
    dtype = dtype or torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    if vae is not None:
        from diffusers import AutoencoderKL

        kwargs["vae"] = fetch(
            "VAE",
            vae,
            "--vae",
            lambda local: AutoencoderKL.from_pretrained(vae, dtype=dtype, local_files_only=local),
        )
    pipe = fetch(
        "base model", base, "--base", lambda local: pipeline_cls.from_pretrained(base, local_files_only=local, **kwargs)
    )
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def default_vae(base: str) -> str | None:
    """The external VAE a base needs: the release demos' noVAE base uses ``stabilityai/sd-vae-ft-mse``."""
    from idportrait.registry import SD15_BASE, SD15_VAE

    return SD15_VAE if base == SD15_BASE else None


def load_controlnet(name: str, unet: Any, device: str = "cpu", dtype: Any = None) -> Any:
    """A ``ControlNetModel`` for ``unet``'s base: a registry name (canny, openpose, inpaint; `registry.CONTROLNETS`,
    the SD1.5 or SDXL one after ``unet``), a hub id or a local folder, on ``device`` in ``dtype``.

    Raises `ModelNotFoundError` when it cannot be fetched and `CheckpointError` for a ControlNet of another base.
    """
    from diffusers import ControlNetModel

    from idportrait.errors import CheckpointError
    from idportrait.registry import CONTROLNETS

    sdxl = unet.config.addition_embed_type == "text_time"
    repo = CONTROLNETS.get((name, sdxl), name)
    if repo == name and any(known == name for known, _ in CONTROLNETS):
        base = "SDXL" if sdxl else "SD1.5"
        raise UserError(f"no {name} ControlNet for {base} bases is known; pass --controlnet HUB_ID or FOLDER")
    controlnet = fetch(
        "ControlNet",
        repo,
        "--controlnet",
        lambda local: ControlNetModel.from_pretrained(repo, torch_dtype=dtype, local_files_only=local),
    )
    width, base_width = controlnet.config.cross_attention_dim, unet.config.cross_attention_dim
    if width != base_width:
        raise CheckpointError(
            f"ControlNet for cross-attention width {width}, but the base UNet has {base_width} (SD1.5 and SDXL "
            "ControlNets are not interchangeable)",
            repo,
        )
    return controlnet.to(device).eval()
