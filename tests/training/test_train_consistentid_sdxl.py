"""`idportrait train consistentid` on a tiny SDXL base: the release's SDXL recipe (both encoders see the text
without markers, pooled embedding and time ids from the original size and crop), the loss falls on a small
overfit set, and the export loads strictly into the SDXL pipeline (also in the release's key layout) with the same
outputs as the trained modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from idportrait.adapters.consistentid.text import strip_markers
from idportrait.training.consistentid import ConsistentIDObjective, crop_top_left, training_text
from idportrait.training.data import open_training_data
from idportrait.training.loop import TrainConfig, read_log, train
from idportrait.training.steps import tokenize


@pytest.fixture(scope="module")
def sdxl_base(tmp_path_factory):
    from idportrait.tiny import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("tiny_sdxl"))


def sdxl_config(base, data, out, **changes) -> TrainConfig:
    options = {
        "data": [data], "output_dir": out, "base_model": str(base), "image_encoder": str(base / "image_encoder"),
        "resolution": 64, "train_batch_size": 2, "lora_rank": 4, "max_train_steps": 2, "checkpointing_steps": 100,
        "resume": False, "seed": 0, "method_options": {"adapter_size": "small"},
    }  # fmt: skip
    return TrainConfig(**(options | changes))


def test_crop_top_left_is_in_the_resized_image():
    assert crop_top_left(300, 200, 64) == (0, 16)  # 200x200 centre crop at x=50 -> 50 * 64 / 200
    assert crop_top_left(200, 400, 100) == (50, 0)
    assert crop_top_left(128, 128, 64) == (0, 0)


@pytest.fixture(scope="module")
def objective(sdxl_base, fgid_folder, tmp_path_factory):
    config = sdxl_config(sdxl_base, fgid_folder, tmp_path_factory.mktemp("objective"))
    data = open_training_data(config, ConsistentIDObjective.data_kind, progress=False)
    return ConsistentIDObjective(config, data, torch.device("cpu"), torch.float32)


def test_sdxl_items_follow_the_release_recipe(objective, fgid_folder):
    import json

    from PIL import Image

    assert objective.sdxl and objective.model.image_proj_shortcut
    item = objective.dataset[0]
    record = json.loads((fgid_folder / "records.jsonl").read_text().splitlines()[0])
    frozen = objective.frozen
    text = training_text(frozen.tokenizer, record["caption"], record["marked_facial_caption"])
    plain = strip_markers(text)
    assert "<|facial|>" in text and "<|facial|>" not in plain
    assert torch.equal(item["input_ids"], tokenize(frozen.tokenizer, plain))
    assert torch.equal(item["input_ids_2"], tokenize(frozen.tokenizer_2, plain))
    flagged = item["facial_token_idx"][item["facial_token_idx_mask"]]
    assert [frozen.tokenizer.decode([int(item["input_ids"][p])]) for p in flagged] == [
        "face", "ears", "eyes", "nose", "mouth"
    ]  # fmt: skip
    width, height = Image.open(fgid_folder / record["image"]).size
    assert item["original_size"].tolist() == [height, width]
    assert item["crop_top_left"].tolist() == list(crop_top_left(width, height, 64))


def test_sdxl_step_conditions_the_unet_on_pooled_text_and_time_ids(objective):
    unet, frozen = objective.frozen.unet, objective.frozen
    armed = [p.name for p in unet.attn_processors.values() if getattr(p, "capture", None) is not None]
    cross = [n.removesuffix(".processor") for n in unet.attn_processors if n.endswith("attn2.processor")]
    assert armed == [n for n in cross if n.startswith("mid_block.")] and len(armed) == 2  # the tiny UNet's share
    assert any(n.startswith("down_blocks.1.") for n in cross)  # of down_blocks.2, mid_block, up_blocks.1

    batch = objective.collate([objective.dataset[0], objective.dataset[1]])
    seen = {}
    hook = unet.register_forward_pre_hook(lambda _m, _a, kw: seen.update(kw["added_cond_kwargs"]), with_kwargs=True)
    try:
        drop = torch.tensor([False, True])
        pred, maps, token_mask = objective.predict(
            objective.model, batch, torch.randn(2, 4, 32, 32), torch.tensor([10, 900]), drop
        )
    finally:
        hook.remove()
    assert pred.shape == (2, 4, 32, 32) and token_mask[0].sum() == 5 and not token_mask[1].any()
    assert maps[armed[0]].shape[2:] == (16 * 16, 5)
    expected_time = torch.cat([batch["original_size"], batch["crop_top_left"], torch.full((2, 2), 64)], dim=1)
    torch.testing.assert_close(seen["time_ids"], expected_time.float())
    empty = tokenize(frozen.tokenizer_2, "")
    pooled = frozen.text_encoder_2(torch.stack([batch["input_ids_2"][0], empty])).text_embeds
    torch.testing.assert_close(seen["text_embeds"], pooled)  # the dropped sample gets the empty caption's


@pytest.mark.slow
def test_overfit_loss_falls_and_the_export_loads_with_the_same_outputs(sdxl_base, fgid_folder, tmp_path):
    from idportrait.adapters.consistentid.checkpoint import convert_checkpoint
    from idportrait.adapters.consistentid.text import SDXL_FACIAL_CAPTION
    from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline

    evals: dict[int, float] = {}
    state: dict = {}

    def on_step(step: int, model, objective) -> None:
        if "batch" not in state:
            state["batch"] = objective.collate([objective.dataset[i] for i in range(len(objective.dataset))])
        if step in (1, 20, 40):
            evals[step] = fixed_batch_mse(objective, model, state["batch"])
        state["model"] = model

    config = sdxl_config(sdxl_base, fgid_folder, tmp_path / "run", max_train_steps=40, learning_rate=3e-3)
    out = train(config, ConsistentIDObjective, on_step=on_step)
    log = read_log(tmp_path / "run")
    assert [e["step"] for e in log] == list(range(1, 41))
    assert evals[40] < evals[20] < evals[1] and evals[40] < 0.97 * evals[1], evals  # fixed noise, the training set
    assert np.mean([e["mse"] for e in log[-10:]]) < np.mean([e["mse"] for e in log[:10]])

    model = state["model"]
    exported = ConsistentIDSDXLPipeline.from_pretrained(sdxl_base)
    exported.load_consistentid(out)
    config = exported.consistentid_config
    assert config["image_proj_shortcut"] and config["caption"] == SDXL_FACIAL_CAPTION and config["rank"] == 4
    release_layout, _ = convert_checkpoint(out, tmp_path / "ConsistentID_SDXL-v1.safetensors", layout="release")
    from_release = ConsistentIDSDXLPipeline.from_pretrained(sdxl_base)
    from_release.load_consistentid(release_layout)

    in_memory = ConsistentIDSDXLPipeline.from_pretrained(sdxl_base)
    from idportrait.adapters.consistentid.attention import install_consistentid_processors

    processors = install_consistentid_processors(in_memory.unet, rank=4)
    processors.load_state_dict(model.adapter_modules.state_dict())
    in_memory.set_consistentid(model.facial_encoder, model.image_proj, dict(config))

    images = [generate(pipe, fgid_folder) for pipe in (in_memory, exported, from_release)]
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


def generate(pipe, fgid_folder) -> np.ndarray:
    """Two SDXL steps for the first annotated photo (dlib face, landmark parsing), seed 0."""
    from idportrait.faces import get_face_analyzer, get_face_parser
    from idportrait.imageio import load_image

    pipe.set_progress_bar_config(disable=True)
    photo = load_image(sorted((fgid_folder.parent / "photos").glob("*.png"))[0])
    face = pipe.prepare_face_inputs(photo, get_face_analyzer("dlib"), get_face_parser("landmarks"))
    generator = torch.Generator().manual_seed(0)
    return pipe(
        "a portrait", face_inputs=face, num_inference_steps=2, generator=generator, height=64, width=64,
        output_type="np",
    ).images  # fmt: skip


def fixed_batch_mse(objective, model, batch) -> float:
    """eps-MSE of one batch at fixed noise and timesteps, without drop (the training RNG untouched)."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1234)
        latents = objective.frozen.encode_latents(batch["pixel_values"])
        losses = []
        for t_value in (100, 400, 700):
            noise = torch.randn_like(latents)
            t = torch.full((latents.shape[0],), t_value)
            noisy = objective.frozen.noise_scheduler.add_noise(latents, noise, t)
            pred, _, _ = objective.predict(model, batch, noisy, t, torch.zeros(len(t), dtype=torch.bool))
            losses.append(torch.nn.functional.mse_loss(pred, noise).item())
    return float(np.mean(losses))
