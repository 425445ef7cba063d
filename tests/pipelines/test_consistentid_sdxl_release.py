"""ConsistentID SDXL as released: the public fixture (../shared/fixtures/consistentid_sdxl) matched to float32
round-off, latents and every intermediate tensor it lists, in the README's world built from its configs."""

from __future__ import annotations

import pytest
import torch
from sdxl_release_world import (
    CASES,
    FixedFace,
    build_world,
    load_expected,
    stand_in_parser,
    world_photo,
    world_pipeline,
)

pytestmark = pytest.mark.slow  # builds a 450M-parameter world once (real widths, tiny depth)

CASE = "steps5_merge3_g6_seed3"
ATOL, RTOL = 1e-5, 1e-4
LATENT_ROUND_OFF = 1e-5
"""The README's float32 round-off of the latents, relative to their scale: 5 Euler steps at guidance 6 amplify the
contexts' 1e-6; our float64 run differs from our float32 and from the release's float32 by about 6e-5 of 21."""


@pytest.fixture(scope="module")
def pipe():
    return world_pipeline(build_world())


@pytest.fixture(scope="module")
def face(pipe):
    return pipe.prepare_face_inputs(world_photo(), FixedFace(), stand_in_parser(), source="astronaut")


def run_capturing(pipe, face, case: dict, **options) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Final latents and the UNet's inputs at every step (contexts, pooled embeddings, time ids)."""
    calls: list[dict[str, torch.Tensor]] = []

    def capture(_module, _args, kwargs):
        added = kwargs["added_cond_kwargs"]
        calls.append(
            {"context": kwargs["encoder_hidden_states"], "pooled": added["text_embeds"], "time_ids": added["time_ids"]}
        )

    hook = pipe.unet.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        latents = pipe(
            case["prompt"],
            face_inputs=face,
            negative_prompt=case["negative_prompt"],
            num_inference_steps=case["num_inference_steps"],
            start_merge_step=case["start_merge_step"],
            guidance_scale=case["guidance_scale"],
            generator=torch.Generator().manual_seed(case["seed"]),
            height=64,
            width=64,
            output_type="latent",
            **options,
        ).images
    finally:
        hook.remove()
    return latents, calls


@pytest.fixture(scope="module")
def release_run(pipe, face):
    return run_capturing(pipe, face, CASES[CASE])


def test_face_inputs_follow_the_release(face):
    assert face.region_names == ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
    assert face.region_mask.all()


def test_latents_and_unet_inputs_match_the_release(release_run, assert_parity):
    expected = load_expected(CASE)
    latents, calls = release_run
    assert len(calls) == CASES[CASE]["num_inference_steps"]
    scale = expected["latents"].abs().max().item()
    assert_parity("sdxl.latents", latents, expected["latents"], LATENT_ROUND_OFF * scale, RTOL)
    for when, call in (("early", calls[0]), ("late", calls[-1])):
        assert_parity(f"sdxl.{when}_context", call["context"], expected[f"{when}_context"], ATOL, RTOL)
        assert_parity(f"sdxl.{when}_pooled", call["pooled"], expected[f"{when}_pooled"], ATOL, RTOL)
        assert_parity(f"sdxl.{when}_time_ids", call["time_ids"], expected[f"{when}_time_ids"], ATOL, RTOL)
    merge = CASES[CASE]["start_merge_step"]
    assert all(torch.equal(c["context"], calls[0]["context"]) for c in calls[: merge + 1])  # steps i <= merge
    assert not torch.equal(calls[merge + 1]["context"], calls[0]["context"])


