"""`idportrait train ipadapter-faceid` smoke runs through the real CLI with a tiny base."""

from __future__ import annotations

import pytest
from safetensors import safe_open
from training_shards import write_faceid_shard

from idportrait.training.loop import read_log


def _run(args: list[str]) -> None:
    from typer.testing import CliRunner

    from idportrait.cli import app

    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_two_steps_export_released_layout(tmp_path, tiny_base):
    """FaceID-Plus (the plain FaceID export is checked by the resume and diffusers-layout tests)."""
    shards = tmp_path / "shards"  # a folder of shards, as `idportrait curate` writes them
    shards.mkdir()
    write_faceid_shard(shards / "shard-000000.tar", n=4)
    out = tmp_path / "run"
    args = ["train", "ipadapter-faceid", "--data", str(shards), "--output-dir", str(out), "--base", str(tiny_base),
            "--resolution", "32", "--batch-size", "2", "--max-steps", "2", "--checkpointing-steps", "1",
            "--checkpoints-total-limit", "1", "--lora-rank", "4", "--plus",
            "--image-encoder", str(tiny_base / "image_encoder")]  # fmt: skip
    _run(args)

    log = read_log(out)
    assert [e["step"] for e in log] == [1, 2]
    assert all(e["loss"] > 0 for e in log)
    assert sorted(k for e in log for k in e["keys"]) == sorted(f"shard-000000.tar:{i:06d}" for i in range(4))
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint_1"]  # total limit 1

    with safe_open(out / "adapter.safetensors", "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert meta["variant"] == "faceid-plus"
    proj = {k for k in keys if k.startswith("image_proj.")}
    assert "image_proj.perceiver_resampler.proj_in.weight" in proj
    assert {"image_proj.proj.0.weight", "image_proj.proj.2.weight", "image_proj.norm.weight"} <= proj
    n_processors = sum(k.endswith(".to_q_lora.down.weight") for k in keys)
    assert n_processors > 0
    for i in range(n_processors):
        assert f"ip_adapter.{i}.to_out_lora.up.weight" in keys
        assert (f"ip_adapter.{i}.to_k_ip.weight" in keys) == (i % 2 == 1)
