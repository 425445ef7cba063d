"""FaceInputs: computed from a real packaged photo, saved/loaded with safetensors, clear errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from idportrait.errors import CheckpointError, NoFaceError
from idportrait.pipelines.face_inputs import FaceInputs, zero_image_embeds


def test_astronaut_inputs_shapes(astronaut_inputs, tiny_pipe):
    f = astronaut_inputs
    assert f.id_embedding.shape == (128,)  # dlib descriptor (ArcFace would be 512)
    assert torch.isclose(f.id_embedding.norm(), torch.tensor(1.0), atol=1e-5)
    assert f.clip_embeds.shape == (257, 32)
    assert f.region_embeds.shape == (5, 257, 32)
    assert f.region_names[0] == "Face" and len(f.region_names) == int(f.region_mask.sum())
    n = len(f.region_names)
    zero = zero_image_embeds(tiny_pipe.image_encoder)
    for k in range(n, 5):
        torch.testing.assert_close(f.region_embeds[k], zero)  # padding = the zero image's features
    for k in range(n):
        assert (f.region_embeds[k] - zero).abs().max() > 1e-3


def test_save_load_roundtrip(astronaut_inputs, tmp_path):
    path = tmp_path / "face.safetensors"
    astronaut_inputs.save(path)
    loaded = FaceInputs.load(path)
    for name in ("id_embedding", "clip_embeds", "region_embeds", "region_mask"):
        assert torch.equal(getattr(loaded, name), getattr(astronaut_inputs, name)), name
    assert loaded.region_names == astronaut_inputs.region_names
    assert loaded.source == "astronaut"


def test_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a face-inputs file"):
        FaceInputs.load(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        FaceInputs.load(text)
    with pytest.raises(CheckpointError, match="not found"):
        FaceInputs.load(tmp_path / "missing.safetensors")


def test_no_face_raises(tiny_pipe, face_models):
    from skimage import data

    with pytest.raises(NoFaceError, match="coffee"):
        tiny_pipe.prepare_face_inputs(Image.fromarray(data.coffee()), *face_models, source="coffee.png")


def test_no_face_opt_in_gives_zero_identity_and_no_regions(tiny_pipe, face_models):
    from skimage import data

    face = tiny_pipe.prepare_face_inputs(Image.fromarray(data.coffee()), *face_models, allow_no_face=True)
    assert face.region_names == [] and not face.region_mask.any()
    assert torch.equal(face.id_embedding, torch.zeros(128))
    images = tiny_pipe("a cup", face_inputs=face, num_inference_steps=1, height=32, width=32, output_type="pt").images
    assert torch.isfinite(images).all()


def test_clip_pixels_equal_the_image_processor_within_a_grey_level(tiny_pipe):
    """On photos (not noise): PIL rounds to 8 bits between its two resize passes, torch does not; that is all."""
    import skimage.data
    from PIL import Image

    from idportrait.pipelines.face_inputs import clip_pixels

    photos = [skimage.data.astronaut()[:300, :400], skimage.data.coffee()[:, :260]]  # landscape, portrait
    expected = tiny_pipe.feature_extractor(images=[Image.fromarray(p) for p in photos], return_tensors="pt")
    got = clip_pixels(
        [torch.from_numpy(p.copy()).permute(2, 0, 1).float() for p in photos], tiny_pipe.feature_extractor
    )
    assert got.shape == expected.pixel_values.shape == (2, 3, 224, 224)
    grey_levels = (
        (got - expected.pixel_values).abs() * 255 * torch.tensor(tiny_pipe.feature_extractor.image_std).view(3, 1, 1)
    )
    assert grey_levels.mean() < 0.3 and (grey_levels > 1.01).float().mean() < 0.005 and grey_levels.max() < 8


def test_face_inputs_with_crops_on_device_equal_the_pil_path(tiny_pipe, face_models, astronaut_inputs):
    from idportrait.demo import demo_photo
    from idportrait.pipelines.face_inputs import compute_face_inputs

    pipe = tiny_pipe
    args = (demo_photo(), *face_models, pipe.image_encoder, pipe.feature_extractor, pipe.zero_clip_embeds())
    torch_path = compute_face_inputs(*args, source="astronaut", crops_on_device=True)
    assert torch_path.region_names == astronaut_inputs.region_names
    assert torch.equal(torch_path.id_embedding, astronaut_inputs.id_embedding)
    for name in ("clip_embeds", "region_embeds"):
        a, b = getattr(torch_path, name), getattr(astronaut_inputs, name)
        cosine = torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=-1)
        assert cosine.min() > 0.999, (name, cosine)
