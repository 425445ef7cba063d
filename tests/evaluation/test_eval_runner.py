"""The generation step of ``evaluate run`` with a fake method: resume only with the same settings, ``overwrite``,
records in job order, and per-process manifests merged without losing or repeating a record."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from idportrait.errors import UserError
from idportrait.evaluation.config import EvalConfig, MethodSpec
from idportrait.evaluation.records import (
    MANIFEST,
    Record,
    append_record,
    load_references,
    manifest_part,
    merge_manifest_parts,
    read_manifest,
)
from idportrait.evaluation.runner import generate_all


class SeedColour:
    """Colours each image by its seed and counts the images it makes."""

    def __init__(self) -> None:
        self.made = 0

    def prepare(self, reference):
        return None

    def generate(self, prepared, prompts, seeds, steps=1):
        self.made += len(seeds)
        return [Image.new("RGB", (8, 8), (seed, steps, 0)) for seed in seeds]


@pytest.fixture
def config(tmp_path) -> EvalConfig:
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("bo", "ada"):
        Image.new("RGB", (8, 8), "gray").save(refs / f"{name}.png")
    methods = [MethodSpec("fake", label="a", generate={"steps": 1}), MethodSpec("fake", label="b")]
    return EvalConfig(references=refs, output=tmp_path / "run", methods=methods, seeds=[0, 1], prompt_limit=2)


def test_rerun_with_other_settings_stops_unless_overwrite(config):
    made = SeedColour()
    records = generate_all(config, lambda name, base, **options: made)
    assert made.made == 2 * 2 * 2 * 2  # methods x identities x prompts x seeds
    assert [(r.method, r.identity, r.seed) for r in records[:3]] == [("a", "ada", 0), ("a", "ada", 1), ("a", "ada", 0)]

    config.methods[0].generate = {"steps": 3}
    with pytest.raises(UserError, match=r"other settings \(a: generate \{'steps': 1\} -> \{'steps': 3\}\)"):
        generate_all(config, lambda name, base, **options: SeedColour())
    again = SeedColour()
    records = generate_all(config, lambda name, base, **options: again, overwrite=True)
    assert again.made == 8  # only method a is made again
    assert len(records) == 16 and len(read_manifest(config.output)) == 16
    image = Image.open(config.output / records[0].path)
    assert image.getpixel((0, 0)) == (0, 3, 0)
    assert json.loads((config.output / "generation_settings.json").read_text())["a"]["generate"] == {"steps": 3}


def test_manifest_parts_merge_once_and_survive_a_cut_line(tmp_path):
    def record(seed: int) -> Record:
        return Record("m", "ada", 0, "all", "p", seed, f"images/m/ada/p000_s{seed}.png")

    append_record(tmp_path, record(0), manifest_part(0))
    with open(tmp_path / manifest_part(1), "w") as f:
        f.write('{"method": "m", "ident')  # a process killed mid-line
    append_record(tmp_path, record(1), manifest_part(1))  # the rerun's line is not glued to the cut one
    assert [r.seed for r in read_manifest(tmp_path)] == [0, 1]
    merge_manifest_parts(tmp_path)
    assert not list(tmp_path.glob("generation-rank*"))
    assert [r.seed for r in read_manifest(tmp_path)] == [0, 1]
    assert len((tmp_path / MANIFEST).read_text().splitlines()) == 3  # two records and the cut line


def test_reference_names_are_plain_and_unique(tmp_path):
    (tmp_path / "..png").touch()
    with pytest.raises(UserError, match=r"\.\.png: identity name '\.' cannot be an output folder"):
        load_references(tmp_path)
    (tmp_path / "..png").unlink()
    (tmp_path / "Ada.png").touch()
    (tmp_path / "ada.jpg").touch()
    with pytest.raises(UserError, match="share a name"):
        load_references(tmp_path)
