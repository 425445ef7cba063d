"""Parity of the ConsistentID processors on a reduced UNet (fixture 3, ``unet_tiny``) and their behaviour."""

from __future__ import annotations

import gc
import json

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention
from safetensors.torch import load_file

from idportrait.adapters.consistentid.attention import (
    ConsistentAttnProcessor,
    ConsistentIPAttnProcessor,
    attach_attention_capture,
    consistentid_processors,
    detach_attention_capture,
    fuse_lora,
    init_ip_from_base,
    install_consistentid_processors,
    set_id_scale,
    unfuse_lora,
)
from idportrait.tiny import tiny_unet
from recipe import load_manifest, recipe_state_dict

TOL = {"atol": 5e-5, "rtol": 1e-4}


def build_unet(fixtures_dir, variant: str) -> tuple[UNet2DConditionModel, torch.nn.ModuleList]:
    """The fixture UNet (float32) with recipe weights and ConsistentID processors loaded strictly."""
    config = json.loads((fixtures_dir / f"unet_{variant}_config.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config).eval()
    unet.load_state_dict(recipe_state_dict(f"unet_{variant}_manifest.json"), strict=True, assign=True)
    adapter = install_consistentid_processors(unet, rank=128, num_tokens=4, scale=1.0)
    adapter.load_state_dict(recipe_state_dict(f"unet_{variant}_adapter_manifest.json"), strict=True, assign=True)
    return unet, adapter


def check_unet_parity(fixtures_dir, variant: str, assert_parity) -> None:
    unet, _ = build_unet(fixtures_dir, variant)
    check_processor_index(fixtures_dir, variant, unet)
    inputs = load_file(fixtures_dir / f"unet_{variant}_inputs.safetensors")
    expected = load_file(fixtures_dir / f"unet_{variant}_expected.safetensors")
    debug = load_file(fixtures_dir / f"unet_{variant}_debug_mid_attn.safetensors")
    block = unet.mid_block.attentions[0].transformer_blocks[0]
    with torch.no_grad():
        attn1 = block.attn1(debug["mid_attn1.in_hidden_states"])
        attn2 = block.attn2(debug["mid_attn2.in_hidden_states"], encoder_hidden_states=inputs["encoder_hidden_states"])
        out = unet(inputs["latents"], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"]).sample
    assert_parity(f"unet_{variant}.mid_attn1", attn1, debug["mid_attn1.out"], **TOL)
    assert_parity(f"unet_{variant}.mid_attn2", attn2, debug["mid_attn2.out"], **TOL)
    assert_parity(f"unet_{variant}.noise_pred", out, expected["noise_pred"], **TOL)


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return build_unet(fixtures_dir, "tiny")


def test_unet_tiny_parity(fixtures_dir, assert_parity):
    check_unet_parity(fixtures_dir, "tiny", assert_parity)


@pytest.mark.slow
def test_unet_sd15_parity(fixtures_dir, assert_parity):
    """Real SD1.5 size (860M UNet params, ~3.4 GB in float32): built, checked and freed within the test."""
    check_unet_parity(fixtures_dir, "sd15", assert_parity)
    gc.collect()


def check_processor_index(fixtures_dir, variant: str, unet: UNet2DConditionModel) -> None:
    """Processor order, names, kinds, hidden sizes and heads as in ``unet_<variant>_processor_index.json``."""
    index = json.loads((fixtures_dir / f"unet_{variant}_processor_index.json").read_text())
    procs = unet.attn_processors
    assert list(procs) == [e["processor_name"] for e in index]
    kinds = {ConsistentAttnProcessor: "Consistent_AttProcessor", ConsistentIPAttnProcessor: "Consistent_IPAttProcessor"}
    for entry, proc in zip(index, procs.values(), strict=True):
        attn = unet.get_submodule(entry["module"])
        assert kinds[type(proc)] == entry["type"]
        assert (attn.to_q.out_features, attn.heads) == (entry["hidden_size"], entry["heads"])
        assert proc.to_q_lora.up.weight.shape[0] == entry["hidden_size"]


def test_adapter_keys_and_processor_index(fixtures_dir, tiny):
    unet, adapter = tiny
    manifest = load_manifest("unet_tiny_adapter_manifest.json")
    assert [(k, list(v.shape)) for k, v in adapter.state_dict().items()] == manifest
    assert list(consistentid_processors(unet).state_dict()) == [k for k, _ in manifest]
    check_processor_index(fixtures_dir, "tiny", unet)


def test_id_scale_zero_is_text_only(tiny):
    unet, _ = tiny
    attn = unet.mid_block.attentions[0].transformer_blocks[0].attn2
    proc = attn.processor
    torch.manual_seed(0)
    x, ehs = torch.randn(2, 16, 64), torch.randn(2, 81, 768)
    other_ids = ehs.clone()
    other_ids[:, 77:] = torch.randn(2, 4, 768)
    with torch.no_grad():
        full = attn(x, encoder_hidden_states=ehs)
        set_id_scale(unet, 0.0)
        zero_a = attn(x, encoder_hidden_states=ehs)
        zero_b = attn(x, encoder_hidden_states=other_ids)
        k = attn.to_k(ehs[:, :77]) + proc.to_k_lora(ehs[:, :77])
        v = attn.to_v(ehs[:, :77]) + proc.to_v_lora(ehs[:, :77])
        q = attn.to_q(x) + proc.to_q_lora(x)
        heads = lambda t: t.view(2, -1, 8, 8).transpose(1, 2)  # noqa: E731
        p = ((heads(q) @ heads(k).transpose(-1, -2)) * 8**-0.5).softmax(-1)
        h = (p @ heads(v)).transpose(1, 2).reshape(2, 16, 64)
        manual = attn.to_out[0](h) + proc.to_out_lora(h)
        set_id_scale(unet, 1.0)
    assert torch.equal(zero_a, zero_b), "with scale 0 the ID tokens must not matter"
    assert torch.allclose(zero_a, manual, atol=1e-5)
    assert not torch.allclose(full, zero_a, atol=1e-4)
    assert all(p.scale == 1.0 for p in unet.attn_processors.values() if isinstance(p, ConsistentIPAttnProcessor))


def test_capture_records_text_probabilities_without_changing_output(tiny, fixtures_dir):
    unet, _ = tiny
    inputs = load_file(fixtures_dir / "unet_tiny_inputs.safetensors")
    args = (inputs["latents"][..., :16, :16], inputs["timestep"])
    ehs = inputs["encoder_hidden_states"]
    with torch.no_grad():
        plain = unet(*args, encoder_hidden_states=ehs).sample
        capture = attach_attention_capture(unet)
        capture.token_idx = torch.tensor([[5, 8, 11, 0, 0]])
        captured = unet(*args, encoder_hidden_states=ehs).sample
        maps = capture.pop()
        detach_attention_capture(unet)
    assert torch.allclose(plain, captured, atol=1e-5)
    assert sorted({name.split(".attentions")[0] for name in maps}) == [
        "down_blocks.1",
        "down_blocks.2",
        "mid_block",
        "up_blocks.1",
        "up_blocks.2",
    ]
    assert all(name.endswith("attn2") for name in maps)
    assert maps["mid_block.attentions.0.transformer_blocks.0.attn2"].shape == (1, 8, 4, 5)
    assert maps["down_blocks.1.attentions.0.transformer_blocks.0.attn2"].shape == (1, 8, 64, 5)
    assert capture.maps == {}
    # Recorded columns are softmax probabilities over the 77 text keys: check one against an explicit softmax.
    block = unet.mid_block.attentions[0].transformer_blocks[0]
    hidden = {}

    def record_input(module, args, kwargs):
        hidden["x"] = args[0]

    hook = block.attn2.register_forward_pre_hook(record_input, with_kwargs=True)
    with torch.no_grad():
        attach_attention_capture(unet, ("mid_block",), capture)
        capture.token_idx = torch.tensor([[5, 8, 11, 0, 0]])
        unet(*args, encoder_hidden_states=ehs)
        detach_attention_capture(unet)
        attn, proc, x = block.attn2, block.attn2.processor, hidden["x"]
        q = (attn.to_q(x) + proc.to_q_lora(x)).view(1, -1, 8, 8).transpose(1, 2)
        k = (attn.to_k(ehs[:, :77]) + proc.to_k_lora(ehs[:, :77])).view(1, -1, 8, 8).transpose(1, 2)
        p = ((q @ k.transpose(-1, -2)) * 8**-0.5).softmax(-1)
    hook.remove()
    assert torch.allclose(
        capture.pop()["mid_block.attentions.0.transformer_blocks.0.attn2"], p[..., [5, 8, 11, 0, 0]], atol=1e-6
    )


def test_capture_maps_carry_gradients(tiny, fixtures_dir):
    unet, adapter = tiny
    inputs = load_file(fixtures_dir / "unet_tiny_inputs.safetensors")
    capture = attach_attention_capture(unet, ("mid_block",))
    capture.token_idx = torch.tensor([[5, 8, 11, 0, 0]])
    unet(inputs["latents"][..., :16, :16], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"])
    detach_attention_capture(unet)
    (m,) = capture.pop().values()
    m.sum().backward()
    grad = adapter[31].to_k_lora.down.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    adapter.zero_grad(set_to_none=True)
    unet.zero_grad(set_to_none=True)


def test_install_on_tiny_sdxl_unet_and_init_ip_from_base():
    unet = tiny_unet(cross_attention_dim=32, sdxl=True)
    adapter = install_consistentid_processors(unet, rank=4)
    n_attn = sum(isinstance(m, Attention) for m in unet.modules())
    assert len(adapter) == n_attn == len(unet.attn_processors)
    ip = [p for p in adapter if isinstance(p, ConsistentIPAttnProcessor)]
    assert len(ip) == n_attn // 2 and all(p.name.endswith("attn2") for p in ip)
    assert all(p.to_k_ip.weight.abs().sum() == 0 for p in ip)
    init_ip_from_base(unet)
    for name, proc in unet.attn_processors.items():
        if isinstance(proc, ConsistentIPAttnProcessor):
            attn = unet.get_submodule(name.removesuffix(".processor"))
            assert torch.equal(proc.to_k_ip.weight, attn.to_k.weight)
            assert torch.equal(proc.to_v_ip.weight, attn.to_v.weight)
    ehs = torch.randn(1, 77 + 4, 32)
    cond = {"text_embeds": torch.randn(1, 32), "time_ids": torch.zeros(1, 6)}
    with torch.no_grad():
        out = unet(torch.randn(1, 4, 16, 16), 10, encoder_hidden_states=ehs, added_cond_kwargs=cond).sample
    assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()


def test_float32_adapter_on_bfloat16_unet():
    unet = tiny_unet().to(torch.bfloat16)
    adapter = install_consistentid_processors(unet, rank=4).float()
    init_ip_from_base(unet)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(0.01)
        out = unet(
            torch.randn(1, 4, 16, 16, dtype=torch.bfloat16),
            10,
            encoder_hidden_states=torch.randn(1, 81, 32, dtype=torch.bfloat16),
        ).sample
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert next(adapter.parameters()).dtype == torch.float32


def test_fused_lora_matches_unfused_and_unfuses_exactly(fixtures_dir):
    """Folding the LoRA into the base projections changes nothing (text and ID branches); unfuse is bit-exact."""
    unet, adapter = build_unet(fixtures_dir, "tiny")
    inputs = load_file(fixtures_dir / "unet_tiny_inputs.safetensors")
    args = (inputs["latents"], inputs["timestep"])
    ehs = inputs["encoder_hidden_states"]
    base = {k: v.clone() for k, v in unet.state_dict().items() if "processor" not in k}
    with torch.no_grad():
        expected = unet(*args, encoder_hidden_states=ehs).sample
        assert fuse_lora(unet) == len(adapter)
        assert fuse_lora(unet) == 0  # already fused: nothing is folded twice
        kept = [w for proc in unet.attn_processors.values() for w in proc.base_weights.values()]
        assert {w.untyped_storage().data_ptr() for w in kept} == {kept[0].untyped_storage().data_ptr()}
        assert all(w.device.type == "cpu" for w in kept)  # one CPU buffer, outside the malloc heap
        attn = unet.mid_block.attentions[0].transformer_blocks[0].attn1
        assert not torch.equal(attn.to_q.weight, base["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"])
        fused = unet(*args, encoder_hidden_states=ehs).sample
        set_id_scale(unet, 0.5)
        fused_half = unet(*args, encoder_hidden_states=ehs).sample
        assert unfuse_lora(unet) == len(adapter)
        unfused_half = unet(*args, encoder_hidden_states=ehs).sample
        set_id_scale(unet, 1.0)
        again = unet(*args, encoder_hidden_states=ehs).sample
    assert (fused - expected).abs().max() < 1e-5
    assert (fused_half - unfused_half).abs().max() < 1e-5
    assert not torch.allclose(fused, fused_half, atol=1e-4)  # the ID branch is live in the fused UNet
    assert all(torch.equal(v, base[k]) for k, v in unet.state_dict().items() if "processor" not in k)
    assert torch.equal(again, expected)


def assert_release_arithmetic(
    out: torch.Tensor, attn: Attention, x: torch.Tensor, ehs: torch.Tensor, scale: float
) -> None:
    """``out`` (B, N, C) of ``attn`` on ``x`` (B, N, C) and ``ehs`` (B, 77 + 4, D) equals the release's arithmetic,
    written out: two separately normalised softmaxes over text and ID keys, to float32 round-off."""
    proc = attn.processor
    heads = lambda t: t.view(t.shape[0], t.shape[1], attn.heads, -1).transpose(1, 2)  # noqa: E731
    text, ids = ehs[:, :77], ehs[:, 77:]
    q = heads(attn.to_q(x) + proc.to_q_lora(x))
    k, v = heads(attn.to_k(text) + proc.to_k_lora(text)), heads(attn.to_v(text) + proc.to_v_lora(text))
    k_ip, v_ip = heads(proc.to_k_ip(ids)), heads(proc.to_v_ip(ids))
    text_h = ((q @ k.transpose(-1, -2)) * attn.scale).softmax(-1) @ v
    id_h = ((q @ k_ip.transpose(-1, -2)) * attn.scale).softmax(-1) @ v_ip
    h = (text_h + scale * id_h).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
    assert torch.allclose(out, attn.to_out[0](h) + proc.to_out_lora(h), atol=2e-6, rtol=1e-5)


def test_shared_query_and_cached_kv_equal_the_release_arithmetic(tiny):
    """One q for both branches, K/V projected once per context: equal to the written-out release formula at
    any ID scale, and a second call on the same context (served from the cache) is bit-identical."""
    unet, _ = tiny
    attn = unet.mid_block.attentions[0].transformer_blocks[0].attn2
    proc = attn.processor
    torch.manual_seed(1)
    x, ehs = torch.randn(2, 16, 64), torch.randn(2, 81, 768)
    with torch.no_grad():
        for scale in (1.0, 0.6):
            set_id_scale(unet, scale)
            first = attn(x, encoder_hidden_states=ehs)
            assert id(ehs) in proc.kv_cache.entries
            again = attn(x, encoder_hidden_states=ehs)
            assert torch.equal(first, again)
            assert_release_arithmetic(first, attn, x, ehs, scale)
        set_id_scale(unet, 1.0)


def test_kv_cache_follows_context_and_weight_changes(tiny):
    unet, _ = tiny
    attn = unet.mid_block.attentions[0].transformer_blocks[0].attn2
    proc = attn.processor
    torch.manual_seed(2)
    x, ehs = torch.randn(1, 16, 64), torch.randn(1, 81, 768)
    with torch.no_grad():
        before = attn(x, encoder_hidden_states=ehs)
        ehs[:, 77:] += 1.0  # other ID tokens in the same tensor
        changed = attn(x, encoder_hidden_states=ehs)
        assert_release_arithmetic(changed, attn, x, ehs, 1.0)
        assert not torch.allclose(before, changed, atol=1e-4)
        proc.to_k_ip.weight.mul_(2.0)  # a projection weight changed in place
        doubled = attn(x, encoder_hidden_states=ehs)
        assert_release_arithmetic(doubled, attn, x, ehs, 1.0)
        proc.to_k_ip.weight.div_(2.0)
        proc.to_v_lora.up.weight.add_(0.01)  # an unfused LoRA weight changed in place
        lora_changed = attn(x, encoder_hidden_states=ehs)
        assert_release_arithmetic(lora_changed, attn, x, ehs, 1.0)
        proc.to_v_lora.up.weight.sub_(0.01)
    assert id(ehs) in proc.kv_cache.entries
    key = id(ehs)
    del ehs
    gc.collect()
    assert key not in proc.kv_cache.entries  # a freed context takes its keys and values with it
    with torch.enable_grad():
        y = attn(x, encoder_hidden_states=torch.randn(1, 81, 768, requires_grad=True))
    assert y.requires_grad and len(proc.kv_cache.entries) == 0  # never cached while gradients are recorded
