"""The init, mask and control images of ConsistentID's other modes: read and checked like photos, the face mask of
the astronaut photo, Canny edges; and the ``consistentid`` method picking its mode from them (tiny models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from idportrait.errors import ImageError, NoFaceError, UserError
from idportrait.methods.image_inputs import (
    FACE_MASK,
    canny_edges,
    face_mask,
    read_image_inputs,
    resolve_image_inputs,
)

PHOTO = "astronaut.png"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """astronaut.png (512x512), a 64x64 square mask, a black mask, a 48x64 mask, a text file named .png."""
    from skimage import data

    folder = tmp_path_factory.mktemp("mode-images")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    mask = np.zeros((512, 512), np.uint8)
    mask[100:300, 150:350] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.new("L", (512, 512)).save(folder / "black.png")
    Image.new("L", (64, 48), 255).save(folder / "small.png")
    (folder / "broken.png").write_text("not an image")
    return folder


def test_files_and_keywords_are_read(files):
    inputs = read_image_inputs(files / "astronaut.png", files / "mask.png", "canny")
    assert inputs.init_image.size == (512, 512) and inputs.mask_image.size == (512, 512)
    assert inputs.control_image == "canny"
    assert read_image_inputs(files / "astronaut.png", FACE_MASK, None).mask_image == FACE_MASK
    resolved = resolve_image_inputs(inputs)
    assert resolved["mask_image"].mode == "L" and resolved["control_image"].mode == "RGB"
    assert set(resolved) == {"init_image", "mask_image", "control_image"}


@pytest.mark.parametrize(
    ("init", "mask", "control", "error", "message"),
    [
        (None, "mask.png", None, UserError, r"--mask .*mask\.png needs the photo it belongs to"),
        (None, None, "canny", UserError, "--control-image canny needs the photo"),
        ("astronaut.png", "small.png", None, UserError, r"small\.png is 64x48 pixels, but --init-image .* is 512x512"),
        ("astronaut.png", "black.png", None, ImageError, "black everywhere: nothing to repaint"),
        ("astronaut.png", "broken.png", None, ImageError, r"broken\.png: not a readable image"),
        ("astronaut.png", "missing.png", None, ImageError, r"missing\.png: file not found"),
        ("astronaut.png", None, "small.png", UserError, "--control-image .* is 64x48 pixels"),
    ],
)
def test_bad_images_are_one_clear_error(files, init, mask, control, error, message):
    def path(name):
        return None if name is None else name if name in ("face", "canny") else files / name

    with pytest.raises(error, match=message):
        read_image_inputs(path(init), path(mask), path(control))


def test_face_mask_covers_the_largest_face_only(files, face_models):
    photo = Image.open(files / "astronaut.png").convert("RGB")
    face = face_models[0].largest_face(photo)
    mask = np.asarray(face_mask(photo, *face_models)) > 0
    assert mask.shape == (512, 512)
    x1, y1, x2, y2 = (int(v) for v in face.bbox)
    assert mask[(y1 + y2) // 2, (x1 + x2) // 2]  # the face's centre is repainted
    assert mask[y1:y2, x1:x2].mean() > 0.6
    assert not mask[400:, :].any() and not mask[:, 400:].any()  # the suit and the shuttle are kept
    assert 0.02 < mask.mean() < 0.15


def test_face_mask_of_a_photo_without_a_face(face_models):
    with pytest.raises(NoFaceError, match=r"party\.jpg"):
        face_mask(Image.new("RGB", (128, 128), (90, 120, 200)), *face_models, source="party.jpg")


def test_canny_edges_are_white_on_black(files):
    edges = np.asarray(canny_edges(Image.open(files / "astronaut.png")))
    assert edges.shape == (512, 512, 3)
    assert set(np.unique(edges)) == {0, 255}
    assert 0.01 < (edges[..., 0] > 0).mean() < 0.5


@pytest.fixture(scope="module")
def method(tiny_models, tmp_path_factory):
    """``consistentid`` on the tiny models with a tiny ControlNet, through the registry's loader."""
    from idportrait.methods import load_method
    from idportrait.tiny import tiny_controlnet

    folder = tmp_path_factory.mktemp("controlnet")
    tiny_controlnet().save_pretrained(folder)
    base, adapter = tiny_models
    return load_method(
        "consistentid", base=str(base), adapter=str(adapter), face_backend="dlib", parser="landmarks",
        device="cpu", controlnet=str(folder), num_inference_steps=2,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("images", "mode"),
    [
        ({"init_image": PHOTO}, "StableDiffusionImg2ImgPipeline"),
        ({"init_image": PHOTO, "mask_image": "face"}, "StableDiffusionInpaintPipeline"),
        ({"init_image": PHOTO, "control_image": "canny"}, "StableDiffusionControlNetImg2ImgPipeline"),
        (
            {"init_image": PHOTO, "mask_image": "mask.png", "control_image": "canny"},
            "StableDiffusionControlNetInpaintPipeline",
        ),
    ],
)
def test_method_picks_the_mode_from_its_images(method, files, images, mode, one_torch_thread):
    from idportrait.demo import demo_photo

    prepared = method.prepare(demo_photo())
    options = {k: v if v in ("face", "canny") else files / v for k, v in images.items()}
    first = method.generate(prepared, ["a photo of a person"], [0, 1], **options)
    inpainting = "mask_image" in images  # the photo at its size, repainted; else the tiny base's 64x64 pixels
    assert [im.size for im in first] == [(512, 512) if inpainting else (64, 64)] * 2
    assert type(method.pipe._mode_pipeline[1]).__name__ == mode
    again = method.generate(prepared, ["a photo of a person"], [1], **options)
    np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(first[1]))


