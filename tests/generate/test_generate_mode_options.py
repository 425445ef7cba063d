"""``--init-image --mask --strength --control-image --controlnet`` on ``generate`` and ``generate-batch``: a face
repainted into a photo and a ControlNet run end to end on tiny models, settings recorded, and every bad
combination one error line with exit code 2 before any model loads."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from cli_run import run_cli
from repaint_photos import write_repaint_photos

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """astronaut.png (the reference, 512x512), scene.png (the astronaut at 384x512), masks, a tiny ControlNet."""
    from idportrait.tiny import tiny_controlnet

    folder = write_repaint_photos(tmp_path_factory.mktemp("mode-files"))
    Image.new("L", (384, 512)).save(folder / "black.png")
    Image.new("L", (128, 128), 255).save(folder / "square.png")
    tiny_controlnet().save_pretrained(folder / "controlnet")
    return folder


def tiny_args(tiny_models, out) -> list[str]:
    base, adapter = tiny_models
    return [
        "--base", str(base), "--adapter", str(adapter), "--face-backend", "dlib", "--parser", "landmarks",
        "--steps", "2", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


def test_generate_repaints_the_face_into_a_photo(monkeypatch, capsys, tiny_models, files, tmp_path):
    out = tmp_path / "repaint"
    args = ["generate", "--face", str(files / "astronaut.png"), "-p", "a photo of a person", "--n", "2"]
    args += ["--init-image", str(files / "scene.png"), "--mask", "face", "--strength", "0.9"]
    code, _, err = run_cli(monkeypatch, capsys, *args, *tiny_args(tiny_models, out))
    assert code == 0, err
    image = Image.open(out / "p00_s1.png")
    assert image.size == (384, 512)  # the photo, repainted where its face is
    settings = json.loads((out / "settings.json").read_text())
    assert settings["init_image"] == str(files / "scene.png") and settings["mask_image"] == "face"
    assert settings["strength"] == 0.9
    assert json.loads(image.text["settings"])["mask_image"] == "face"


def test_generate_with_a_controlnet(monkeypatch, capsys, tiny_models, files, tmp_path):
    out = tmp_path / "control"
    args = ["generate", "--face", str(files / "astronaut.png"), "-p", "a photo of a person"]
    args += ["--control-image", str(files / "mask.png"), "--controlnet", str(files / "controlnet")]
    code, _, err = run_cli(monkeypatch, capsys, *args, *tiny_args(tiny_models, out), "--height", "32", "--width", "32")
    assert code == 0, err
    assert Image.open(out / "p00_s0.png").size == (32, 32)
    assert json.loads((out / "settings.json").read_text())["controlnet"] == str(files / "controlnet")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mask", "mask.png"], "--mask .*mask.png needs the photo it belongs to"),
        (["--init-image", "scene.png", "--mask", "square.png"], "is 128x128 pixels, but --init-image .* is 384x512"),
        (["--init-image", "scene.png", "--mask", "black.png"], "black everywhere: nothing to repaint"),
        (["--init-image", "scene.png", "--mask", "missing.png"], "missing.png: file not found"),
        (["--init-image", "scene.png", "--strength", "1.5"], r"--strength 1.5: must be in \(0, 1\]"),
        (["--strength", "0.5"], "--strength needs --init-image"),
        (["--init-image", "scene.png", "--control-image", "canny"], "--control-image and --controlnet go together"),
        (["--controlnet", "canny"], "--controlnet needs --control-image"),
        (["--init-image", "scene.png", "--method", "instantid"], "--init-image apply to ConsistentID, not instantid"),
        (["--control-image", "canny", "--controlnet", "x"], "--control-image canny needs the photo"),
    ],
)
def test_bad_mode_options_one_line_exit_2(monkeypatch, capsys, files, tmp_path, extra, message):
    extra = [str(files / v) if v.endswith(".png") else v for v in extra]
    args = ["generate", "--face", str(files / "astronaut.png"), "-p", "x", *extra]
    args += ["--base", str(tmp_path / "no-such-base"), "--out", str(tmp_path / "out")]  # nothing may load
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.search(message, lines[0]), err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_mask_face_needs_the_face_models(monkeypatch, capsys, files, tmp_path):
    args = ["generate", "--face-inputs", str(tmp_path / "f.safetensors"), "-p", "x"]
    args += ["--init-image", str(files / "scene.png"), "--mask", "face", "--out", str(tmp_path / "out")]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "pass --face instead of --face-inputs" in err


def test_generate_batch_repaints_every_identity_and_resumes_only_the_same_settings(
    monkeypatch, capsys, tiny_models, files, tmp_path
):
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.open(files / "astronaut.png").save(faces / "eileen.png")
    out = tmp_path / "batch"
    base, adapter = tiny_models
    args = [
        "generate-batch", "--faces", str(faces), "--prompt", "a photo of a person", "--base", str(base),
        "--adapter", str(adapter), "--face-backend", "dlib", "--set", "parser=landmarks", "--steps", "1",
        "--device", "cpu", "--out", str(out), "--init-image", str(files / "scene.png"),
    ]  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, *args, "--mask", str(files / "mask.png"))
    assert code == 0, err
    assert Image.open(out / "eileen" / "000_00.png").size == (384, 512)
    assert json.loads((out / "settings.json").read_text())["mask_image"] == str(files / "mask.png")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--mask", "face")
    assert code == 2 and "mask_image" in err and "other settings" in err
