"""Few-step accelerator LoRAs (LCM, Hyper-SD, TCD) in their released key layouts, on the tiny ConsistentID pipeline."""

from __future__ import annotations

import pytest
import torch

from accelerator_loras import LAYOUTS, synthesise_lora, write_accelerator_lora
from idportrait.adapters.consistentid.attention import fuse_lora, unfuse_lora
from idportrait.errors import UserError
from idportrait.pipelines.accelerators import (
    load_accelerator,
    matching_scheduler,
    set_accelerator_scale,
)

SCHEDULERS = {"lcm": "LCMScheduler", "hyper-sd": "EulerDiscreteScheduler", "tcd": "TCDScheduler"}


def run(pipe, face):
    gens = [torch.Generator().manual_seed(0)]
    opts = {"num_inference_steps": 4, "guidance_scale": 1.0, "height": 32, "width": 32, "output_type": "pt"}
    return pipe(["a photo of a person"], face_inputs=face, generator=gens, **opts).images


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_released_layout_loads_changes_output_off_at_scale_zero(name, fresh_pipe, astronaut_inputs, tmp_path):
    from peft.tuners.tuners_utils import BaseTunerLayer

    pipe = fresh_pipe
    pipe.scheduler = matching_scheduler(name, pipe.scheduler.config)
    without = run(pipe, astronaut_inputs)
    path = write_accelerator_lora(pipe.unet, name, tmp_path / f"{name}.safetensors")
    per_module = 3 if LAYOUTS[name] == "kohya" else 2
    targeted = len(synthesise_lora(pipe.unet, LAYOUTS[name])) // per_module
    defaults = load_accelerator(pipe, name, weights=path, scale=0.0)
    assert defaults == {"num_inference_steps": 4, "guidance_scale": 1.0}
    assert type(pipe.scheduler).__name__ == SCHEDULERS[name]
    wrapped = [m for m in pipe.unet.modules() if isinstance(m, BaseTunerLayer)]
    assert len(wrapped) == targeted > 0  # every layer of the file loaded
    torch.testing.assert_close(run(pipe, astronaut_inputs), without, atol=1e-6, rtol=0)
    set_accelerator_scale(pipe, 1.0)
    assert (run(pipe, astronaut_inputs) - without).abs().max() > 1e-2


def test_the_lora_is_folded_into_the_unet_and_refolded_at_a_new_scale(fresh_pipe, astronaut_inputs, tmp_path):
    from peft.tuners.tuners_utils import BaseTunerLayer

    pipe = fresh_pipe
    path = write_accelerator_lora(pipe.unet, "lcm", tmp_path / "lcm.safetensors")
    load_accelerator(pipe, "lcm", weights=path, scale=0.5)
    layers = [m for m in pipe.unet.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and all(m.merged for m in layers)  # no LoRA matmuls left in the forward
    fused_half = run(pipe, astronaut_inputs)
    set_accelerator_scale(pipe, 1.0)
    assert all(m.merged for m in layers)
    fused_one = run(pipe, astronaut_inputs)

    pipe.unfuse_lora(components=["unet"])  # the same weights through the LoRA matmuls
    assert not any(m.merged for m in layers)
    torch.testing.assert_close(run(pipe, astronaut_inputs), fused_one, atol=1e-5, rtol=0)
    pipe.set_adapters(["accelerator"], adapter_weights=[0.5])
    torch.testing.assert_close(run(pipe, astronaut_inputs), fused_half, atol=1e-5, rtol=0)


def test_hyper_sd_samples_trailing_timesteps():
    from idportrait.tiny import tiny_scheduler

    scheduler = matching_scheduler("hyper-sd", tiny_scheduler().config)
    scheduler.set_timesteps(4)
    assert scheduler.timesteps[0] == 999  # trailing: the first step starts from pure noise


def test_consistentid_fusion_composes_with_the_accelerator_lora(fresh_pipe, astronaut_inputs, tmp_path):
    """ConsistentID's LoRA folded under the peft layers gives the unfused images, and unfuses exactly."""
    pipe = fresh_pipe
    load_accelerator(pipe, "lcm", weights=write_accelerator_lora(pipe.unet, "lcm", tmp_path / "lcm.safetensors"))
    unfused = run(pipe, astronaut_inputs)
    base = {k: v.clone() for k, v in pipe.unet.state_dict().items() if "processor" not in k}
    assert fuse_lora(pipe.unet) > 0
    fused = run(pipe, astronaut_inputs)
    unfuse_lora(pipe.unet)
    torch.testing.assert_close(fused, unfused, atol=1e-5, rtol=0)
    assert all(torch.equal(v, base[k]) for k, v in pipe.unet.state_dict().items() if "processor" not in k)


def test_unknown_accelerator_and_foreign_file_are_one_line_errors(fresh_pipe, tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(UserError, match="unknown accelerator 'turbo'; choose one of lcm, hyper-sd, tcd"):
        load_accelerator(fresh_pipe, "turbo")
    foreign = tmp_path / "other.safetensors"
    save_file({"lora_unet_nowhere_to_q.lora_down.weight": torch.zeros(2, 3)}, str(foreign))
    with pytest.raises(UserError, match="not a lcm LoRA for this base"):
        load_accelerator(fresh_pipe, "lcm", weights=foreign)
