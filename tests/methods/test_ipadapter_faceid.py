"""IP-Adapter-FaceID on a tiny SD1.5 base: released-layout checkpoints synthesised from shapes load strictly
through diffusers' ``load_ip_adapter``, scale 0 reproduces the base pipeline, scale > 0 changes the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image

from idportrait.errors import CheckpointError, NoFaceError
from idportrait.faces.types import Face
from idportrait.methods.ipadapter_faceid import load_ipadapter_faceid_method
from idportrait.tiny import TINY_VISION_DIM, random_faceid_checkpoint, save_tiny_sd15, tiny_unet

ID_DIM = 512
LORA_RANK = 4


def synth_checkpoint(path, plus: bool, lora_rank: int | None = LORA_RANK, seed: int = 1) -> dict:
    clip_dim = TINY_VISION_DIM if plus else None
    state = random_faceid_checkpoint(tiny_unet(), ID_DIM, clip_dim, heads=1, lora_rank=lora_rank, seed=seed)
    torch.save(state, path)
    return state


def fake_detect(image: Image.Image) -> list[Face]:
    """A face in the middle of the photo whose embedding is a fixed function of the pixels."""
    arr = np.asarray(image.resize((16, 32)), dtype=np.float32).reshape(-1)[:ID_DIM]
    w, h = image.size
    kps = np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.55], [0.42, 0.7], [0.58, 0.7]]) * [w, h]
    return [Face(bbox=[w * 0.25, h * 0.2, w * 0.75, h * 0.85], kps=kps, score=0.99, embedding=arr - arr.mean())]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_sd15(tmp_path_factory.mktemp("sd15"))


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8))


def base_output(base, prompt, seed):
    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    neg = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"
    out = pipe(
        prompt=[prompt],
        negative_prompt=[neg],
        num_inference_steps=2,
        guidance_scale=7.5,
        generator=[torch.Generator().manual_seed(seed)],
        output_type="np",
    )
    return out.images[0]


@pytest.mark.parametrize("variant", ["faceid", "faceid-plus", "faceid-plusv2"])
def test_scale_zero_is_base_and_scale_changes_output(base, photo, tmp_path, variant):
    ckpt = tmp_path / "ip-adapter.bin"
    synth_checkpoint(ckpt, plus=variant != "faceid")
    method = load_ipadapter_faceid_method(
        base, variant, adapter=ckpt, image_encoder=base / "image_encoder", detect=fake_detect, num_inference_steps=2
    )
    prepared = method.prepare([photo])
    assert prepared.id_embeds.shape == (1, 1, ID_DIM)
    if variant != "faceid":
        assert prepared.clip_embeds.shape == (1, 1, 257, TINY_VISION_DIM)

    clip_calls = []
    if variant != "faceid":
        method.pipe.image_encoder.register_forward_hook(lambda *_: clip_calls.append(1))
    method.scale, method.lora_scale = 0.0, 0.0
    off = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    np.testing.assert_allclose(off, base_output(base, "a portrait", 3), atol=1e-5)

    method.scale, method.lora_scale = 1.0, 1.0
    on = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    assert np.abs(on - off).mean() > 1e-3

    method.lora_scale = 0.0
    id_only = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    assert np.abs(id_only - off).mean() > 1e-4  # the identity attention alone changes the image too
    assert len(clip_calls) == (variant != "faceid")  # the zero image's CLIP states once, not per call


def test_checkpoint_loads_strictly(base, tmp_path):
    ckpt = tmp_path / "ip-adapter.bin"
    state = synth_checkpoint(ckpt, plus=False)
    method = load_ipadapter_faceid_method(base, "faceid", adapter=ckpt, detect=fake_detect)
    unet = method.pipe.unet
    procs = list(unet.attn_processors.values())
    assert torch.equal(procs[1].to_k_ip[0].weight, state["ip_adapter"]["1.to_k_ip.weight"])
    lora_down = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.lora_A["faceid_0"].weight
    assert torch.equal(lora_down, state["ip_adapter"]["0.to_q_lora.down.weight"])
    proj = unet.encoder_hid_proj.image_projection_layers[0]
    assert torch.equal(proj.norm.weight, state["image_proj"]["norm.weight"])

    del state["ip_adapter"]["3.to_v_ip.weight"]
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=r"missing \['3.to_v_ip.weight'\]"):
        load_ipadapter_faceid_method(base, "faceid", adapter=ckpt, detect=fake_detect)
    state = synth_checkpoint(ckpt, plus=True)
    state["image_proj"]["perceiver_resampler.layers.2.0.to_q.weight"] = torch.zeros(64, 8)
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=r"layers.2.0.to_q.weight has shape \(64, 8\)"):
        load_ipadapter_faceid_method(base, "faceid-plus", adapter=ckpt, image_encoder=base / "image_encoder")


def test_several_references_are_averaged_and_no_face_is_an_error(base, tmp_path, photo):
    ckpt = tmp_path / "ip-adapter.bin"
    synth_checkpoint(ckpt, plus=False, lora_rank=None)
    method = load_ipadapter_faceid_method(base, "faceid", adapter=ckpt, detect=fake_detect)
    other = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a, b = method.prepare(photo).id_embeds, method.prepare(other).id_embeds
    torch.testing.assert_close(method.prepare([photo, other]).id_embeds, (a + b) / 2)
    method.detect = lambda image: []
    with pytest.raises(NoFaceError, match=r"me\.jpg: no face found"):
        method.prepare(photo, source="me.jpg")


def test_prompts_times_seeds_prompt_major(base, photo, tmp_path):
    ckpt = tmp_path / "ip-adapter.bin"
    synth_checkpoint(ckpt, plus=True)
    method = load_ipadapter_faceid_method(
        base, "faceid-plusv2", adapter=ckpt, image_encoder=base / "image_encoder", detect=fake_detect,
        num_inference_steps=2, size=(64, 32),
    )  # fmt: skip
    prepared = method.prepare(photo)
    batch = method.generate(prepared, ["a portrait", "a painting"], [1, 2], output_type="np")
    assert len(batch) == 4 and batch[0].shape == (32, 64, 3)  # size (width, height) -> arrays [H, W, 3]
    single = method.generate(prepared, ["a painting"], [1], output_type="np")[0]
    np.testing.assert_allclose(batch[2], single, atol=1e-4)
    assert np.abs(batch[0] - batch[1]).mean() > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["faceid", "faceid-plusv2"])
def test_sdxl_variants(tmp_path_factory, photo, variant):
    """SDXL FaceID / PlusV2 files (cross-attention 2048 there, 64 here) load strictly and steer the image."""
    from idportrait.tiny import TINY_TEXT_DIM, save_tiny_sdxl

    base = save_tiny_sdxl(tmp_path_factory.mktemp("sdxl"))
    unet = tiny_unet(cross_attention_dim=2 * TINY_TEXT_DIM, sdxl=True)
    clip_dim = TINY_VISION_DIM if variant != "faceid" else None
    ckpt = tmp_path_factory.mktemp("ckpt") / "ip-adapter.bin"
    torch.save(random_faceid_checkpoint(unet, ID_DIM, clip_dim, heads=1, lora_rank=LORA_RANK), ckpt)
    method = load_ipadapter_faceid_method(
        base, variant, sdxl=True, adapter=ckpt, image_encoder=base / "image_encoder", detect=fake_detect,
        num_inference_steps=2,
    )  # fmt: skip
    prepared = method.prepare(photo)
    method.scale, method.lora_scale = 0.0, 0.0
    off = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    method.scale, method.lora_scale = 1.0, 1.0
    on = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    reference = StableDiffusionXLPipeline.from_pretrained(base)
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        "a portrait",
        negative_prompt=method.defaults["negative_prompt"],
        num_inference_steps=2,
        guidance_scale=method.defaults["guidance_scale"],
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).images[0]
    np.testing.assert_allclose(off, expected, atol=1e-5)
    assert np.abs(on - off).mean() > 1e-3


def test_released_layouts_at_real_size():
    """SD1.5: 32 processors, LoRA rank 128 on all, ID projections on the 16 cross-attentions (288 tensors,
    the same count as ConsistentID's adapter_modules); SDXL: 140 processors (1260 tensors)."""
    from diffusers import UNet2DConditionModel

    from idportrait.adapters.consistentid.keymap import UNET_CONFIGS
    from idportrait.adapters.ipadapter_layout import image_proj_layout, ip_adapter_layout

    with torch.device("meta"):
        sd15 = UNet2DConditionModel.from_config(UNET_CONFIGS["sd15"])
        sdxl = UNet2DConditionModel.from_config(UNET_CONFIGS["sdxl"])
    layout = ip_adapter_layout(sd15, 128)
    assert len(layout) == 288
    assert layout["31.to_k_ip.weight"] == (1280, 768)
    assert layout["0.to_q_lora.down.weight"] == (128, 320)
    assert len(ip_adapter_layout(sdxl, 128)) == 140 * 8 + 70 * 2
    plus = image_proj_layout(768, 512, clip_dim=1280, heads=12)
    assert plus["perceiver_resampler.layers.3.0.to_kv.weight"] == (1536, 768)
    assert plus["proj.2.weight"] == (3072, 1024)


def test_accelerator_lora_stays_on_next_to_faceid_lora(base, photo, tmp_path):
    """--accelerator hyper-sd: its LoRA loads next to FaceID's, both stay active, steps/guidance follow the recipe."""
    from accelerator_loras import write_accelerator_lora

    ckpt = tmp_path / "ip-adapter.bin"
    synth_checkpoint(ckpt, plus=False)
    lora = write_accelerator_lora(tiny_unet(), "hyper-sd", tmp_path / "hyper.safetensors")
    method = load_ipadapter_faceid_method(
        base, "faceid", adapter=ckpt, detect=fake_detect, accelerator="hyper-sd", accelerator_weights=str(lora)
    )
    assert (method.defaults["num_inference_steps"], method.defaults["guidance_scale"]) == (4, 1.0)
    assert method.pipe.scheduler.config.timestep_spacing == "trailing"
    prepared = method.prepare(photo)
    image = method.generate(prepared, ["a portrait"], [3], num_inference_steps=1, output_type="np")[0]
    assert np.isfinite(image).all()
    assert set(method.pipe.get_active_adapters()) == {"faceid_0", "accelerator"}
    assert method.pipe._fused_lora_weights == {"faceid_0": 1.0, "accelerator": 1.0}  # both folded into the UNet
