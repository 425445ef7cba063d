"""Resume after a crash continues from the last checkpoint with the same data order, losses and weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from training_shards import write_faceid_shard

from idportrait.training.ipadapter_faceid import FaceIDObjective
from idportrait.training.loop import TrainConfig, read_log, train


class Crash(RuntimeError):
    pass


def _config(tmp_path, shard, base, name: str) -> TrainConfig:
    return TrainConfig(
        data=[shard], output_dir=tmp_path / name, base_model=str(base), resolution=32, train_batch_size=2,
        gradient_accumulation_steps=2, max_train_steps=5, checkpointing_steps=3, checkpoints_total_limit=2,
        lora_rank=4, learning_rate=1e-3,
    )  # fmt: skip


@pytest.mark.slow
def test_resume_after_crash_matches_uninterrupted_run(tmp_path, tiny_base):
    shard = write_faceid_shard(tmp_path / "shard.tar", n=6)  # 3 batches per epoch, 2 batches per step
    reference = train(_config(tmp_path, shard, tiny_base, "straight"), FaceIDObjective)

    def crash_after_step_4(step, model, objective):
        if step == 4:
            raise Crash

    interrupted = _config(tmp_path, shard, tiny_base, "resumed")
    with pytest.raises(Crash):
        train(interrupted, FaceIDObjective, on_step=crash_after_step_4)
    assert [e["step"] for e in read_log(interrupted.output_dir)] == [1, 2, 3, 4]
    assert sorted(p.name for p in (interrupted.output_dir / "checkpoints").iterdir()) == ["checkpoint_0"]

    torn = interrupted.output_dir / "checkpoints" / "checkpoint_1"  # as left by a kill mid-save
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")

    # checkpoint_0 holds step 3 = 5 batches seen: the resumed run skips 2 of epoch 1's 3 batches, redoes step 4
    resumed = train(interrupted, FaceIDObjective)

    straight_log, resumed_log = read_log(reference.parent), read_log(interrupted.output_dir)
    assert [e["step"] for e in resumed_log] == [1, 2, 3, 4, 5]  # the crashed step 4 is not logged twice
    assert [e["keys"] for e in resumed_log] == [e["keys"] for e in straight_log]
    assert [e["epoch"] for e in resumed_log] == [0, 0, 1, 1, 2]  # steps cross epochs mid-epoch
    for a, b in zip(resumed_log, straight_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)

    want, got = load_file(reference), load_file(resumed)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.allclose(want[key], got[key], atol=1e-6), key
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in got.items() if "up.weight" in k)  # LoRA trained

    from idportrait.methods.ipadapter_faceid import load_ipadapter_faceid_method

    method = load_ipadapter_faceid_method(tiny_base, "faceid", adapter=resumed, detect=lambda image: [], device="cpu")
    assert "faceid_0" in method.pipe.unet.peft_config  # the released layout, LoRA included, loads for generation


def test_log_truncation_on_resume_drops_later_steps_and_a_torn_line(tmp_path):
    from idportrait.training.loop import _truncate_log

    log = tmp_path / "train_log.jsonl"
    lines = [f'{{"step": {i}, "keys": ["k{i}"]}}' for i in (1, 2, 3)] + ['{"step": 4, "ke']
    log.write_text("\n".join(lines))
    _truncate_log(log, 2)
    assert [e["step"] for e in read_log(tmp_path)] == [1, 2]


@pytest.mark.slow
def test_no_resume_starts_over_and_continues_checkpoint_numbering(tmp_path, tiny_base):
    shard = write_faceid_shard(tmp_path / "shard.tar", n=6)
    config = _config(tmp_path, shard, tiny_base, "run")
    config.max_train_steps = 3
    train(config, FaceIDObjective)
    config.resume = False
    train(config, FaceIDObjective)
    assert [e["step"] for e in read_log(config.output_dir)] == [1, 2, 3]  # the first run's steps are gone
    assert sorted(p.name for p in (config.output_dir / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
