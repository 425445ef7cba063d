"""ConsistentID checkpoint I/O: release pickles, our safetensors, strict layout errors, other methods' files."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest
import torch
from safetensors.torch import load_file, save_file

from idportrait.adapters.consistentid.attention import install_consistentid_processors
from idportrait.adapters.consistentid.checkpoint import (
    ConsistentIDWeights,
    build_consistentid,
    check_layout,
    convert_checkpoint,
    load_adapter_modules,
    load_consistentid_weights,
    release_adapter_layout,
    save_consistentid_safetensors,
    weights_from_release_state,
)
from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from idportrait.errors import CheckpointError
from idportrait.tiny import tiny_unet
from recipe import load_manifest, recipe_state_dict


@pytest.fixture(scope="module")
def release_state():
    """A checkpoint with the released SD1.5 layout, weights from the fixture recipe (184M params)."""
    return {
        "FacialEncoder": recipe_state_dict("facial_encoder_manifest.json"),
        "image_proj": recipe_state_dict("image_proj_manifest.json"),
        "adapter_modules": recipe_state_dict("unet_sd15_adapter_manifest.json"),
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Small non-release modules (cross dim 32, 16-d heads) saved through our writer."""
    torch.manual_seed(0)
    unet = tiny_unet()
    fe = FacialEncoder(32, 1280, latent_dim=64, depth=1, dim_head=16, heads=4).eval()
    ip = ProjPlusModel(32, 512, 1280, 4, depth=1, dim_head=8, heads=4).eval()
    procs = install_consistentid_processors(unet, rank=4)
    with torch.no_grad():
        for p in procs.parameters():
            p.normal_()
    path = save_consistentid_safetensors(tmp_path_factory.mktemp("small") / "small.safetensors", fe, ip, procs)
    return path, fe, ip, procs


@pytest.mark.slow
def test_release_bin_roundtrip_through_safetensors(release_state, tmp_path, fixtures_dir, assert_parity):
    src = tmp_path / "ConsistentID-v1.bin"
    torch.save(release_state, src)
    weights, meta = load_consistentid_weights(src)
    assert meta["format"] == "idportrait.consistentid" and meta["variant"] == "sd15"
    assert (meta["num_processors"], meta["rank"], meta["num_tokens"]) == ("32", "128", "4")
    assert meta["image_proj_shortcut"] == "false" and meta["pairing"] == "release"
    assert "ears token receives the eye crop" in meta["pairing_description"]
    assert meta["caption"] == "The person has one face, one nose, two eyes, two ears, and one mouth."
    assert meta["source"] == "ConsistentID-v1.bin"

    dst, _ = convert_checkpoint(src, tmp_path / "out" / "consistentid.safetensors")
    flat = load_file(dst)
    assert len(flat) == 109 + 56 + 288
    assert all(k.startswith(("facial_encoder.", "image_proj.", "adapter.")) for k in flat)
    again, meta2 = load_consistentid_weights(dst)
    assert meta2 == meta
    for name in ("facial_encoder", "image_proj", "adapter_modules"):
        a, b = getattr(weights, name), getattr(again, name)
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)

    fe, ip, config = build_consistentid(again, dst)
    assert config["rank"] == 128 and config["cross_attention_dim"] == 768
    assert all(torch.equal(v, release_state["FacialEncoder"][k]) for k, v in fe.state_dict().items())
    inputs = load_file(fixtures_dir / "image_proj_inputs.safetensors")
    expected = load_file(fixtures_dir / "image_proj_expected.safetensors")
    with torch.no_grad():
        out = ip(inputs["id_embeds"], inputs["clip_hidden_states"], shortcut=config["image_proj_shortcut"])
    assert_parity("checkpoint.image_proj", out, expected["out_shortcut_false"], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_layout_errors_name_every_problem(release_state):
    weights = weights_from_release_state(release_state)
    assert weights.config.variant == "sd15" and weights.config.num_processors == 32
    fe = dict(release_state["FacialEncoder"])
    del fe["fuse_module.mlp2.fc1.bias"]
    fe["fuse_module.extra.weight"] = torch.zeros(1)
    adapter = dict(release_state["adapter_modules"])
    adapter["3.to_k_ip.weight"] = torch.zeros(320, 1024)
    del adapter["30.to_q_lora.up.weight"]
    bad = ConsistentIDWeights(fe, release_state["image_proj"], adapter, weights.config)
    with pytest.raises(CheckpointError) as err:
        check_layout(bad, "ConsistentID-v1.bin")
    msg = str(err.value)
    assert msg.startswith("ConsistentID-v1.bin: ")
    assert "FacialEncoder: missing keys [fuse_module.mlp2.fc1.bias] (1)" in msg
    assert "FacialEncoder: unexpected keys [fuse_module.extra.weight] (1)" in msg
    assert "adapter_modules: missing keys [30.to_q_lora.up.weight] (1)" in msg
    assert "3.to_k_ip.weight (320, 1024) != (320, 768)" in msg


def test_small_checkpoint_roundtrip_keeps_head_layout(small):
    path, fe, ip, procs = small
    weights, meta = load_consistentid_weights(path)
    assert meta["variant"] == "custom" and meta["facial_heads"] == "4" and meta["image_proj_dim_head"] == "8"
    fe2, ip2, config = build_consistentid(weights, path)
    assert config["rank"] == 4 and config["num_processors"] == len(procs)
    x = torch.randn(1, 2, 257, 1280)
    with torch.no_grad():
        assert torch.equal(fe2.encode_regions(x), fe.encode_regions(x))
        ids = torch.randn(1, 512)
        assert torch.equal(ip2(ids, x[:, 0]), ip(ids, x[:, 0]))
    fresh = install_consistentid_processors(tiny_unet(), rank=4)
    load_adapter_modules(fresh, weights, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), procs.state_dict().values(), strict=True))


