"""The web demo's repainting without a browser: the face of the uploaded person painted into another photo (its
face found automatically, or a mask uploaded), a control image through the demo's ControlNet, and the friendly
lines for uploads that do not fit together."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from idportrait.generate.batch import read_metadata
from idportrait.serve.app import run
from repaint_photos import write_repaint_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = write_repaint_photos(tmp_path_factory.mktemp("repaint"))
    Image.new("L", (64, 64), 255).save(root / "small-mask.png")
    Image.fromarray(data.coffee()).save(root / "coffee.jpg")
    return root


def click(demo, photos, method="consistentid", **repaint):
    paths = {k: str(photos / v) for k, v in repaint.items() if isinstance(v, str)}
    return run(
        demo, str(photos / "astronaut.png"), method, "a woman", "(No style)", 1, 5, False, **paths,
        **{k: v for k, v in repaint.items() if not isinstance(v, str)},
    )  # fmt: skip


@pytest.mark.slow
def test_repaint_the_face_into_a_photo(demo, photos):
    images, files, masks, _, status = click(demo, photos, target="scene.png", strength=0.9)
    assert status == "Done: 1 image(s) with consistentid, repainted into the photo.", status
    assert images[0].size == (384, 512)  # the photo, repainted where its face is
    assert read_metadata(files[0])["seed"] == 5
    tint = np.asarray(masks, np.float32) - np.asarray(Image.open(photos / "scene.png").convert("RGB"), np.float32)
    assert masks.size == (384, 512)
    red = np.abs(tint).sum(-1) > 10  # the area repainted: the face found in the photo
    assert 0.01 < red.mean() < 0.2 and red[60:200, 120:260].mean() > 0.3


@pytest.mark.slow
def test_repaint_with_an_uploaded_mask_and_a_control_image(demo, photos):
    images, _, masks, _, status = click(demo, photos, target="scene.png", repaint_mask="mask.png", control="scene.png")
    assert status.startswith("Done: 1 image(s)"), status
    tint = np.abs(np.asarray(masks, np.float32) - np.asarray(Image.open(photos / "scene.png"), np.float32)).sum(-1)
    assert (tint > 10).mean() == pytest.approx((200 * 200) / (384 * 512), abs=0.01)  # exactly the mask's square
    assert len(images) == 1


@pytest.mark.parametrize(
    ("method", "repaint", "message"),
    [
        ("consistentid", {"repaint_mask": "mask.png"}, "Upload the photo to repaint as well"),
        ("consistentid", {"target": "scene.png", "repaint_mask": "small-mask.png"}, "The mask is 64x64 pixels, but"),
        ("consistentid", {"target": "coffee.jpg"}, "No face found in this photo"),
        ("ipadapter-faceid", {"target": "scene.png"}, "need a ConsistentID method"),
    ],
)
def test_repaint_uploads_that_do_not_fit_are_one_friendly_line(demo, photos, method, repaint, message):
    images, files, masks, _, status = click(demo, photos, method=method, **repaint)
    assert images == [] and files == [] and masks is None
    assert status.startswith("⚠️") and message in status, status


def test_a_control_image_needs_the_demos_controlnet(photos, tmp_path):
    from idportrait.serve.app import Demo

    class NoControlNet:
        name, multi_reference, controlnet = "consistentid", False, None

        def prepare(self, reference, source="<image>"):
            return None

        def mode_images(self, *images):
            raise AssertionError("never reached")

    demo = Demo(methods=["consistentid"], load=lambda name: NoControlNet(), out_dir=tmp_path)
    *_, status = click(demo, photos, control="scene.png")
    assert "no ControlNet: start it with --controlnet canny" in status
