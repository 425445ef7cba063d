from diffusers import StableDiffusionPipeline

from idportrait.tiny import clip_tokenizer_from_bpe, save_tiny_sd15


def test_clip_tokenizer_matches_known_sd15_ids(tmp_path):
    tok = clip_tokenizer_from_bpe(tmp_path)
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok("A PHOTO").input_ids == tok("a photo").input_ids  # lower-cased like the SD1.5 tokenizer


def test_tiny_sd15_round_trips_through_from_pretrained(tmp_path):
    save_tiny_sd15(tmp_path)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path)
    assert pipe.image_encoder.config.image_size == 224
    assert pipe.vae_scale_factor == 2
    out = pipe("a photo", num_inference_steps=1, height=64, width=64, output_type="np")
    assert out.images.shape == (1, 64, 64, 3)
