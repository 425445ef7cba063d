"""`idportrait convert` through the CLI app."""

from __future__ import annotations

import torch
from safetensors import safe_open
from typer.testing import CliRunner

from idportrait.adapters.consistentid.attention import install_consistentid_processors
from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from idportrait.cli import app
from idportrait.errors import CheckpointError
from idportrait.tiny import tiny_unet


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_convert_release_pickle_to_safetensors(tmp_path):
    fe = FacialEncoder(32, 1280, latent_dim=64, depth=1, dim_head=64, heads=1)
    ip = ProjPlusModel(32, 512, 1280, 4, depth=1, dim_head=32, heads=1)
    procs = install_consistentid_processors(tiny_unet(), rank=4)
    src = tmp_path / "release.bin"
    torch.save(
        {"FacialEncoder": fe.state_dict(), "image_proj": ip.state_dict(), "adapter_modules": procs.state_dict()}, src
    )
    dst = tmp_path / "out" / "converted.safetensors"
    result = run_cli("convert", str(src), str(dst))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(dst)
    summary = f"custom checkpoint: {len(procs)} attention processors, LoRA rank 4, 4 ID tokens, pairing release"
    assert summary in result.stderr
    with safe_open(str(dst), framework="pt") as f:
        assert f.metadata()["source"] == "release.bin"
        assert set(f.keys()) == {f"facial_encoder.{k}" for k in fe.state_dict()} | {
            f"image_proj.{k}" for k in ip.state_dict()
        } | {f"adapter.{k}" for k in procs.state_dict()}


def test_convert_errors_name_the_problem(tmp_path):
    bad = tmp_path / "ip-adapter.bin"
    torch.save({"image_proj": {"proj.0.weight": torch.zeros(1)}, "ip_adapter": {}}, bad)
    result = run_cli("convert", str(bad), str(tmp_path / "x.safetensors"))
    assert isinstance(result.exception, CheckpointError)
    assert str(result.exception) == (
        f"{bad}: not a usable ConsistentID checkpoint: it is an IP-Adapter-FaceID checkpoint (image_proj, ip_adapter)"
    )
    assert not (tmp_path / "x.safetensors").exists()
    assert run_cli("convert", str(bad), str(tmp_path / "x.bin")).exit_code == 2