def test_adapter_that_does_not_fit_the_unet(small):
    path, *_ = small
    weights, _ = load_consistentid_weights(path)
    other = install_consistentid_processors(tiny_unet(sdxl=True), rank=4)
    with pytest.raises(CheckpointError, match=r"small.safetensors: .*adapter_modules: .*attention processors\)"):
        load_adapter_modules(other, weights, path)


def test_image_proj_model_name_is_accepted(small, tmp_path):
    path, *_ = small
    flat = load_file(path)
    state = {
        "FacialEncoder": {k[len("facial_encoder.") :]: v for k, v in flat.items() if k.startswith("facial_encoder.")},
        "image_proj_model": {k[len("image_proj.") :]: v for k, v in flat.items() if k.startswith("image_proj.")},
        "adapter_modules": {k[len("adapter.") :]: v for k, v in flat.items() if k.startswith("adapter.")},
    }
    torch.save(state, tmp_path / "train_ckpt.bin")
    weights, meta = load_consistentid_weights(tmp_path / "train_ckpt.bin")
    assert set(weights.image_proj) == set(state["image_proj_model"])
    # A pickle carries no metadata: release convention (64-d heads, one head when narrower).
    assert (meta["facial_heads"], meta["image_proj_heads"], meta["image_proj_dim_head"]) == ("1", "1", "32")


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"image_proj": {"proj.0.weight": torch.zeros(2, 2)}, "ip_adapter": {"1.to_k_ip.weight": torch.zeros(2, 2)}},
            "it is an IP-Adapter-FaceID checkpoint",
        ),
        (
            {"image_proj": {"latents": torch.zeros(1, 16, 8), "proj_in.weight": torch.zeros(8, 512)}, "ip_adapter": {}},
            "it is an InstantID IP-Adapter checkpoint",
        ),
        (
            {"FacialEncoder": {}, "image_proj": {}, "adapter_modules": {}, "optimizer": {}},
            "unexpected top-level keys [optimizer] (1)",
        ),
        ({"FacialEncoder": {}, "adapter_modules": {}}, "missing top-level keys ['image_proj']"),
        ({"conv_in.weight": torch.zeros(1)}, "it is a Stable Diffusion model/UNet checkpoint"),
    ],
)
def test_wrong_pickles_are_named(tmp_path, state, message):
    path = tmp_path / "model.bin"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_consistentid_weights(path)
    assert str(err.value).startswith(f"{path}: not a usable ConsistentID checkpoint")
    assert message in str(err.value)


