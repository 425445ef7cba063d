"""`idportrait train consistentid`: 2-step smoke run through the real CLI, exported keys, objective pieces."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from idportrait.adapters.consistentid.text import token_order
from idportrait.training.consistentid import first_sentence, training_text
from idportrait.training.loop import read_log


def test_first_sentence_and_token_order():
    assert first_sentence("A woman smiles. She wears a hat.") == "A woman smiles."
    assert first_sentence("No full stop here") == "No full stop here"
    assert first_sentence("Dr.Who is here. Next.") == "Dr.Who is here."
    assert token_order(["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]) == [
        "Face", "Left_Ear", "Left_Eye", "Nose", "Upper_Lip"
    ]  # fmt: skip


def test_training_text_default_and_long_forms(tmp_path):
    from idportrait.adapters.consistentid.text import add_consistentid_tokens
    from idportrait.tiny import clip_tokenizer_from_bpe

    tokenizer = clip_tokenizer_from_bpe(tmp_path / "tok")
    add_consistentid_tokens(tokenizer)
    marked = "The person has an oval face <|facial|>, brown eyes <|facial|>,"
    text = training_text(tokenizer, "A woman smiles. She wears a hat.", marked)
    assert text == "Caption:A woman smiles. Detail:" + marked + " She wears a hat."
    long_overall = "A woman smiles. " + "She wears a very large and colourful hat. " * 8
    text = training_text(tokenizer, long_overall, marked)
    assert text == "Detail:" + marked + " Caption:" + long_overall


@pytest.mark.slow
def test_two_steps_via_cli_export_loads(tmp_path, tiny_base, fgid_folder):
    from typer.testing import CliRunner

    from idportrait.adapters.consistentid.checkpoint import load_consistentid_weights
    from idportrait.cli import app
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline

    out = tmp_path / "run"
    args = ["train", "consistentid", "--data", str(fgid_folder), "--output-dir", str(out), "--base", str(tiny_base),
            "--image-encoder", str(tiny_base / "image_encoder"), "--resolution", "64", "--batch-size", "2",
            "--max-steps", "2", "--checkpointing-steps", "2", "--lora-rank", "4",
            "--adapter-size", "small", "--mixed-precision", "bf16"]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    log = read_log(out)
    assert [e["step"] for e in log] == [1, 2]
    for entry in log:
        assert entry["loss"] == pytest.approx(entry["mse"] + 0.01 * entry["localization"], rel=1e-5)
    assert (out / "checkpoints" / "checkpoint_0").is_dir()

    with safe_open(out / "adapter.safetensors", "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert meta["pairing"] == "release"  # the pairing `generate` accepts
    assert meta["id_dim"] == "128"  # the dlib embeddings of the annotated folder
    assert any(k.startswith("facial_encoder.") for k in keys)
    assert any(k.startswith("image_proj.") for k in keys)
    assert any(k.endswith("to_k_ip.weight") for k in keys)
    weights, _ = load_consistentid_weights(out / "adapter.safetensors")
    assert weights.config.rank == 4

    pipe = ConsistentIDPipeline.from_pretrained(tiny_base, safety_checker=None)
    pipe.load_consistentid(out, weight_name="adapter.safetensors", image_encoder=tiny_base / "image_encoder")
    assert pipe.facial_encoder is not None and pipe.image_proj is not None

    record = json.loads((fgid_folder / "records.jsonl").read_text().splitlines()[0])
    assert record["marked_regions"], "the template facial caption names every region"


@pytest.mark.slow
def test_objective_captures_cross_attention_of_the_spec_layers_only(tmp_path, tiny_base, fgid_folder):
    import torch

    from idportrait.adapters.consistentid.attention import ConsistentIPAttnProcessor
    from idportrait.training.consistentid import ConsistentIDObjective
    from idportrait.training.data import open_training_data
    from idportrait.training.loop import TrainConfig

    config = TrainConfig(
        data=[fgid_folder], output_dir=tmp_path, base_model=str(tiny_base),
        image_encoder=str(tiny_base / "image_encoder"), resolution=64, lora_rank=4,
        method_options={"adapter_size": "small"},
    )  # fmt: skip
    data = open_training_data(config, ConsistentIDObjective.data_kind, progress=False)
    objective = ConsistentIDObjective(config, data, torch.device("cpu"), torch.float32)
    unet = objective.frozen.unet
    armed = [p.name for p in unet.attn_processors.values() if getattr(p, "capture", None) is not None]
    cross = [n.removesuffix(".processor") for n in unet.attn_processors if n.endswith("attn2.processor")]
    spec_layers = ("down_blocks.1.", "down_blocks.2.", "mid_block.", "up_blocks.1.", "up_blocks.2.")
    assert armed == [n for n in cross if n.startswith(spec_layers)]  # the tiny UNet has mid_block + up_blocks.1
    assert len(armed) == 3 and len(cross) == 4  # down_blocks.0 and the attn1 layers stay on plain SDPA
    for name, proc in unet.attn_processors.items():  # to_k_ip / to_v_ip start as the base to_k / to_v
        if isinstance(proc, ConsistentIPAttnProcessor):
            attn = unet.get_submodule(name.removesuffix(".processor"))
            assert torch.equal(proc.to_k_ip.weight, attn.to_k.weight)
            assert torch.equal(proc.to_v_ip.weight, attn.to_v.weight)
    assert not any(p.requires_grad for p in unet.parameters() if all(p is not q for q in objective.model.parameters()))

    batch = objective.collate([objective.dataset[0], objective.dataset[1]])
    latents = torch.randn(2, 4, 32, 32)
    drop = torch.tensor([False, True])
    pred, maps, token_mask = objective.predict(objective.model, batch, latents, torch.tensor([10, 900]), drop)
    assert pred.shape == latents.shape
    assert set(maps) == set(armed)
    assert maps["mid_block.attentions.0.transformer_blocks.0.attn2"].shape[2:] == (16 * 16, 5)
    assert token_mask[0].sum() == 5 and not token_mask[1].any()  # the dropped sample has no facial tokens

    torch.manual_seed(0)
    loss, logs = objective.loss(objective.model, batch)
    loss.backward()
    assert logs["localization"] != 0
    model = objective.model
    assert model.facial_encoder.fuse_module.mlp1.fc1.weight.grad.abs().sum() > 0
    assert model.image_proj.proj[0].weight.grad.abs().sum() > 0
    assert model.adapter_modules[1].to_k_ip.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora.up" in n)


def test_fgid_records_are_read_one_line_at_a_time(tmp_path, fgid_folder):
    import shutil

    from idportrait.annotate import schema

    second = tmp_path / "second"
    shutil.copytree(fgid_folder, second)
    (second / "records.jsonl.idx.arrow").unlink(missing_ok=True)
    index = schema.open_records([fgid_folder, second], tmp_path / "index")
    records = schema.read_records(fgid_folder)
    n = len(records)
    assert n >= 2 and len(index) == 2 * n
    want = [(fgid_folder, r) for r in records] + [(second, r) for r in records]
    assert [schema.record_at(index, i) for i in range(2 * n)] == want
    assert (second / "records.jsonl.idx.arrow").is_file()  # its line index, built in one pass

    extra = {**records[0], "key": "appended"}
    schema.append_record(second, extra)  # annotation resumed and appended a record
    index = schema.open_records([fgid_folder, second], tmp_path / "index")
    assert len(index) == 2 * n + 1 and schema.record_at(index, 2 * n) == (second, extra)