def test_identity_and_text_tensors_match_the_release(pipe, face, assert_parity):
    expected = load_expected(CASE)
    case = CASES[CASE]
    cpu, f32 = torch.device("cpu"), torch.float32
    id_tokens, region_tokens = pipe.identity_tokens(face, cpu, f32)
    uncond_id, zero_regions = pipe.uncond_tokens(512, cpu, f32)
    assert_parity("sdxl.id_tokens", id_tokens, expected["release_id_tokens"], ATOL, RTOL)
    assert_parity("sdxl.uncond_id_tokens", uncond_id, expected["release_uncond_id_tokens"], ATOL, RTOL)

    facial = pipe.facial_prompts([case["prompt"]], face)
    assert "; Detail:The person has one face <|facial|>," in facial[0].prompt_face
    assert facial[0].prompt_face.endswith("and a mouth <|facial|>,")
    marked, _ = pipe.encode_marked_prompts(facial, cpu)
    _, negative, _, _ = pipe.encode_prompt(
        case["prompt"], device=cpu, do_classifier_free_guidance=True, negative_prompt=case["negative_prompt"]
    )
    assert_parity("sdxl.text_facial_in", marked, expected["release_text_facial_in"], ATOL, RTOL)
    assert_parity("sdxl.text_negative_in", negative, expected["release_text_negative_in"], ATOL, RTOL)
    augmented, negative_fused = pipe.fuse_facial(facial, marked, negative, face, region_tokens, zero_regions)
    assert_parity("sdxl.facial_ctx", augmented, expected["release_facial_ctx"], ATOL, RTOL)
    assert_parity("sdxl.negative_facial_ctx", negative_fused, expected["release_negative_facial_ctx"], ATOL, RTOL)


LONG = {
    "prompt": "a portrait of a man in a grey suit and a blue tie, standing in a sunlit library with tall wooden "
    "shelves, old leather books, a brass reading lamp, soft window light, shallow depth of field, film grain, "
    "warm colours, detailed skin, sharp focus on the eyes",
    "negative_prompt": ", ".join(["blurry", "lowres", "bad anatomy", "extra fingers", "watermark", "jpeg"] * 7),
    "num_inference_steps": 3,
    "start_merge_step": 1,
    "guidance_scale": 7.5,
    "seed": 11,
}


def test_long_prompt_and_long_negative_take_the_release_forms(pipe, face):
    """Over 77 tokens: caption first ("; Detail:" ... " Caption:" prompt), both prompts cut by the tokenizers; the
    contexts are still the release's: diffusers' encoding early, the fused marked prompt late, the fused negative
    in every step."""
    cpu = torch.device("cpu")
    facial = pipe.facial_prompts([LONG["prompt"]], face)[0]
    assert facial.alternate_assembly_used and facial.prompt_face.startswith("; Detail:The person has one face")
    assert len(pipe.tokenizer_2(LONG["negative_prompt"]).input_ids) > 77
    latents, calls = run_capturing(pipe, face, LONG)
    early, late = calls[0], calls[-1]

    text, negative, pooled, negative_pooled = pipe.encode_prompt(
        LONG["prompt"], device=cpu, do_classifier_free_guidance=True, negative_prompt=LONG["negative_prompt"]
    )
    torch.testing.assert_close(early["context"][1, :77], text[0])
    torch.testing.assert_close(early["pooled"], torch.cat([negative_pooled, pooled]))
    marked, marked_pooled = pipe.encode_marked_prompts([facial], cpu)
    torch.testing.assert_close(late["pooled"], torch.cat([negative_pooled, marked_pooled]))
    flags = torch.tensor(facial.class_tokens_mask)
    assert int(flags.sum()) == 5
    torch.testing.assert_close(late["context"][1, :77][~flags], marked[0][~flags])
    assert (late["context"][1, :77][flags] - marked[0][flags]).abs().amax(-1).min() > 1e-2  # regions fused
    torch.testing.assert_close(early["context"][0], late["context"][0])
    torch.testing.assert_close(early["context"][0, :77][~flags], negative[0][~flags])
    assert (early["context"][0, :77][flags] - negative[0][flags]).abs().amax(-1).min() > 1e-2
    assert torch.isfinite(latents).all()
