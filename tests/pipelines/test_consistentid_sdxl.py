"""ConsistentID SDXL on a tiny SDXL base (two text encoders, cross-attention 64): a release-layout pickle with
``image_proj_model`` loads strictly; with the ID branch off, no-op LoRA and the early-step prompt for every
step the output equals diffusers' own StableDiffusionXLPipeline; the ID scale and the merge change it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from idportrait.adapters.consistentid.attention import install_consistentid_processors
from idportrait.adapters.consistentid.checkpoint import release_adapter_layout
from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from idportrait.adapters.consistentid.text import build_facial_prompt
from idportrait.errors import CheckpointError
from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline
from idportrait.pipelines.face_inputs import FaceInputs
from idportrait.tiny import TINY_TEXT_DIM, TINY_VISION_DIM, save_tiny_sdxl, tiny_unet

CROSS = 2 * TINY_TEXT_DIM
ID_DIM = 128
NEGATIVE = "blurry, lowres"


def release_state(seed: int = 0) -> dict:
    """Release-layout SDXL checkpoint for the tiny SDXL UNet: LoRA no-op (up = 0), random ID projections."""
    torch.manual_seed(seed)
    facial_encoder = FacialEncoder(CROSS, TINY_VISION_DIM, latent_dim=64, depth=1, dim_head=16, heads=4)
    image_proj = ProjPlusModel(CROSS, ID_DIM, TINY_VISION_DIM, 4, depth=1, dim_head=64, heads=1)
    processors = install_consistentid_processors(tiny_unet(CROSS, sdxl=True), rank=4)
    adapter = processors.state_dict()
    for key, value in adapter.items():
        if "_ip." in key or ".down." in key:
            adapter[key] = torch.randn_like(value) / value.shape[-1] ** 0.5
    return {
        "FacialEncoder": facial_encoder.state_dict(),
        "image_proj_model": image_proj.state_dict(),
        "adapter_modules": adapter,
    }


def face_inputs(seed: int) -> FaceInputs:
    g = torch.Generator().manual_seed(seed)
    names = ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    emb = torch.randn(ID_DIM, generator=g)
    return FaceInputs(
        id_embedding=emb / emb.norm(),
        clip_embeds=torch.randn(257, TINY_VISION_DIM, generator=g),
        region_embeds=torch.randn(5, 257, TINY_VISION_DIM, generator=g),
        region_mask=torch.ones(5, dtype=torch.bool),
        region_names=names,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_sdxl(tmp_path_factory.mktemp("sdxl"))


@pytest.fixture(scope="module")
def pipe(base, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ckpt") / "ConsistentID_SDXL-v1.bin"
    torch.save(release_state(), ckpt)
    pipe = ConsistentIDSDXLPipeline.from_pretrained(base)
    pipe.load_consistentid(ckpt)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, face, **kwargs):
    options = {"num_inference_steps": 2, "guidance_scale": 5.0, "negative_prompt": NEGATIVE, "output_type": "np"}
    options.update(kwargs)
    return pipe("a photo of a person", face_inputs=face, generator=torch.Generator().manual_seed(0), **options).images


def test_release_sdxl_layout_has_140_processors():
    layout = release_adapter_layout("sdxl", 128)
    assert len({key.split(".")[0] for key in layout}) == 140
    assert layout["1.to_k_ip.weight"] == (640, 2048)


def test_loads_release_pickle_strictly(pipe, base, tmp_path):
    assert pipe.consistentid_config["cross_attention_dim"] == CROSS
    assert pipe.image_proj.cross_attention_dim == CROSS
    assert "<|facial|>" in pipe.tokenizer.get_vocab()
    state = release_state()
    del state["adapter_modules"]["5.to_v_ip.weight"]
    torch.save(state, tmp_path / "broken.bin")
    fresh = ConsistentIDSDXLPipeline.from_pretrained(base)
    with pytest.raises(CheckpointError, match=r"5\.to_v_ip\.weight"):
        fresh.load_consistentid(tmp_path / "broken.bin")


@pytest.mark.parametrize("text_encoding", ["release", "training"])
def test_id_off_early_steps_equal_diffusers_sdxl(pipe, base, text_encoding):
    """Two encoders, pooled embedding, time ids, scheduler and decode match SDXL's own pipeline: the release's early
    steps encode the user's prompt as written, the training encoding the marked prompt without its markers."""
    face = face_inputs(0)
    ours = run(pipe, face, id_scale=0.0, start_merge_step=10, guidance_scale=1.0, text_encoding=text_encoding)

    prompt = "a photo of a person"
    if text_encoding == "training":
        prompt = build_facial_prompt(pipe.tokenizer, prompt, face.region_names, joiner="; Detail:").prompt_text_only
        assert prompt.startswith("a photo of a person; Detail:The person has one face ,")
    reference = StableDiffusionXLPipeline.from_pretrained(base)
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        prompt,
        negative_prompt=NEGATIVE,
        num_inference_steps=2,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_text_encodings_differ_only_where_the_release_departs_from_training(pipe):
    """Late steps: the release feeds tokenizer_2 the markers' BPE pieces, training the text without them."""
    face = face_inputs(0)
    merged = {"id_scale": 1.0, "start_merge_step": -1}
    release = run(pipe, face, **merged)
    training = run(pipe, face, **merged, text_encoding="training")
    assert np.abs(release - training).mean() > 1e-3
    facial = pipe.facial_prompts(["a photo of a person"], face)
    assert "<|facial|>" not in pipe.tokenizer_2.get_vocab() and "<|image|>" in pipe.tokenizer_2.get_vocab()
    ids_2 = pipe.tokenizer_2(facial[0].prompt_face).input_ids
    assert len(ids_2) > len(pipe.tokenizer(facial[0].prompt_face).input_ids)  # each marker is several pieces
    with pytest.raises(ValueError, match="text_encoding"):
        run(pipe, face, text_encoding="mixed")


