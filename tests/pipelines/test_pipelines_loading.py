"""Model loading: local folders through the real loaders, one-line errors for everything else."""

from __future__ import annotations

import pytest
import torch

from idportrait import hub
from idportrait.errors import CheckpointError, ModelNotFoundError, UserError
from idportrait.pipelines import loading
from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)


def test_loaded_adapter_equals_saved_weights(tiny_pipe, tiny_models):
    from safetensors.torch import load_file

    saved = load_file(str(tiny_models[1]))
    for key, value in tiny_pipe.image_proj.state_dict().items():
        assert torch.equal(value, saved[f"image_proj.{key}"]), key
    assert tiny_pipe.consistentid_config["cross_attention_dim"] == 32
    assert tiny_pipe.consistentid_config["id_dim"] == 128


def test_hub_ids_fail_offline_with_one_line(offline):
    with pytest.raises(ModelNotFoundError) as err:
        loading.load_sd15_pipeline(ConsistentIDPipeline, "SG161222/Realistic_Vision_V6.0_B1_noVAE")
    message = str(err.value)
    assert "\n" not in message
    assert "SG161222/Realistic_Vision_V6.0_B1_noVAE" in message and "--base PATH" in message

    with pytest.raises(ModelNotFoundError, match=r"ConsistentID-v1\.bin.*--adapter PATH"):
        hub.hub_file("JackAILab/ConsistentID", "ConsistentID-v1.bin", "ConsistentID checkpoint", "--adapter")


def test_missing_image_encoder_fails_offline(offline, tiny_models, tmp_path):
    pipe = loading.load_sd15_pipeline(ConsistentIDPipeline, str(tiny_models[0]))
    with pytest.raises(ModelNotFoundError, match=r"laion/CLIP-ViT-H-14-laion2B-s32B-b79K.*--image-encoder PATH"):
        pipe.load_consistentid(str(tiny_models[1]), image_encoder="laion/CLIP-ViT-H-14-laion2B-s32B-b79K")


def test_local_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a usable base model"):
        loading.load_sd15_pipeline(ConsistentIDPipeline, str(tmp_path))


def test_checkpoint_of_another_method(tiny_models, tmp_path):
    ip_adapter = tmp_path / "ip-adapter-faceid.bin"
    state = {"image_proj": {"proj.0.weight": torch.zeros(4, 4)}, "ip_adapter": {"1.to_k_ip.weight": torch.zeros(2)}}
    torch.save(state, ip_adapter)
    pipe = loading.load_sd15_pipeline(ConsistentIDPipeline, str(tiny_models[0]))
    with pytest.raises(CheckpointError, match=r"ip-adapter-faceid\.bin: .*IP-Adapter-FaceID checkpoint"):
        pipe.load_consistentid(str(ip_adapter))


def test_offload_needs_a_gpu(tiny_models):
    with pytest.raises(UserError, match="--offload needs a GPU"):
        loading.load_sd15_pipeline(ConsistentIDPipeline, str(tiny_models[0]), device="cpu", offload=True)


def test_controlnets_load_by_folder_and_must_fit_the_base(tmp_path, offline):
    from idportrait.tiny import tiny_controlnet, tiny_unet

    tiny_controlnet().save_pretrained(tmp_path / "sd15")
    sd15, sdxl = tiny_unet(), tiny_unet(64, sdxl=True)
    controlnet = loading.load_controlnet(str(tmp_path / "sd15"), sd15)
    assert controlnet.config.cross_attention_dim == 32
    with pytest.raises(CheckpointError, match="cross-attention width 32, but the base UNet has 64"):
        loading.load_controlnet(str(tmp_path / "sd15"), sdxl)
    with pytest.raises(UserError, match="no inpaint ControlNet for SDXL bases is known"):
        loading.load_controlnet("inpaint", sdxl)
    with pytest.raises(ModelNotFoundError, match="--controlnet"):
        loading.load_controlnet("canny", sd15)  # the registry's lllyasviel/control_v11p_sd15_canny, not cached
