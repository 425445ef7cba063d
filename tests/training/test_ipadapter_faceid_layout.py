"""IP-Adapter-FaceID export: released key layout, and diffusers' own ``load_ip_adapter`` reproduces our UNet."""

from __future__ import annotations

import pytest
import torch

from idportrait.adapters.consistentid.attention import install_consistentid_processors
from idportrait.adapters.ipadapter_faceid import (
    MLPProjModel,
    faceid_variant_of,
    load_faceid_adapter,
    save_faceid_adapter,
)
from idportrait.tiny import TINY_TEXT_DIM, save_tiny_sd15


def _randomise(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.slow
def test_diffusers_load_ip_adapter_matches_our_processors(tmp_path):
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(0)
    base = save_tiny_sd15(tmp_path / "base")
    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None)
    unet = pipe.unet
    image_proj = MLPProjModel(cross_attention_dim=TINY_TEXT_DIM, id_embeddings_dim=512)
    adapter_modules = install_consistentid_processors(unet, rank=4)
    _randomise(image_proj, 1)
    _randomise(adapter_modules, 2)
    path = save_faceid_adapter(tmp_path / "ip-adapter-faceid.safetensors", image_proj, adapter_modules)

    nested = load_faceid_adapter(path)
    assert faceid_variant_of(nested["image_proj"]) == "faceid"
    assert set(nested["image_proj"]) == {
        "proj.0.weight",
        "proj.0.bias",
        "proj.2.weight",
        "proj.2.bias",
        "norm.weight",
        "norm.bias",
    }
    n_proc = len(unet.attn_processors)
    for i in range(n_proc):
        for part in ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora"):
            assert f"{i}.{part}.down.weight" in nested["ip_adapter"]
            assert f"{i}.{part}.up.weight" in nested["ip_adapter"]
        assert (f"{i}.to_k_ip.weight" in nested["ip_adapter"]) == (i % 2 == 1)

    latents = torch.randn(1, 4, 32, 32)
    text = torch.randn(1, 77, TINY_TEXT_DIM)
    id_embeds = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    with torch.no_grad():
        ours = unet(latents, 500, encoder_hidden_states=torch.cat([text, image_proj(id_embeds)], dim=1)).sample

    reference = StableDiffusionPipeline.from_pretrained(base, safety_checker=None)
    reference.load_ip_adapter(str(tmp_path), subfolder="", weight_name=path.name, image_encoder_folder=None)
    assert "faceid_0" in reference.unet.peft_config
    with torch.no_grad():
        theirs = reference.unet(
            latents, 500, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [id_embeds[:, None]]}
        ).sample
    diff = (ours - theirs).abs().max().item()
    print(f"diffusers load_ip_adapter vs our processors: max abs diff {diff:.2e}")
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4), diff


@pytest.mark.slow
def test_faceid_plus_export_matches_diffusers_at_release_projector_size(tmp_path):
    from diffusers import StableDiffusionPipeline

    from idportrait.adapters.ipadapter_faceid import build_image_proj, released_state_dict
    from idportrait.tiny import clip_tokenizer_from_bpe, tiny_scheduler, tiny_text_encoder, tiny_unet, tiny_vae

    unet = tiny_unet(cross_attention_dim=768)
    reference_unet = tiny_unet(cross_attention_dim=768)
    image_proj = build_image_proj("faceid-plus", cross_attention_dim=768, clip_embeddings_dim=1280)
    adapter_modules = install_consistentid_processors(unet, rank=4)
    _randomise(image_proj, 3)
    _randomise(adapter_modules, 4)
    state = released_state_dict(image_proj, adapter_modules)
    assert faceid_variant_of(state["image_proj"]) == "faceid-plus"

    text = torch.randn(1, 77, 768)
    id_embeds = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    clip_embeds = torch.randn(1, 257, 1280)
    latents = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        ours = unet(latents, 300, encoder_hidden_states=torch.cat([text, image_proj(id_embeds, clip_embeds)], 1)).sample

    pipe = StableDiffusionPipeline(
        vae=tiny_vae(), text_encoder=tiny_text_encoder(), tokenizer=clip_tokenizer_from_bpe(tmp_path / "tok"),
        unet=reference_unet, scheduler=tiny_scheduler(), safety_checker=None, feature_extractor=None,
        image_encoder=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
    pipe.unet.encoder_hid_proj.image_projection_layers[0].clip_embeds = clip_embeds[:, None]
    with torch.no_grad():
        theirs = pipe.unet(
            latents, 300, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [id_embeds[:, None]]}
        ).sample
    diff = (ours - theirs).abs().max().item()
    print(f"FaceID-Plus: diffusers load_ip_adapter vs our processors: max abs diff {diff:.2e}")
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4), diff