def test_identity_scale_and_merge_change_the_output(pipe):
    a, b = face_inputs(0), face_inputs(1)
    off = run(pipe, a, id_scale=0.0, start_merge_step=10)
    assert np.abs(run(pipe, b, id_scale=0.0, start_merge_step=10) - off).max() < 1e-5  # ID branch off
    on_a = run(pipe, a, id_scale=1.0, start_merge_step=10)
    assert np.abs(on_a - off).mean() > 1e-3
    assert np.abs(run(pipe, b, id_scale=1.0, start_merge_step=10) - on_a).mean() > 1e-3
    merged = run(pipe, a, id_scale=1.0, start_merge_step=-1)  # every step uses the fused facial prompt
    assert np.abs(merged - on_a).mean() > 1e-3
    two = pipe(
        ["a photo of a person", "a painting of a person"],
        face_inputs=a,
        num_images_per_prompt=2,
        num_inference_steps=1,
        negative_prompt=NEGATIVE,
        output_type="np",
    ).images
    assert two.shape == (4, 64, 64, 3)


def test_generate_cli_on_the_astronaut(base, tmp_path):
    """``idportrait generate --method consistentid-sdxl``: dlib face, landmark parsing, the release's guidance 7.5 by
    default, ``--set text_encoding=training`` reaching the pipeline (and a wrong value refused before loading)."""
    import json

    from PIL import Image
    from skimage import data
    from typer.testing import CliRunner

    from idportrait.cli import app
    from idportrait.errors import UserError

    torch.save(release_state(), tmp_path / "ConsistentID_SDXL-v1.bin")
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    args = [
        "generate", "--method", "consistentid-sdxl", "--face", str(tmp_path / "astronaut.png"), "-p", "a portrait",
        "--n", "2", "--steps", "1", "--width", "64", "--height", "32", "--base", str(base), "--adapter", str(tmp_path),
        "--face-backend", "dlib", "--parser", "landmarks", "--device", "cpu",
    ]  # fmt: skip

    wrong = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "wrong"), "--set", "text_encoding=mixed"])
    assert isinstance(wrong.exception, UserError) and "text_encoding 'mixed': use release or training" in str(
        wrong.exception
    )
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--set", "text_encoding=training"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["guidance_scale"] == 7.5 and settings["text_encoding"] == "training"
    images = [np.asarray(Image.open(tmp_path / "out" / f"p00_s{k}.png"), np.float32) for k in (0, 1)]
    assert images[0].shape == (32, 64, 3)
    assert np.abs(images[0] - images[1]).mean() > 0.5
