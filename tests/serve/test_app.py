"""The demo's click handler without a browser: validation messages, images, PNG seeds, mask view."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from idportrait.errors import ImageError
from idportrait.generate.batch import read_metadata
from idportrait.serve.app import check_upload, describe_upload, run


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(root / "astronaut.png")
    Image.fromarray(data.coffee()).save(root / "coffee.jpg")
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_upload_checks_name_the_problem(photos):
    assert check_upload(photos / "astronaut.png").size == (512, 512)
    with pytest.raises(ImageError, match="not a supported photo type"):
        check_upload(photos / "notes.txt")
    with pytest.raises(ImageError, match="could not be read as a photo"):
        check_upload(photos / "broken.png")
    with pytest.raises(ImageError, match="upload a photo first"):
        check_upload(None)


def test_upload_status_line_names_the_photo_or_the_problem(photos):
    assert describe_upload(str(photos / "astronaut.png")) == "Photo ready: astronaut.png (512x512). Press Generate."
    assert describe_upload(str(photos / "notes.txt")).startswith("⚠️ '.txt' is not a supported photo type")
    assert describe_upload(None) == ""


@pytest.mark.slow
def test_run_generates_images_with_seeds_and_masks(demo, photos):
    images, files, masks, attention, status = run(
        demo, str(photos / "astronaut.png"), "ipadapter-faceid", "a man", "Watercolor", 2, 7, True, True
    )
    assert attention is None and "ConsistentID methods only" in status
    assert status.startswith("Done: 2 image(s)")
    assert len(images) == 2 and images[0].size == (64, 64)
    meta = [read_metadata(f) for f in files]
    assert [m["seed"] for m in meta] == [7, 8]
    assert meta[0]["prompt"].startswith("watercolor painting, a man. vibrant")  # the release's Watercolor style
    assert masks is not None and masks.size == (512, 512)


@pytest.mark.slow
def test_attention_view_for_consistentid(demo, photos):
    images, files, _, attention, status = run(
        demo, str(photos / "astronaut.png"), "consistentid", "a woman", "(No style)", 1, 3, False, True
    )
    assert len(images) == 1 and read_metadata(files[0])["seed"] == 3
    words = status.split("Attention: ")[1].rstrip(".").split(", ")
    assert "face" in words and len(words) >= 3
    assert attention.size == (64 * len(words), 64)
    panels = np.asarray(attention, np.float32).reshape(64, len(words), 64, 3)
    assert np.abs(panels[:, 0] - panels[:, 1]).mean() > 1.0  # each token attends somewhere else


def test_run_reports_no_face_kindly(demo, photos):
    images, files, masks, _, status = run(
        demo, str(photos / "coffee.jpg"), "ipadapter-faceid", "x", "(No style)", 1, 0, False
    )
    assert images == [] and files == [] and masks is None
    assert "No face found in this photo" in status


@pytest.mark.parametrize("seed", [1e30, -1, 2.5, float("nan"), None])
def test_run_reports_a_bad_seed_kindly(demo, photos, seed):
    images, files, masks, _, status = run(
        demo, str(photos / "astronaut.png"), "ipadapter-faceid", "x", "(No style)", 1, seed, False
    )
    assert images == [] and files == [] and masks is None
    assert status == "⚠️ The seed must be a whole number from 0 to 4294967295."


def test_serve_refuses_unknown_methods():
    from typer.testing import CliRunner

    from idportrait.cli import app

    result = CliRunner().invoke(app, ["serve", "--method", "photomaker", "--masks", "none"])
    assert result.exit_code != 0
    assert "unknown method(s) photomaker" in str(result.exception)
