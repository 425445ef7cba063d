"""`idportrait annotate` end to end on real photos: dlib faces, landmark parsing, tiny LLaVA captions, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from idportrait.annotate import schema
from idportrait.annotate.annotate import iter_inputs, safe_key
from idportrait.annotate.prompts import FACIAL_PROMPT, OVERALL_PROMPT
from plain_tar import write_plain_tar


def _cli(args: list[str]) -> str:
    from typer.testing import CliRunner

    from idportrait.cli import app

    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_safe_key_and_inputs(tmp_path):
    assert safe_key("a b/c:d.png") == "a_b_c_d.png"
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "sub" / "x y.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    photos = list(iter_inputs([tmp_path]))
    assert [p.key for p in photos] == ["sub_x_y"]
    assert photos[0].load().size == (8, 8)


@pytest.mark.slow
def test_annotate_cli_writes_schema_and_resumes(tmp_path, tiny_llava, astronaut_photos):
    from idportrait.annotate.captioner import load_captioner

    out = tmp_path / "fgid"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(astronaut_photos / "zz_blank.png")  # no face
    args = ["annotate", str(astronaut_photos), "--out", str(out), "--vlm", str(tiny_llava), "--face-analyzer", "dlib",
            "--parser", "landmarks", "--max-new-tokens", "8"]  # fmt: skip
    output = _cli([*args, "--limit", "1"])
    assert "records.jsonl" in output
    first = schema.read_records(out)
    assert [r["key"] for r in first] == ["astronaut"]

    with open(out / schema.RECORDS, "a") as f:
        f.write('{"key": "torn')  # a run killed mid-line
    _cli(args)
    records = schema.read_records(out)
    assert [r["key"] for r in records] == ["astronaut", "astronaut_mirror"]
    assert records[0] == first[0]
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["key"] for s in skipped] == ["zz_blank"]
    _cli(args)  # everything done: nothing is redone or duplicated
    assert len(schema.read_records(out)) == 2
    assert len((out / "skipped.jsonl").read_text().splitlines()) == 1

    record = records[1]
    assert set(record) >= {"key", "image", "parsing", "masks", "regions", "face", "caption", "facial_caption_raw",
                           "facial_caption", "marked_facial_caption", "marked_regions", "models"}  # fmt: skip
    assert len(record["face"]["embedding"]) == 128  # dlib; insightface:buffalo_l gives 512
    assert record["regions"] == ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"][: len(record["regions"])]
    parsing = schema.load_parsing(out, record)
    assert list(parsing.regions) == record["regions"]
    assert parsing.person_mask.any() and parsing.regions["Face"].any()
    assert Image.open(out / record["image"]).size == (200, 200)

    captioner = load_captioner(str(tiny_llava), max_new_tokens=8)
    image = Image.open(astronaut_photos / "astronaut_mirror.png").convert("RGB")
    assert record["caption"] == captioner.caption(image, OVERALL_PROMPT)
    assert record["facial_caption_raw"] == captioner.caption(image, FACIAL_PROMPT)


@pytest.mark.slow
def test_curated_shard_input_reuses_its_face_embedding(tmp_path, tiny_llava, astronaut_photos):
    import io

    from idportrait.annotate.annotate import annotate
    from idportrait.annotate.captioner import load_captioner
    from idportrait.faces import get_face_parser

    buf = io.BytesIO()
    Image.open(astronaut_photos / "astronaut.png").convert("RGB").save(buf, format="JPEG")
    embedding = np.random.default_rng(0).standard_normal(512).tolist()
    face = {"bbox": [60, 60, 150, 150], "kps": [[90, 100], [120, 100], [105, 115], [92, 130], [118, 130]],
            "score": 0.9, "embedding": embedding}  # fmt: skip
    members = {"000001.jpg": buf.getvalue(), "000001.txt": b"an astronaut",
               "000001.json": json.dumps({"key": "k", "faces": [face]}).encode()}  # fmt: skip
    write_plain_tar(tmp_path / "shard-000000.tar", members.items())

    out = tmp_path / "fgid"
    captioner = load_captioner(str(tiny_llava), max_new_tokens=4)
    counts = annotate([tmp_path / "shard-000000.tar"], out, None, get_face_parser("landmarks"), captioner, {})
    assert counts["new"] == 1
    (record,) = schema.read_records(out)
    assert record["key"] == "shard-000000_000001"
    assert record["face"]["embedding"] == pytest.approx(embedding)  # no face analyzer needed
