"""Pipeline pieces: per-prompt argument lists, the delayed merge point, and the CFG denoising loop and SDXL
conditioning of a pipeline that runs its own loop (InstantID; ConsistentID runs diffusers' pipelines,
`consistentid_modes`).

Inside such a pipeline's ``__call__``::

    latents = denoise(pipe, predict_noise, (B, H, W), device, steps, ...)  # predict_noise(t, model_in) -> eps
    time_ids = sdxl_time_ids(pipe, height, width, dtype, device)   # [1, 6] SDXL added conditioning
    return decode_sdxl(pipe, latents, output_type)                 # StableDiffusionXLPipelineOutput
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.pipelines.stable_diffusion_xl import StableDiffusionXLPipelineOutput

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(timestep t, model input [B or 2B, 4, h, w]) -> noise prediction of the same shape."""


def broadcast_prompts(value: str | list[str], n: int, name: str) -> list[str]:
    """One string for every prompt, or a list with one per prompt."""
    if isinstance(value, str):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{name}: got {len(value)} values for {n} prompts")
    return list(value)


def last_text_only_step(steps: int, merge_fraction: float, start_merge_step: int | None = None) -> int:
    """The delayed merge point: steps ``i <= result`` use the text-only prompt, later ones the facial prompt.

    ``start_merge_step`` (an explicit step index) wins; otherwise ``round(merge_fraction * steps)``, the
    release's 30 of 50 at fraction 0.6. Below fraction 1 at least the last step uses the facial prompt, so
    a 4-step run merges too (steps 0-2 text-only, step 3 facial); fraction 1 never merges.
    """
    if start_merge_step is not None:
        return start_merge_step
    if not 0.0 <= merge_fraction <= 1.0:
        raise ValueError(f"merge_fraction must be in [0, 1], got {merge_fraction}")
    if merge_fraction == 1.0:
        return steps
    return min(round(merge_fraction * steps), steps - 2)


def denoise(
    pipe: Any,
    predict_noise: NoisePredictor,
    size: tuple[int, int, int],
    device: torch.device,
    num_inference_steps: int,
    guidance_scale: float,
    generator: torch.Generator | list[torch.Generator] | None,
    latents: torch.Tensor | None,
) -> torch.Tensor:
    """Sample latents [B, 4, H/f, W/f] for ``size`` (B, H, W) with ``pipe.scheduler`` and classifier-free guidance.

    With ``guidance_scale > 1`` the model input is [latents; latents] and ``predict_noise`` returns
    [uncond; cond] (the contexts it uses are batched [negative, positive]). ``device``: the pipeline's execution
    device, which the caller looked up once (diffusers' ``_execution_device`` walks every module of every
    component, tens of ms at real size).
    """
    batch, height, width = size
    dtype = pipe.unet.dtype
    do_cfg = guidance_scale > 1.0
    pipe.scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = pipe.scheduler.timesteps
    latents = pipe.prepare_latents(
        batch, pipe.unet.config.in_channels, height, width, dtype, device, generator, latents
    )
    extra = pipe.prepare_extra_step_kwargs(generator, 0.0)
    with pipe.progress_bar(total=len(timesteps)) as bar:
        for t in timesteps:
            model_in = torch.cat([latents] * 2) if do_cfg else latents
            model_in = pipe.scheduler.scale_model_input(model_in, t)
            noise = predict_noise(t, model_in)
            if do_cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = pipe.scheduler.step(noise, t, latents, **extra).prev_sample
            bar.update()
    return latents


def sdxl_time_ids(pipe: Any, height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """SDXL's added time ids [1, 6]: original size (height, width), crop (0, 0), target size (height, width)."""
    return pipe._get_add_time_ids(
        (height, width), (0, 0), (height, width), dtype, pipe.text_encoder_2.config.projection_dim
    ).to(device)


def decode_sdxl(pipe: Any, latents: torch.Tensor, output_type: str) -> StableDiffusionXLPipelineOutput:
    """Latents -> images (the VAE in float32 when it asks for it, as SDXL's own pipeline does)."""
    if output_type == "latent":
        return StableDiffusionXLPipelineOutput(images=latents)
    if pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast:
        pipe.upcast_vae()
    latents = latents.to(next(pipe.vae.post_quant_conv.parameters()).dtype)
    image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    image = pipe.image_processor.postprocess(image, output_type=output_type)
    pipe.maybe_free_model_hooks()
    return StableDiffusionXLPipelineOutput(images=image)
