"""ConsistentIDPipeline on a tiny SD1.5 base + tiny random adapter (real loaders, real data flow)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from consistentid_pipes import load_pipe

from idportrait.adapters.consistentid.text import build_facial_prompt

STEPS = 3


def run(pipe, face, prompts="a photo of a person", seeds=(0,), **kwargs):
    prompts = [prompts] if isinstance(prompts, str) else prompts
    gens = [torch.Generator().manual_seed(s) for _ in prompts for s in seeds]
    opts = {"num_inference_steps": STEPS, "start_merge_step": 1, "output_type": "pt", "height": 32, "width": 32}
    opts.update(kwargs)
    return pipe(prompts, face_inputs=face, num_images_per_prompt=len(seeds), generator=gens, **opts).images


def other_identity(face, seed: int = 1):
    """Same regions, different face embedding and whole-photo CLIP features."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(face.id_embedding.shape, generator=g)
    return dataclasses.replace(
        face,
        id_embedding=emb / emb.norm(),
        clip_embeds=torch.randn(face.clip_embeds.shape, generator=g),
        cache={},
    )


def test_output_shape_and_range(tiny_pipe, astronaut_inputs):
    images = run(tiny_pipe, astronaut_inputs, ["a", "b"], seeds=(0, 1))
    assert images.shape == (4, 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1
    assert not torch.allclose(images[0], images[1])  # different seeds


def test_id_scale_zero_is_the_no_id_output(tiny_pipe, astronaut_inputs):
    other = other_identity(astronaut_inputs)
    a0 = run(tiny_pipe, astronaut_inputs, id_scale=0.0)
    b0 = run(tiny_pipe, other, id_scale=0.0)
    assert torch.equal(a0, b0)  # the ID tokens have no effect at all
    a1 = run(tiny_pipe, astronaut_inputs, id_scale=1.0)
    b1 = run(tiny_pipe, other, id_scale=1.0)
    assert (a1 - b1).abs().max() > 1e-3  # ...and they do at scale 1
    assert (a1 - a0).abs().max() > 1e-3


def test_per_image_generators_match_single_runs(tiny_pipe, astronaut_inputs):
    batch = run(tiny_pipe, astronaut_inputs, ["a red hat", "a garden"], seeds=(3, 4))
    single = run(tiny_pipe, astronaut_inputs, "a garden", seeds=(4,))
    torch.testing.assert_close(batch[3], single[0], atol=1e-4, rtol=0)


def test_delayed_merge_uses_text_only_prompt_before_the_merge_step(tiny_pipe, astronaut_inputs):
    regions_changed = dataclasses.replace(
        astronaut_inputs, region_embeds=astronaut_inputs.region_embeds.flip(0).contiguous(), cache={}
    )
    never = {"start_merge_step": STEPS}  # every step uses the text-only context: regions unused
    assert torch.equal(run(tiny_pipe, astronaut_inputs, **never), run(tiny_pipe, regions_changed, **never))
    early = {"start_merge_step": 0}
    assert (run(tiny_pipe, astronaut_inputs, **early) - run(tiny_pipe, regions_changed, **early)).abs().max() > 1e-4


def test_encode_prompts_fuses_only_flagged_tokens(tiny_pipe, astronaut_inputs):
    device, dtype = torch.device("cpu"), torch.float32
    _, region_tokens = tiny_pipe.identity_tokens(astronaut_inputs, device, dtype)
    _, zero_regions = tiny_pipe.uncond_tokens(astronaut_inputs.id_embedding.shape[-1], device, dtype)
    aug, text_only, neg, _ = tiny_pipe.encode_prompts(
        ["a woman"], ["blurry"], astronaut_inputs, region_tokens, zero_regions, device
    )
    facial = build_facial_prompt(tiny_pipe.tokenizer, "a woman", astronaut_inputs.region_names)
    plain = tiny_pipe.text_encoder(torch.tensor([facial.input_ids]))[0]
    flags = torch.tensor(facial.class_tokens_mask)
    assert int(flags.sum()) == len(astronaut_inputs.region_names) == 5
    torch.testing.assert_close(aug[0, ~flags], plain[0, ~flags])
    assert (aug[0, flags] - plain[0, flags]).abs().min() > 1e-4
    torch.testing.assert_close(text_only[0], tiny_pipe.text_encoder(torch.tensor([facial.text_only_input_ids]))[0][0])
    neg_ids = tiny_pipe.tokenizer("blurry", padding="max_length", max_length=77, return_tensors="pt").input_ids
    plain_neg = tiny_pipe.text_encoder(neg_ids)[0]
    torch.testing.assert_close(neg[0, ~flags], plain_neg[0, ~flags])
    assert (neg[0, flags] - plain_neg[0, flags]).abs().min() > 1e-4  # zero-image region tokens fused in


def test_identity_work_is_cached_across_prompts(tiny_pipe, astronaut_inputs):
    face = dataclasses.replace(astronaut_inputs, cache={})
    calls = {"image_proj": 0, "encode_regions": 0}

    def count_proj(*_):
        calls["image_proj"] += 1

    hook = tiny_pipe.image_proj.register_forward_hook(count_proj)
    original = tiny_pipe.facial_encoder.encode_regions

    def counting(x):
        calls["encode_regions"] += 1
        return original(x)

    tiny_pipe.facial_encoder.encode_regions = counting
    try:
        run(tiny_pipe, face, "first prompt", num_inference_steps=1)
        first = dict(calls)
        run(tiny_pipe, face, ["second prompt", "third"], num_inference_steps=1)
    finally:
        hook.remove()
        del tiny_pipe.facial_encoder.encode_regions
    assert first["image_proj"] <= 2 and first["encode_regions"] <= 2  # identity (+ uncond, once per pipeline)
    assert calls == first  # nothing recomputed for new prompts


def test_long_prompt_keeps_flags_consistent(tiny_pipe, astronaut_inputs):
    long_prompt = " ".join(["a very detailed portrait photo with studio light"] * 8)
    images = run(tiny_pipe, astronaut_inputs, long_prompt, num_inference_steps=2, start_merge_step=0)
    assert torch.isfinite(images).all()


def test_negative_prompt_and_guidance_change_the_output(tiny_pipe, astronaut_inputs):
    base = run(tiny_pipe, astronaut_inputs)
    assert (run(tiny_pipe, astronaut_inputs, negative_prompt="ugly") - base).abs().max() > 1e-4
    no_cfg = run(tiny_pipe, astronaut_inputs, guidance_scale=1.0)
    assert no_cfg.shape == base.shape and (no_cfg - base).abs().max() > 1e-4


def test_face_image_path_equals_precomputed_inputs(tiny_pipe, astronaut_inputs, face_models):
    from idportrait.demo import demo_photo

    gens = [torch.Generator().manual_seed(0)]
    direct = tiny_pipe(
        "a photo of a person",
        face_image=demo_photo(),
        face_analyzer=face_models[0],
        face_parser=face_models[1],
        generator=gens,
        num_inference_steps=STEPS,
        start_merge_step=1,
        output_type="pt",
        height=32,
        width=32,
    ).images
    torch.testing.assert_close(direct, run(tiny_pipe, astronaut_inputs), atol=1e-5, rtol=0)


def test_requires_face_inputs(tiny_pipe):
    with pytest.raises(ValueError, match="face_inputs"):
        tiny_pipe("a photo", num_inference_steps=1)


def test_face_inputs_of_another_backend_are_refused(tiny_pipe, astronaut_inputs):
    from idportrait.errors import UserError

    arcface = dataclasses.replace(astronaut_inputs, id_embedding=torch.ones(512) / 512**0.5, cache={})
    with pytest.raises(UserError, match="512-D face embedding, but the adapter expects 128-D"):
        run(tiny_pipe, arcface)


def test_bfloat16_matches_float32(tiny_models, astronaut_inputs, tiny_pipe):
    pipe = load_pipe(*tiny_models, dtype=torch.bfloat16)
    assert pipe.image_proj.proj[0].weight.dtype == torch.bfloat16
    low = run(pipe, dataclasses.replace(astronaut_inputs, cache={}), num_inference_steps=2).float()
    full = run(tiny_pipe, astronaut_inputs, num_inference_steps=2)
    assert torch.isfinite(low).all()
    assert (low - full).abs().mean() < 0.05


def test_unconditional_tokens_follow_the_spec(tiny_pipe, astronaut_inputs):
    from idportrait.pipelines.face_inputs import zero_image_embeds

    cpu = torch.device("cpu")
    uncond_id, zero_regions = tiny_pipe.uncond_tokens(128, cpu, torch.float32)
    zero = zero_image_embeds(tiny_pipe.image_encoder)[None]
    torch.testing.assert_close(uncond_id, tiny_pipe.image_proj(torch.zeros(1, 128), zero))
    torch.testing.assert_close(zero_regions[0, 3], tiny_pipe.facial_encoder.encode_regions(zero[:, None])[0, 0])
    id_tokens, _ = tiny_pipe.identity_tokens(astronaut_inputs, cpu, torch.float32)
    expected = tiny_pipe.image_proj(astronaut_inputs.id_embedding[None], astronaut_inputs.clip_embeds[None])
    torch.testing.assert_close(id_tokens, expected)
    assert id_tokens.shape == (1, 4, 32)


def _with_pairing(adapter, pairing: str, out):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(adapter), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        metadata = {**f.metadata(), "pairing": pairing}
    save_file(tensors, str(out), metadata=metadata)
    return out


def test_token_pairing_checkpoint_fuses_each_class_word_with_its_own_region(
    tiny_models, tiny_pipe, astronaut_inputs, tmp_path
):
    from idportrait.adapters.consistentid.text import token_order

    base, adapter = tiny_models
    pipe = load_pipe(base, _with_pairing(adapter, "token", tmp_path / "token.safetensors"))
    assert pipe.consistentid_config["pairing"] == "token"

    device, dtype = torch.device("cpu"), torch.float32
    _, region_tokens = tiny_pipe.identity_tokens(astronaut_inputs, device, dtype)
    _, zero_regions = tiny_pipe.uncond_tokens(astronaut_inputs.id_embedding.shape[-1], device, dtype)
    args = (["a woman"], ["blurry"], astronaut_inputs, region_tokens, zero_regions, device)
    release, token = tiny_pipe.encode_prompts(*args)[0], pipe.encode_prompts(*args)[0]

    facial = build_facial_prompt(tiny_pipe.tokenizer, "a woman", astronaut_inputs.region_names)
    positions = facial.class_token_positions  # caption order: face, ears, eyes, nose, mouth
    regions = astronaut_inputs.region_names  # region order: Face, Left_Eye, Left_Ear, Nose, Upper_Lip
    assert token_order(regions) == ["Face", "Left_Ear", "Left_Eye", "Nose", "Upper_Lip"]
    same = [positions[i] for i in (0, 3, 4)]  # face, nose, mouth get the same crop under both pairings
    swapped = [positions[i] for i in (1, 2)]  # ears/eyes swap crops
    torch.testing.assert_close(token[0, same], release[0, same])
    assert (token[0, swapped] - release[0, swapped]).abs().max() > 1e-4
    torch.testing.assert_close(
        token[0, positions[1]],
        tiny_pipe.facial_encoder.fuse(
            tiny_pipe.text_encoder(torch.tensor([facial.input_ids]))[0],
            region_tokens[:, [0, 2, 1, 3, 4]],
            torch.tensor([facial.class_tokens_mask]),
            torch.tensor([facial.facial_token_idx_mask]),
        )[0, positions[1]],
    )


def test_unknown_pairing_is_a_checkpoint_error(tiny_models, tmp_path):
    from idportrait.errors import CheckpointError
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.pipelines.loading import load_sd15_pipeline

    base, adapter = tiny_models
    pipe = load_sd15_pipeline(ConsistentIDPipeline, str(base))
    bad = _with_pairing(adapter, "diagonal", tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="pairing 'diagonal'"):
        pipe.load_consistentid(str(bad))


def test_merge_point_is_a_fraction_of_the_schedule():
    from idportrait.pipelines.common import last_text_only_step

    assert last_text_only_step(50, 0.6) == 30  # the release's --merge-step 30 of 50
    assert last_text_only_step(4, 0.6) == 2  # steps 0-2 text-only, step 3 facial
    assert last_text_only_step(2, 0.6) == 0  # the last step always merges below fraction 1
    assert last_text_only_step(4, 1.0) == 4  # never
    assert last_text_only_step(4, 0.6, start_merge_step=3) == 3  # the explicit step wins
    with pytest.raises(ValueError, match="merge_fraction"):
        last_text_only_step(4, 1.5)


def test_facial_tokens_are_used_in_a_four_step_run(tiny_pipe, astronaut_inputs):
    """Default merge fraction: a 4-step run feeds the region-fused prompt at its last step (steps 0-2 text-only)."""
    regions_changed = dataclasses.replace(
        astronaut_inputs, region_embeds=astronaut_inputs.region_embeds.flip(0).contiguous(), cache={}
    )

    def contexts(face, **kwargs):
        seen = []
        hook = tiny_pipe.unet.register_forward_pre_hook(
            lambda _, args, kw: seen.append(kw["encoder_hidden_states"].clone()), with_kwargs=True
        )
        try:
            images = run(tiny_pipe, face, num_inference_steps=4, start_merge_step=None, **kwargs)
        finally:
            hook.remove()
        return seen, images

    (ours, a), (theirs, b) = contexts(astronaut_inputs), contexts(regions_changed)
    assert len(ours) == 4
    assert all(torch.equal(x, y) for x, y in zip(ours[:3], theirs[:3], strict=True))  # text-only steps
    assert (ours[3] - theirs[3]).abs().max() > 1e-3  # the facial tokens carry the regions at step 3
    assert not torch.equal(a, b)
