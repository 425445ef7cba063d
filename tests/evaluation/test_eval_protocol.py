"""The protocol end to end on CPU: tiny SD1.5 base, two real identities, 2 prompts, 1 seed, tiny metric models."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idportrait.evaluation.command import app
from idportrait.evaluation.records import MANIFEST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def references(tmp_path_factory, astronaut, tom_hanks) -> Path:
    folder = tmp_path_factory.mktemp("refs")
    astronaut.save(folder / "astronaut.png")
    tom_hanks.resize((224, 224)).save(folder / "tom.png")
    return folder


def _metrics(tiny_clip_dir, tiny_dino_dir, facenet_weights: str) -> str:
    return (
        f'[metrics]\nclip = "{tiny_clip_dir}"\ndino = "{tiny_dino_dir}"\nface_backend = "dlib"\n'
        f'facenet_weights = "{facenet_weights}"\nparser = "landmarks"\nfid_features = "dino"\ndevice = "cpu"\n'
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_generates_resumes_and_reports(tmp_path, references, tiny_clip_dir, tiny_dino_dir):
    from idportrait.demo import build_demo_models

    base, adapter = build_demo_models(tmp_path / "models")  # tiny SD1.5 base + tiny ConsistentID checkpoint
    gen = "{ num_inference_steps = 1, height = 64, width = 64 }"
    config = tmp_path / "eval.toml"
    config.write_text(
        f'references = "{references}"\noutput = "run"\nbase = "{base}"\nseeds = [0]\nprompts = "consistentid"\n'
        f'prompt_limit = 2\ndevice = "cpu"\nclass_words = {{ astronaut = "woman", tom = "man" }}\n\n'
        f'[[methods]]\nname = "plain-sd"\ngenerate = {gen}\n\n'
        f'[[methods]]\nname = "consistentid"\ngenerate = {gen}\noptions = {{ adapter = "{adapter}", '
        f'face_backend = "dlib", parser = "landmarks", dtype = "float32" }}\n\n'
        + _metrics(tiny_clip_dir, tiny_dino_dir, "none")  # FaceNet is slow on CPU: see test_eval_facesim.py
    )
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    lines = (run / MANIFEST).read_text().splitlines()
    assert len(lines) == 2 * 2 * 2  # methods x identities x prompts (1 seed)
    records = [json.loads(line) for line in lines]
    assert all(" woman " in r["prompt"] for r in records if r["identity"] == "astronaut")
    assert all(" man " in r["prompt"] for r in records if r["identity"] == "tom")
    assert all(r["seconds"] > 0 and (run / r["path"]).is_file() for r in records)

    rows = _read_csv(run / "scores.csv")
    assert len(rows) == 8
    assert all(r["clip_t"] and r["clip_i"] and r["dino"] for r in rows)
    summary = {r["method"]: r for r in _read_csv(run / "summary.csv")}
    assert set(summary) == {"plain-sd", "consistentid"}
    for s in summary.values():
        assert s["images"] == "4"
        assert int(s["no_face"]) + sum(1 for r in rows if r["method"] == s["method"] and r["face"] == "True") == 4
        assert not math.isnan(float(s["FD_DINO"]))
    table = (run / "summary.md").read_text()
    assert table.startswith("| Method | CLIP-T | CLIP-I | DINO |") and "| consistentid |" in table
    assert "| Method | prepare | generate |" in table
    assert all(float(s["s_prepare"]) >= 0 and float(s["s_generate"]) > 0 for s in summary.values())
    split = summary["consistentid"]  # Table V's stages, timed by `instrument` around the method's components
    assert all(float(split[f"s_{name}"]) > 0 for name in ("parsing", "face_id", "encoders", "unet", "decode"))
    assert (run / "plots" / "clip_t.png").is_file() and (run / "grids" / "astronaut.png").is_file()
    assert "summary.md" in result.output or "table:" in result.output

    first = run / records[0]["path"]
    first.unlink()
    mtimes = {r["path"]: (run / r["path"]).stat().st_mtime_ns for r in records[1:]}
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert first.is_file()  # the missing image was made again ...
    assert all((run / p).stat().st_mtime_ns == t for p, t in mtimes.items())  # ... and only that one
    assert len(_read_csv(run / "scores.csv")) == 8


def test_score_folder_identical_images_are_maximal(
    tmp_path, references, astronaut, tom_hanks, tiny_clip_dir, tiny_dino_dir
):
    generated = tmp_path / "generated"
    for method, images in {"copy": [astronaut, tom_hanks.resize((224, 224))], "swap": [tom_hanks, astronaut]}.items():
        for identity, image in zip(["astronaut", "tom"], images, strict=True):
            (generated / method / identity).mkdir(parents=True)
            image.save(generated / method / identity / "0.png")
    config = tmp_path / "metrics.toml"
    config.write_text(_metrics(tiny_clip_dir, tiny_dino_dir, "none"))  # FaceNet: see test_eval_facesim.py
    args = ["score", "--generated", str(generated), "--references", str(references), "--config", str(config)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = {r["method"]: r for r in _read_csv(generated / "summary.csv")}
    copy, swap = summary["copy"], summary["swap"]
    for metric in ("clip_i", "dino", "facesim_arcface", "fgis"):
        assert float(copy[metric]) == pytest.approx(100.0, abs=1e-3), metric
        assert float(swap[metric]) < float(copy[metric]), metric
    assert copy["no_face"] == "0" and copy["clip_t"] == "" and copy["facesim_facenet"] == ""  # no prompt, no FaceNet
    table = (generated / "summary.md").read_text()
    assert "| copy |" in table and "FaceSim (dlib)" in table and "FaceSim (FaceNet)" not in table


def test_bad_config_is_one_clear_error(tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text('references = "refs"\noutput = "run"\nmethods = []\ncolour = 1\n')
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code != 0
    assert "unknown key(s) in config: colour" in str(result.exception)
