"""InstantID on a tiny SDXL base: keypoint image, released-layout ``ip-adapter.bin`` synthesised from shapes
loads strictly, both scales 0 == diffusers' SDXL pipeline, each scale > 0 changes the image, method end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel, StableDiffusionXLPipeline, UNet2DConditionModel
from PIL import Image
from skimage import data

from idportrait.adapters.instantid.checkpoint import RELEASE_RESAMPLER, resampler_layout
from idportrait.adapters.instantid.kps import KPS_COLOURS, draw_kps
from idportrait.errors import CheckpointError
from idportrait.pipelines.instantid_sdxl import InstantIDPipeline
from idportrait.tiny import random_instantid_checkpoint, save_tiny_sdxl

EMBED_DIM = 128  # the offline dlib descriptor; the released adapter takes 512-D antelopev2 embeddings
KPS = np.array([[20, 24], [44, 24], [32, 36], [22, 50], [42, 50]], np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(tiny SDXL base, IdentityNet folder, ip-adapter.bin) written to disk in their released layouts."""
    root = tmp_path_factory.mktemp("instantid")
    base = save_tiny_sdxl(root / "sdxl")
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    torch.manual_seed(0)
    identitynet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    with torch.no_grad():
        for block in [*identitynet.controlnet_down_blocks, identitynet.controlnet_mid_block]:
            block.weight.normal_(0, 0.3)  # zero convolutions are zero at init; trained ones are not
    identitynet.save_pretrained(root / "ControlNetModel")
    torch.save(random_instantid_checkpoint(unet, embedding_dim=EMBED_DIM), root / "ip-adapter.bin")
    return base, root / "ControlNetModel", root / "ip-adapter.bin"


@pytest.fixture(scope="module")
def pipe(models):
    base, identitynet, adapter = models
    pipe = InstantIDPipeline.from_pretrained(base, controlnet=ControlNetModel.from_pretrained(identitynet))
    pipe.load_instantid(adapter)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_kps_image_colours():
    image = np.asarray(draw_kps((64, 64), KPS))
    assert image.shape == (64, 64, 3)
    for (x, y), colour in zip(KPS.astype(int), KPS_COLOURS, strict=True):
        assert tuple(image[y, x]) == colour
    assert image[0, 63].tolist() == [0, 0, 0]
    limb = np.asarray(draw_kps((200, 200), KPS * 4))[(24 * 4 + 36 * 4) // 2, (20 * 4 + 32 * 4) // 2]
    assert limb.tolist() == [153, 0, 0]  # left-eye limb, dimmed to 60 %


def test_released_resampler_layout():
    layout = resampler_layout(**RELEASE_RESAMPLER)
    assert layout["latents"] == (1, 16, 1280)
    assert layout["proj_in.weight"] == (1280, 512)
    assert layout["layers.3.0.to_kv.weight"] == (2560, 1280)
    assert layout["proj_out.weight"] == (2048, 1280)
    assert len(layout) == 7 + 4 * 11


def test_adapter_loads_strictly(pipe, models, tmp_path):
    _, _, adapter = models
    state = torch.load(adapter, weights_only=True)
    resampler = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    assert torch.equal(resampler.latents, state["image_proj"]["latents"])
    procs = list(pipe.unet.attn_processors.values())
    assert torch.equal(procs[3].to_k_ip[0].weight, state["ip_adapter"]["3.to_k_ip.weight"])
    assert pipe.face_tokens(torch.zeros(2, EMBED_DIM)).shape == (2, 16, 64)

    state["ip_adapter"]["3.to_v_ip.weight"] = torch.zeros(5, 5)
    torch.save(state, tmp_path / "bad.bin")
    with pytest.raises(CheckpointError, match=r"3\.to_v_ip\.weight has shape \(5, 5\)"):
        pipe.load_instantid(tmp_path / "bad.bin")


def run(pipe, face, **kwargs):
    return pipe(
        "a photo of a person",
        face_embedding=face,
        kps_image=draw_kps((64, 64), KPS),
        negative_prompt="blurry",
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **kwargs,
    ).images


@pytest.mark.slow
def test_scale_zero_is_base_and_each_scale_changes_the_image(pipe, models):
    face = torch.nn.functional.normalize(torch.randn(EMBED_DIM), dim=0)
    off = run(pipe, face, ip_adapter_scale=0.0, controlnet_conditioning_scale=0.0)
    base = StableDiffusionXLPipeline.from_pretrained(models[0])
    base.set_progress_bar_config(disable=True)
    expected = base(
        "a photo of a person",
        negative_prompt="blurry",
        num_inference_steps=2,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    np.testing.assert_allclose(off, expected, atol=1e-5)
    ip_only = run(pipe, face, ip_adapter_scale=1.0, controlnet_conditioning_scale=0.0)
    control_only = run(pipe, face, ip_adapter_scale=0.0, controlnet_conditioning_scale=1.0)
    assert np.abs(ip_only - off).mean() > 1e-3
    assert np.abs(control_only - off).mean() > 1e-3


def test_method_on_the_astronaut(models):
    from idportrait.methods import load_method

    base, identitynet, adapter = models
    method = load_method(
        "instantid",
        base=str(base),
        adapter=str(adapter),
        identitynet=str(identitynet),
        face_backend="dlib",
        size=(64, 32),
        device="cpu",
        dtype="float32",
        num_inference_steps=1,
    )
    photo = Image.fromarray(data.astronaut())
    prepared = method.prepare([photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert prepared.face_embedding.shape == (EMBED_DIM,)
    assert prepared.kps_image.size == (64, 32)  # size is (width, height), as PIL's
    images = method.generate(prepared, ["a portrait", "a painting"], [0])
    assert [im.size for im in images] == [(64, 32), (64, 32)]


def test_method_with_a_tcd_accelerator(models, tmp_path):
    from accelerator_loras import write_accelerator_lora
    from idportrait.methods import load_method

    base, identitynet, adapter = models
    lora = write_accelerator_lora(UNet2DConditionModel.from_pretrained(base / "unet"), "tcd", tmp_path / "tcd.st")
    method = load_method(
        "instantid", base=str(base), adapter=str(adapter), identitynet=str(identitynet), detect=lambda image: [],
        size=(64, 64), device="cpu", dtype="float32", accelerator="tcd", accelerator_weights=str(lora),
    )  # fmt: skip
    assert type(method.pipe.scheduler).__name__ == "TCDScheduler"
    assert method.defaults == {"num_inference_steps": 4, "guidance_scale": 1.0}
    assert "accelerator" in method.pipe.get_active_adapters()
