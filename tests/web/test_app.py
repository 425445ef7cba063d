"""The demo's click handler without a browser: validation messages, images, PNG seeds, mask view."""

from __future__ import annotations

import pytest
from PIL import Image
from skimage import data
from web_tiny_demo import tiny_demo

from idportrait.app import check_upload, run
from idportrait.errors import ImageError
from idportrait.generate.batch import read_metadata


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return tiny_demo(tmp_path_factory.mktemp("demo"))


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


def test_run_generates_images_with_seeds_and_masks(demo, photos):
    images, files, masks, status = run(
        demo, str(photos / "astronaut.png"), "ipadapter-faceid", "a man", "Watercolor", 2, 7, True
    )
    assert status.startswith("Done: 2 image(s)")
    assert len(images) == 2 and images[0].size == (64, 64)
    meta = [read_metadata(f) for f in files]
    assert [m["seed"] for m in meta] == [7, 8]
    assert meta[0]["prompt"].startswith("watercolor painting of a man")
    assert masks is not None and masks.size == (512, 512)


def test_run_reports_no_face_kindly(demo, photos):
    images, files, masks, status = run(demo, str(photos / "coffee.jpg"), "ipadapter-faceid", "x", "None", 1, 0, False)
    assert images == [] and files == [] and masks is None
    assert "No face found in this photo" in status


def test_serve_refuses_unknown_methods():
    from typer.testing import CliRunner

    from idportrait.cli import app

    result = CliRunner().invoke(app, ["serve", "--method", "photomaker", "--masks", "none"])
    assert result.exit_code != 0
    assert "unknown method(s) photomaker" in str(result.exception)
