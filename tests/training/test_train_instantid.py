"""InstantID training: two steps on curated-style shards with a tiny SDXL base; the export loads back into
`InstantIDPipeline` (strict layout check, diffusers' load_ip_adapter) and generates."""

from __future__ import annotations

import pytest
import torch
from diffusers import ControlNetModel
from safetensors.torch import load_file
from training_shards import write_faceid_shard

from idportrait.adapters.instantid.kps import draw_kps
from idportrait.training.instantid import InstantIDObjective
from idportrait.training.loop import TrainConfig, read_log, train


@pytest.mark.slow
def test_two_steps_then_generate(tmp_path):
    from idportrait.pipelines.instantid_sdxl import InstantIDPipeline
    from idportrait.tiny import save_tiny_sdxl

    base = save_tiny_sdxl(tmp_path / "sdxl")
    shard = write_faceid_shard(tmp_path / "shard-000000.tar", n=4)
    out = tmp_path / "run"
    config = TrainConfig(
        data=[shard], output_dir=out, base_model=str(base), resolution=32, train_batch_size=2,
        max_train_steps=2, checkpointing_steps=1, checkpoints_total_limit=1, learning_rate=1e-3,
        method_options={"dim": 64, "heads": 1},
    )  # fmt: skip
    adapter = train(config, InstantIDObjective)

    log = read_log(out)
    assert [e["step"] for e in log] == [1, 2]
    assert all(e["loss"] > 0 for e in log)
    state = load_file(adapter)
    assert state["image_proj.latents"].shape == (1, 16, 64)
    assert sum(k.endswith(".to_k_ip.weight") for k in state) == 8  # the tiny SDXL UNet's cross-attentions

    pipe = InstantIDPipeline.from_pretrained(base, controlnet=ControlNetModel.from_pretrained(out / "ControlNetModel"))
    pipe.load_instantid(adapter)
    pipe.set_progress_bar_config(disable=True)
    resampler = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    assert torch.equal(resampler.latents, state["image_proj.latents"])
    kps = [[10, 12], [22, 12], [16, 18], [11, 24], [21, 24]]
    images = pipe(
        "a photo", face_embedding=torch.randn(512), kps_image=draw_kps((32, 32), kps), num_inference_steps=1
    ).images
    assert images[0].size == (32, 32)
