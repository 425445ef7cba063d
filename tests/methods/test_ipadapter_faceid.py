"""IP-Adapter-FaceID on a tiny SD1.5 base: released-layout checkpoints synthesised from shapes load strictly
through diffusers' ``load_ip_adapter``, scale 0 reproduces the base pipeline, scale > 0 changes the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from idportrait.errors import CheckpointError, NoFaceError
from idportrait.faces.types import Face
from idportrait.methods.ipadapter_faceid import ip_adapter_layout, load_ipadapter_faceid
from idportrait.tiny import TINY_TEXT_DIM, TINY_VISION_DIM, save_tiny_sd15, tiny_unet

ID_DIM = 512
LORA_RANK = 4


def released_image_proj(plus: bool, cross: int = TINY_TEXT_DIM, clip: int = TINY_VISION_DIM) -> dict:
    """Key -> shape of the released ``image_proj`` (MLPProjModel / ProjPlusModel with 4 tokens)."""
    shapes = {
        "proj.0.weight": (2 * ID_DIM, ID_DIM),
        "proj.0.bias": (2 * ID_DIM,),
        "proj.2.weight": (4 * cross, 2 * ID_DIM),
        "proj.2.bias": (4 * cross,),
        "norm.weight": (cross,),
        "norm.bias": (cross,),
    }
    if plus:
        inner = 64  # one head of 64
        pr = "perceiver_resampler."
        shapes |= {f"{pr}proj_in.weight": (cross, clip), f"{pr}proj_in.bias": (cross,)}
        shapes |= {f"{pr}proj_out.weight": (cross, cross), f"{pr}proj_out.bias": (cross,)}
        shapes |= {f"{pr}norm_out.weight": (cross,), f"{pr}norm_out.bias": (cross,)}
        for k in range(4):
            layer = f"{pr}layers.{k}."
            for norm in ("0.norm1", "0.norm2", "1.0"):
                shapes |= {f"{layer}{norm}.weight": (cross,), f"{layer}{norm}.bias": (cross,)}
            shapes |= {
                f"{layer}0.to_q.weight": (inner, cross),
                f"{layer}0.to_kv.weight": (2 * inner, cross),
                f"{layer}0.to_out.weight": (cross, inner),
                f"{layer}1.1.weight": (4 * cross, cross),
                f"{layer}1.3.weight": (cross, 4 * cross),
            }
    return shapes


def synth_checkpoint(path, plus: bool, lora_rank: int | None = LORA_RANK, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    layout = {"image_proj": released_image_proj(plus), "ip_adapter": ip_adapter_layout(tiny_unet(), lora_rank)}
    state = {
        group: {k: 0.3 * torch.randn(shape, generator=g) for k, shape in shapes.items()}
        for group, shapes in layout.items()
    }
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
    method = load_ipadapter_faceid(
        base, variant, checkpoint=ckpt, image_encoder=base / "image_encoder", detect=fake_detect, steps=2
    )
    prepared = method.prepare([photo])
    assert prepared.id_embeds.shape == (1, 1, ID_DIM)
    if variant != "faceid":
        assert prepared.clip_embeds.shape == (1, 1, 257, TINY_VISION_DIM)

    method.scale, method.lora_scale = 0.0, 0.0
    off = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    np.testing.assert_allclose(off, base_output(base, "a portrait", 3), atol=1e-5)

    method.scale, method.lora_scale = 1.0, 1.0
    on = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    assert np.abs(on - off).mean() > 1e-3

    method.lora_scale = 0.0
    id_only = method.generate(prepared, ["a portrait"], [3], output_type="np")[0]
    assert np.abs(id_only - off).mean() > 1e-4  # the identity attention alone changes the image too


def test_checkpoint_loads_strictly(base, tmp_path):
    ckpt = tmp_path / "ip-adapter.bin"
    state = synth_checkpoint(ckpt, plus=False)
    method = load_ipadapter_faceid(base, "faceid", checkpoint=ckpt, detect=fake_detect)
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
        load_ipadapter_faceid(base, "faceid", checkpoint=ckpt, detect=fake_detect)


def test_several_references_are_averaged_and_no_face_is_an_error(base, tmp_path, photo):
    ckpt = tmp_path / "ip-adapter.bin"
    synth_checkpoint(ckpt, plus=False, lora_rank=None)
    method = load_ipadapter_faceid(base, "faceid", checkpoint=ckpt, detect=fake_detect)
    other = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a, b = method.prepare(photo).id_embeds, method.prepare(other).id_embeds
    torch.testing.assert_close(method.prepare([photo, other]).id_embeds, (a + b) / 2)
    method.detect = lambda image: []
    with pytest.raises(NoFaceError):
        method.prepare(photo)