def test_inpainting_keeps_the_photo_outside_the_mask(method, files, one_torch_thread):
    from idportrait.demo import demo_photo

    photo = np.asarray(Image.open(files / "astronaut.png").convert("RGB"))
    mask = np.asarray(Image.open(files / "mask.png")) > 0
    prepared = method.prepare(demo_photo())
    options = {"init_image": files / "astronaut.png", "mask_image": files / "mask.png"}
    out = np.asarray(method.generate(prepared, ["a photo of a person"], [0], **options)[0])
    np.testing.assert_array_equal(out[~mask], photo[~mask])  # pasted back pixel for pixel
    assert np.abs(out[mask].astype(int) - photo[mask]).mean() > 10  # the masked square is repainted
    whole = method.generate(prepared, ["a photo of a person"], [0], crop_context=None, **options)[0]
    assert whole.size == (64, 64)  # no crop: diffusers' output at the working size
    wide = method.generate(prepared, ["a photo of a person"], [0], crop_context=None, height=64, **options)[0]
    assert wide.size == (64, 64)  # a height alone: the width follows from the photo


def test_crop_box_grows_the_mask_box_and_keeps_the_aspect_ratio():
    from idportrait.pipelines.consistentid_modes import crop_box

    mask = Image.new("L", (400, 300))
    mask.paste(255, (100, 100, 140, 120))  # a 40x20 box
    x1, y1, x2, y2 = crop_box(mask, 64, 64, 0.5)  # grown by 20 px on each side, then squared
    assert (x1, y1, x2, y2) == (80, 70, 160, 150)
    assert crop_box(mask, 128, 64, 0.0) == (100, 100, 140, 120)  # 40x20 has the aspect 2:1 already
    with pytest.raises(UserError, match="black everywhere"):
        crop_box(Image.new("L", (8, 8)), 8, 8, 0.5)


def test_method_text2img_is_unchanged_by_the_controlnet(method, one_torch_thread):
    from idportrait.demo import demo_photo

    prepared = method.prepare(demo_photo())
    plain = method.pipe(
        ["a hat"], face_inputs=prepared, generator=[torch.Generator().manual_seed(3)], num_inference_steps=2
    ).images[0]
    ours = method.generate(prepared, ["a hat"], [3])[0]
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(plain))
    with pytest.raises(UserError, match="strength needs an init image"):
        method.generate(prepared, ["a hat"], [3], strength=0.5)
