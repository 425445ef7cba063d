"""Batch generation: identities from files and sub-folders, seeds in PNG metadata, resume without duplicates,
and the ``generate-batch`` command end to end with IP-Adapter-FaceID on a tiny SD1.5 base."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from idportrait.cli import app
from idportrait.errors import ImageError, UserError
from idportrait.generate.batch import identities, read_metadata, read_prompts, readable_png, run_batch
from idportrait.tiny import random_faceid_checkpoint, save_tiny_sd15, tiny_unet


class CountingMethod:
    """Colours each image by its seed and records every call; takes several photos of one person."""

    multi_reference = True

    def __init__(self) -> None:
        self.prepared: list[int] = []
        self.generated: list[tuple[str, int]] = []

    def prepare(self, reference, source: str = "<image>"):
        refs = reference if isinstance(reference, list) else [reference]
        self.prepared.append(len(refs))
        return len(refs)

    def generate(self, prepared, prompts, seeds, **options):
        self.generated += [(p, s) for p in prompts for s in seeds]
        return [Image.new("RGB", (8, 8), (s % 256, prepared, 0)) for _ in prompts for s in seeds]


@pytest.fixture
def faces(tmp_path):
    root = tmp_path / "faces"
    (root / "bob").mkdir(parents=True)
    for name in ("a.png", "b.jpg"):
        Image.new("RGB", (16, 16), "white").save(root / "bob" / name)
    Image.new("RGB", (16, 16), "gray").save(root / "alice.png")
    (root / "readme.txt").write_text("ignored")
    return root


def test_identities_and_prompts(faces, tmp_path):
    people = identities(faces)
    assert list(people) == ["alice", "bob"]
    assert [p.name for p in people["bob"]] == ["a.png", "b.jpg"]
    assert list(identities(faces / "alice.png")) == ["alice"]
    with pytest.raises(ImageError, match="faces folder not found"):
        identities(tmp_path / "missing")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# styles\na photo\n\n  a painting  \n")
    assert read_prompts(prompts) == ["a photo", "a painting"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda root: [(root / "a").mkdir(), (root / "a" / "x.png").touch(), (root / "a.jpg").touch()],
            "'a' and 'a.jpg'",
        ),
        (lambda root: [(root / "b.PNG").touch(), (root / "B.jpg").touch()], "'B.jpg' and 'b.PNG'"),
        (lambda root: [(root / "..jpg").touch()], "identity name '.'"),
        (lambda root: [(root / ".hidden.png").touch()], "identity name '.hidden'"),
        (
            lambda root: [(root / "settings.json").mkdir(), (root / "settings.json" / "x.png").touch()],
            "'settings.json'",
        ),
    ],
)
def test_identity_names_are_unique_and_safe(tmp_path, make, message):
    root = tmp_path / "faces"
    root.mkdir()
    (root / "ok.png").touch()
    make(root)
    with pytest.raises(UserError, match=re.escape(message)):
        identities(root)


def test_batch_writes_seeds_and_resumes(faces, tmp_path):
    out = tmp_path / "out"
    method = CountingMethod()
    counts = run_batch(method, "fake", faces, ["p0", "p1"], out, per_prompt=2, seed=10)
    assert counts == {"written": 8, "skipped": 0, "redone": 0, "identities": 2}
    assert method.prepared == [1, 2]  # bob's two photos go to prepare together
    meta = read_metadata(out / "bob" / "001_01.png")
    assert meta == {"seed": 13, "prompt": "p1", "method": "fake", "references": ["a.png", "b.jpg"]}
    assert Image.open(out / "alice" / "000_00.png").getpixel((0, 0)) == (10, 1, 0)

    (out / "alice" / "001_00.png").unlink()
    again = CountingMethod()
    counts = run_batch(again, "fake", faces, ["p0", "p1"], out, per_prompt=2, seed=10)
    assert counts == {"written": 1, "skipped": 7, "redone": 0, "identities": 2}
    assert again.generated == [("p1", 12)]
    assert not list(out.rglob("*.tmp"))


def test_readable_png_checks_every_chunk(tmp_path):
    path = tmp_path / "a.png"
    Image.effect_noise((32, 32), 40).save(path)
    whole = path.read_bytes()
    assert readable_png(path)
    idat = whole.index(b"IDAT") + 8
    damaged = {
        "empty": b"",
        "truncated": whole[: len(whole) // 2],
        "bit flipped": whole[:idat] + bytes([whole[idat] ^ 1]) + whole[idat + 1 :],
        "not a png": b"GIF89a" + whole[6:],
    }
    for name, content in damaged.items():
        path.write_bytes(content)
        assert not readable_png(path), name


def test_batch_redoes_empty_and_truncated_pngs_and_says_so(faces, tmp_path):
    out = tmp_path / "out"
    run_batch(CountingMethod(), "fake", faces, ["p0", "p1"], out, per_prompt=2, seed=10)
    whole = (out / "bob" / "000_01.png").read_bytes()
    (out / "alice" / "000_00.png").write_bytes(b"")  # a full disk's 0-byte file
    (out / "bob" / "000_01.png").write_bytes(whole[: len(whole) - 20])  # truncated: IEND and a checksum missing
    reported: list = []
    again = CountingMethod()
    counts = run_batch(again, "fake", faces, ["p0", "p1"], out, per_prompt=2, seed=10, on_unreadable=reported.append)
    assert counts == {"written": 2, "skipped": 6, "redone": 2, "identities": 2}
    assert sorted(again.generated) == [("p0", 10), ("p0", 11)]
    assert reported == [out / "alice" / "000_00.png", out / "bob" / "000_01.png"]
    assert (out / "bob" / "000_01.png").read_bytes() == whole


class OnePhotoMethod(CountingMethod):
    """Like ConsistentID: declares that ``prepare`` takes a single image."""

    multi_reference = False

    def prepare(self, reference: Image.Image, source: str = "<image>"):
        self.sources = [*getattr(self, "sources", []), source]
        return super().prepare(reference)


def test_batch_settings_json_and_one_photo_methods(faces, tmp_path):
    out = tmp_path / "out"
    settings = {"method": "fake", "steps": 3}
    run_batch(CountingMethod(), "fake", faces, ["p0"], out, settings=settings)
    listed = json.loads((out / "settings.json").read_text())
    assert listed == {**settings, "images": ["alice/000_00.png", "bob/000_00.png"]}
    image = Image.open(out / "bob" / "000_00.png")
    assert json.loads(image.text["settings"]) == settings and image.text["prompt"] == "p0"

    one = OnePhotoMethod()
    run_batch(one, "one", faces / "alice.png", ["p0"], tmp_path / "alice")
    assert one.sources == [str(faces / "alice.png")]  # the file name reaches the method's error messages
    with pytest.raises(UserError, match=r"one takes one reference photo, got 2 \(a.png, b.jpg\)"):
        run_batch(OnePhotoMethod(), "one", faces, ["p0"], tmp_path / "both")


def test_rerun_with_other_settings_stops_unless_overwrite(faces, tmp_path):
    out = tmp_path / "out"
    run_batch(CountingMethod(), "fake", faces, ["p0"], out, per_prompt=2, settings={"seed": 0, "n": 2}, seed=0)
    with pytest.raises(UserError, match=r"other settings \(n: 2 -> 1; seed: 0 -> 5\); pass --overwrite"):
        run_batch(CountingMethod(), "fake", faces, ["p0"], out, settings={"seed": 5, "n": 1}, seed=5)
    assert read_metadata(out / "alice" / "000_00.png")["seed"] == 0  # nothing was touched

    again = CountingMethod()
    counts = run_batch(again, "fake", faces, ["p0"], out, settings={"seed": 5, "n": 1}, seed=5, overwrite=True)
    assert counts["written"] == 2 and again.generated == [("p0", 5), ("p0", 5)]
    assert read_metadata(out / "alice" / "000_00.png")["seed"] == 5
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["alice/000_00.png", "bob/000_00.png"]
    assert json.loads((out / "settings.json").read_text())["images"] == ["alice/000_00.png", "bob/000_00.png"]


def test_a_killed_run_is_recognised_by_its_settings(faces, tmp_path):
    out = tmp_path / "out"

    class Killed(CountingMethod):
        def generate(self, prepared, prompts, seeds, **options):
            if self.generated:
                raise KeyboardInterrupt
            return super().generate(prepared, prompts, seeds, **options)

    with pytest.raises(KeyboardInterrupt):
        run_batch(Killed(), "fake", faces, ["p0"], out, settings={"seed": 0})
    assert json.loads((out / "settings.json").read_text()) == {"seed": 0}  # no image list: not complete
    with pytest.raises(UserError, match=r"seed: 0 -> 1"):
        run_batch(CountingMethod(), "fake", faces, ["p0"], out, settings={"seed": 1}, seed=1)
    resumed = CountingMethod()
    run_batch(resumed, "fake", faces, ["p0"], out, settings={"seed": 0})
    assert resumed.generated == [("p0", 0)]  # only bob's image was missing


def test_generate_batch_command_checks_out_before_loading(faces, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps({"seed": 0, "method": "plain-sd"}))
    args = ["generate-batch", "--method", "plain-sd", "--base", str(tmp_path / "no-model"), "--faces", str(faces),
            "--prompt", "a portrait", "--seed", "3", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UserError) and "seed: 0 -> 3" in str(result.exception)
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "file")])
    assert isinstance(result.exception, UserError) and "--out must be a folder" in str(result.exception)


def test_generate_batch_command_with_tiny_faceid(tmp_path):
    base = save_tiny_sd15(tmp_path / "sd15")
    ckpt = tmp_path / "ip-adapter-faceid_sd15.bin"
    torch.save(random_faceid_checkpoint(tiny_unet(), id_dim=128), ckpt)
    (tmp_path / "faces").mkdir()
    Image.fromarray(data.astronaut()).save(tmp_path / "faces" / "eileen.png")
    args = [
        "generate-batch", "--method", "ipadapter-faceid", "--base", str(base), "--adapter", str(ckpt),
        "--faces", str(tmp_path / "faces"), "--prompt", "a portrait", "--n", "2",
        "--steps", "1", "--face-backend", "dlib", "--device", "cpu", "--out", str(tmp_path / "out"),
        "--set", "variant=faceid", "--set", "lora_scale=0.5",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    images = sorted((tmp_path / "out" / "eileen").glob("*.png"))
    assert [p.name for p in images] == ["000_00.png", "000_01.png"]
    assert [read_metadata(p)["seed"] for p in images] == [0, 1]
    assert read_metadata(images[0])["prompt"] == "a portrait"
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["images"] == ["eileen/000_00.png", "eileen/000_01.png"]
    assert settings["method"] == "ipadapter-faceid" and settings["lora_scale"] == 0.5
    both = CliRunner().invoke(app, [*args, "--prompts", str(tmp_path / "missing.txt")])
    assert both.exit_code != 0 and "not both" in str(both.exception)
    assert np.asarray(Image.open(images[0])).shape == (64, 64, 3)
