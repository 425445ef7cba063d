"""``idportrait generate`` and ``idportrait demo`` end to end on tiny local models, and their error paths."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from cli_run import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(data.coffee()).save(folder / "coffee.png")
    (folder / "notes.png").write_text("not an image")
    return folder


def tiny_args(tiny_models, out) -> list[str]:
    base, adapter = tiny_models
    return [
        "--base", str(base), "--adapter", str(adapter), "--face-backend", "dlib", "--parser", "landmarks",
        "--steps", "2", "--merge-step", "0", "--height", "32", "--width", "32", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


def test_generate_writes_images_settings_and_face_inputs(monkeypatch, capsys, tiny_models, photos, tmp_path):
    out = tmp_path / "gen"
    args = ["generate", "--face", str(photos / "astronaut.png"), "-p", "a hat", "-p", "a beach", "--n", "2"]
    code, stdout, _ = run_cli(monkeypatch, capsys, *args, "--seed", "7", *tiny_args(tiny_models, out))
    assert code == 0
    assert str(out) in stdout
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["p00_s7.png", "p00_s8.png", "p01_s7.png", "p01_s8.png"]
    image = Image.open(out / "p01_s8.png")
    assert image.size == (32, 32)
    assert image.text["prompt"] == "a beach" and image.text["seed"] == "8"
    assert json.loads(image.text["settings"])["num_inference_steps"] == 2
    settings = json.loads((out / "settings.json").read_text())
    assert settings["prompts"] == ["a hat", "a beach"] and settings["seeds"] == [7, 8]
    assert settings["images"] == names

    again = tmp_path / "again"
    code, _, _ = run_cli(
        monkeypatch,
        capsys,
        "generate",
        "--face-inputs",
        str(out / "face_inputs.safetensors"),
        "-p",
        "a beach",
        "--seed",
        "8",
        *tiny_args(tiny_models, again),
        "--parser",
        "bisenet",
        "--parser-weights",
        "missing.pth",
    )  # fmt: skip (face models are not loaded with --face-inputs: the missing BiSeNet file is never opened)
    assert code == 0
    first = torch.tensor(list(Image.open(out / "p01_s8.png").getdata()), dtype=torch.float32)
    second = torch.tensor(list(Image.open(again / "p00_s8.png").getdata()), dtype=torch.float32)
    assert (first - second).abs().max() <= 1  # same identity, prompt and seed -> same image
    assert settings["lora_fused"] is True

    unfused = tmp_path / "unfused"
    face_inputs = ["--face-inputs", str(out / "face_inputs.safetensors"), "-p", "a beach"]
    args = ["generate", *face_inputs, "--seed", "8", "--no-fuse-lora", *tiny_args(tiny_models, unfused)]
    code, _, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0
    third = torch.tensor(list(Image.open(unfused / "p00_s8.png").getdata()), dtype=torch.float32)
    assert (first - third).abs().max() <= 1  # fusing the LoRA does not change the image
    assert json.loads((unfused / "settings.json").read_text())["lora_fused"] is False


def test_generate_refuses_another_run_in_its_out_unless_overwrite(monkeypatch, capsys, tiny_models, photos, tmp_path):
    out = tmp_path / "gen"
    face = ["generate", "--face", str(photos / "astronaut.png")]
    assert run_cli(monkeypatch, capsys, *face, "-p", "a hat", "--n", "2", *tiny_args(tiny_models, out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    code, _, err = run_cli(monkeypatch, capsys, *face, "-p", "a hat", "--seed", "5", *tiny_args(tiny_models, out))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "holds images made with other settings" in lines[0], err
    assert "seeds: [0, 1] -> [5]" in lines[0] and "--overwrite" in lines[0]
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before  # refused before anything was written

    args = [*face, "-p", "a hat", "--seed", "5", "--overwrite", *tiny_args(tiny_models, out)]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["p00_s5.png"]  # the earlier run's images are gone
    assert json.loads((out / "settings.json").read_text())["images"] == ["p00_s5.png"]


@pytest.mark.parametrize(
    ("photo", "adapter", "message"),
    [
        ("notes.png", None, "notes.png: not a readable image file"),
        ("missing.jpg", None, "missing.jpg: file not found"),
        ("coffee.png", None, "coffee.png: no face found"),
        ("astronaut.png", "other.bin", "not a usable ConsistentID checkpoint"),
    ],
)
def test_generate_bad_input_one_line_exit_2(
    monkeypatch, capsys, tiny_models, photos, tmp_path, photo, adapter, message
):
    args = tiny_args(tiny_models, tmp_path / "out")
    if adapter:
        other = tmp_path / adapter
        torch.save({"state_dict": {"weight": torch.zeros(2)}}, other)
        args[args.index("--adapter") + 1] = str(other)
    code, _, err = run_cli(monkeypatch, capsys, "generate", "--face", str(photos / photo), "-p", "x", *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.slow
def test_demo_runs_offline(monkeypatch, capsys, tmp_path):
    out = tmp_path / "demo"
    code, stdout, _ = run_cli(monkeypatch, capsys, "demo", "--out", str(out), "--steps", "2", "--size", "32")
    assert code == 0
    settings = json.loads((out / "settings.json").read_text())
    assert len(settings["images"]) == 4 and settings["face_backend"] == "dlib"
    for name in ["reference.png", "parsing.png", "regions.png", *settings["images"]]:
        assert (out / name).is_file() and str(out / name) in stdout
    assert (out / "models" / "tiny-sd15" / "model_index.json").is_file()


@pytest.fixture(scope="module")
def tiny_faceid(tmp_path_factory):
    """(tiny SD1.5 base folder, tiny released-layout IP-Adapter-FaceID checkpoint for 128-D dlib embeddings)."""
    from idportrait.tiny import random_faceid_checkpoint, save_tiny_sd15, tiny_unet

    folder = tmp_path_factory.mktemp("tiny-faceid")
    base = save_tiny_sd15(folder / "sd15")
    ckpt = folder / "ip-adapter-faceid_sd15.bin"
    torch.save(random_faceid_checkpoint(tiny_unet(), id_dim=128), ckpt)
    return base, ckpt


def faceid_args(tiny_faceid, out) -> list[str]:
    base, ckpt = tiny_faceid
    return [
        "--method", "ipadapter-faceid", "--base", str(base), "--adapter", str(ckpt), "--face-backend", "dlib",
        "--set", "variant=faceid", "--set", "scale=20", "--steps", "1", "--height", "32", "--width", "32",
        "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


def test_generate_ipadapter_faceid_averages_several_faces(monkeypatch, capsys, tiny_faceid, photos, tmp_path):
    mirrored = tmp_path / "mirrored.png"
    Image.open(photos / "astronaut.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    faces = ["--face", str(photos / "astronaut.png"), "--face", str(mirrored)]
    out = tmp_path / "two"
    code, stdout, err = run_cli(monkeypatch, capsys, "generate", *faces, "-p", "a hat", "--n", "2",
                                *faceid_args(tiny_faceid, out))  # fmt: skip
    assert code == 0, err
    assert str(out) in stdout
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["p00_s0.png", "p00_s1.png"]
    assert not (out / "face_inputs.safetensors").exists()  # only ConsistentID has saveable face inputs
    settings = json.loads((out / "settings.json").read_text())
    assert settings["method"] == "ipadapter-faceid" and settings["variant"] == "faceid"
    assert settings["face"] == [str(photos / "astronaut.png"), str(mirrored)] and settings["images"] == names
    image = Image.open(out / "p00_s1.png")
    assert image.size == (32, 32) and image.text["prompt"] == "a hat" and image.text["seed"] == "1"
    assert json.loads(image.text["idportrait"]) == {"seed": 1, "prompt": "a hat", "method": "ipadapter-faceid"}

    one = tmp_path / "one"
    code, _, err = run_cli(monkeypatch, capsys, "generate", "--face", str(photos / "astronaut.png"), "-p", "a hat",
                           *faceid_args(tiny_faceid, one))  # fmt: skip
    assert code == 0, err
    averaged = torch.tensor(list(Image.open(out / "p00_s0.png").getdata()), dtype=torch.float32)
    single = torch.tensor(list(Image.open(one / "p00_s0.png").getdata()), dtype=torch.float32)
    assert (averaged - single).abs().max() > 1  # the mirrored photo moved the mean embedding


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "photomaker"], "unknown method 'photomaker'; available: consistentid"),
        (["--method", "plain-sd"], "--adapter does not apply to plain-sd"),
        (["--method", "ipadapter-faceid", "--merge-step", "3"], "--merge-step and --id-scale apply to ConsistentID"),
        (["--face", "coffee.png"], "consistentid takes one reference photo, got 2 (astronaut.png, coffee.png)"),
    ],
)
def test_generate_bad_method_options_one_line_exit_2(
    monkeypatch, capsys, tiny_models, photos, tmp_path, extra, message
):
    base, adapter = tiny_models
    extra = [str(photos / e) if e.endswith(".png") else e for e in extra]
    args = ["generate", "--face", str(photos / "astronaut.png"), "-p", "x", "--base", str(base), "--adapter",
            str(adapter), "--face-backend", "dlib", "--steps", "1", "--device", "cpu",
            "--out", str(tmp_path / "out")]  # fmt: skip
    if "--method" not in extra:  # ConsistentID without the BiSeNet hub download
        args += ["--parser", "landmarks"]
    code, _, err = run_cli(monkeypatch, capsys, *args, *extra)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_generate_with_a_few_step_accelerator(monkeypatch, capsys, tiny_models, photos, tmp_path):
    """--accelerator lcm: the LoRA file loads, steps and guidance default to the recipe (4, 1.0) and are recorded."""
    from accelerator_loras import write_accelerator_lora
    from idportrait.tiny import tiny_unet

    lora = write_accelerator_lora(tiny_unet(), "lcm", tmp_path / "lcm.safetensors")
    base, adapter = tiny_models
    out = tmp_path / "fast"
    code, _, err = run_cli(
        monkeypatch, capsys, "generate", "--face", str(photos / "astronaut.png"), "-p", "a hat",
        "--base", str(base), "--adapter", str(adapter), "--face-backend", "dlib", "--parser", "landmarks",
        "--height", "32", "--width", "32", "--device", "cpu", "--out", str(out),
        "--accelerator", "lcm", "--accelerator-weights", str(lora),
    )  # fmt: skip
    assert code == 0, err
    settings = json.loads((out / "settings.json").read_text())
    assert settings["accelerator"] == "lcm" and settings["accelerator_weights"] == str(lora)
    assert settings["num_inference_steps"] == 4 and settings["guidance_scale"] == 1.0
    assert Image.open(out / "p00_s0.png").size == (32, 32)

    code, _, err = run_cli(
        monkeypatch, capsys, "generate", "--face", str(photos / "astronaut.png"), "-p", "a hat",
        *tiny_args(tiny_models, tmp_path / "bad"), "--accelerator-weights", str(lora),
    )  # fmt: skip
    assert code == 2 and "--accelerator-weights needs --accelerator" in err