def test_other_safetensors_and_unreadable_files(tmp_path):
    lora = tmp_path / "pytorch_lora_weights.safetensors"
    save_file({"unet.down_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 2)}, lora)
    with pytest.raises(CheckpointError, match="it is a LoRA checkpoint"):
        load_consistentid_weights(lora)
    faceid = tmp_path / "faceid.safetensors"
    save_file({"image_proj.proj.0.weight": torch.zeros(2, 2), "ip_adapter.1.to_k_ip.weight": torch.zeros(2)}, faceid)
    with pytest.raises(CheckpointError, match="IP-Adapter checkpoint in safetensors layout"):
        load_consistentid_weights(faceid)
    with pytest.raises(CheckpointError, match="not found"):
        load_consistentid_weights(tmp_path / "missing.bin")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage.bin: not a usable ConsistentID checkpoint: unreadable"):
        load_consistentid_weights(garbage)
    unsafe = tmp_path / "unsafe.bin"
    torch.save({"FacialEncoder": {"x": PurePosixPath("not/a/tensor")}}, unsafe)
    with pytest.raises(CheckpointError, match=r"holds a reference to pathlib\.PurePosixPath.*refused without loading"):
        load_consistentid_weights(unsafe)


def test_release_adapter_layouts():
    sd15 = release_adapter_layout("sd15", 128)
    assert [(k, list(v)) for k, v in sd15.items()] == load_manifest("unet_sd15_adapter_manifest.json")
    sdxl = release_adapter_layout("sdxl", 128)
    assert len({k.split(".")[0] for k in sdxl}) == 140
    assert sdxl["1.to_k_lora.down.weight"] == (128, 2048) and sdxl["1.to_k_ip.weight"] == (640, 2048)


def test_release_layout_safetensors_roundtrip(small, tmp_path):
    """``convert --layout release``: the release's SDXL key names (what its own loader reads), with our metadata."""
    path, fe, ip, procs = small
    out, meta = convert_checkpoint(path, tmp_path / "ConsistentID_SDXL-v1.safetensors", layout="release")
    flat = load_file(out)
    assert {k.split(".")[0] for k in flat} == {"FacialEncoder", "image_proj_model", "adapter_modules"}
    assert len(flat) == len(fe.state_dict()) + len(ip.state_dict()) + len(procs.state_dict())
    again, meta2 = load_consistentid_weights(out)
    assert meta2 == meta and meta["facial_heads"] == "4"
    original, _ = load_consistentid_weights(path)
    for name in ("facial_encoder", "image_proj", "adapter_modules"):
        a, b = getattr(original, name), getattr(again, name)
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)

    flat["image_proj.norm.weight"] = flat.pop("image_proj_model.norm.weight")
    save_file(flat, tmp_path / "mixed.safetensors")
    with pytest.raises(CheckpointError, match="keys under both 'image_proj' and 'image_proj_model'"):
        load_consistentid_weights(tmp_path / "mixed.safetensors")


def test_sdxl_world_checkpoint_is_checked_against_its_own_unet():
    """The SDXL fixture's checkpoint (real widths, a tiny UNet's 8 processors) fails the release-UNet check, which
    ``check_release_unet=False`` leaves to the UNet it is loaded into; the rest stays strict (shapes on meta)."""
    from recipe import FIXTURES_SDXL

    manifest = json.loads((FIXTURES_SDXL / "release_checkpoint_manifest.json").read_text())
    state = {g: {k: torch.empty(s, device="meta") for k, s in entries} for g, entries in manifest.items()}
    with pytest.raises(CheckpointError, match=r"adapter_modules: missing keys \[8\.to_q_lora"):
        weights_from_release_state(state, "ConsistentID_SDXL-v1.bin")
    weights = weights_from_release_state(state, "ConsistentID_SDXL-v1.bin", check_release_unet=False)
    config = weights.config
    assert (config.variant, config.num_processors, config.image_proj_heads, config.image_proj_shortcut) == (
        "sdxl", 8, 32, True
    )  # fmt: skip
    assert config.caption == "The person has one face, one nose, two eyes, two ears, and a mouth."
    del state["FacialEncoder"]["fuse_module.mlp1.layernorm.weight"]
    with pytest.raises(CheckpointError, match=r"FacialEncoder: missing keys \[fuse_module\.mlp1\.layernorm\.weight\]"):
        weights_from_release_state(state, "ConsistentID_SDXL-v1.bin", check_release_unet=False)
