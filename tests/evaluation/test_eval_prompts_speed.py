from __future__ import annotations

import json
import time

import pytest

from idportrait.errors import UserError
from idportrait.evaluation.prompts import consistentid_prompts, load_prompts
from idportrait.evaluation.speed import StageTimer, instrument, stage


def test_consistentid_prompt_set_is_the_papers_45_in_4_categories():
    prompts = consistentid_prompts()
    counts = {c: sum(p.category == c for p in prompts) for c in {p.category for p in prompts}}
    assert counts == {"clothing_accessory": 10, "background": 10, "action": 15, "style": 10}
    assert [p.index for p in prompts] == list(range(45))
    assert len({p.template for p in prompts}) == 45
    assert all("{class_word}" in p.template for p in prompts)
    assert prompts[0].fill("woman") == "a woman wearing a red hat"
    assert prompts[-1].fill("man") == "a street art stencil of a man"


def test_coco_captions_first_caption_per_image_and_seeded_subset(tmp_path):
    coco = {
        "annotations": [
            {"image_id": 7, "caption": "A man  riding a horse."},
            {"image_id": 3, "caption": "A woman reading a book."},
            {"image_id": 7, "caption": "Second caption of image 7."},
            {"image_id": 5, "caption": "A person cooking."},
        ]
    }
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps(coco))
    prompts = load_prompts(path)
    assert [p.template for p in prompts] == ["A woman reading a book.", "A person cooking.", "A man riding a horse."]
    assert {p.category for p in prompts} == {"coco"}
    subset = load_prompts(path, limit=2, seed=1)
    assert len(subset) == 2 and set(subset) <= set(prompts) and subset == load_prompts(path, limit=2, seed=1)
    assert [p.index for p in subset] == sorted(p.index for p in subset)
    assert prompts[0].fill("woman") == "A woman reading a book."  # no placeholder: used as is


def test_text_prompt_file_and_bad_files(tmp_path):
    (tmp_path / "p.txt").write_text("a {class_word} on a boat\n\na {class_word} skiing\n")
    assert [p.fill("man") for p in load_prompts(tmp_path / "p.txt")] == ["a man on a boat", "a man skiing"]
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(UserError, match=r"bad\.json"):
        load_prompts(tmp_path / "bad.json")
    with pytest.raises(UserError, match="not found"):
        load_prompts(tmp_path / "missing.txt")


def test_stage_timer_accumulates_only_when_active():
    with stage("unet"):  # no active timer: a no-op
        pass
    timer = StageTimer()
    with timer.activate():
        for _ in range(2):
            with stage("unet"):
                time.sleep(0.01)
        with stage("decode"):
            pass
    with stage("unet"):
        time.sleep(0.02)  # after deactivation: not counted
    assert timer.counts == {"unet": 2, "decode": 1}
    assert 0.02 <= timer.totals["unet"] < 0.04
    assert timer.per_image(2)["unet"] == pytest.approx(timer.totals["unet"] / 2)


def test_same_name_nested_stages_count_once():
    timer = StageTimer()
    with timer.activate(), stage("unet"), stage("unet"):
        time.sleep(0.01)
    assert timer.counts == {"unet": 1}


def test_instrument_times_the_components_of_a_method_without_changing_results():
    import torch

    class Analyzer:
        def detect(self, image):
            time.sleep(0.01)
            return [image]

        def largest_face(self, image):
            return self.detect(image)[0]

    class Pipe:
        unet = torch.nn.Linear(2, 2)

    class Method:
        face_analyzer = Analyzer()
        pipe = Pipe()

    method = Method()
    x = torch.ones(1, 2)
    expected = method.pipe.unet(x)
    assert instrument(method) == ["face_analyzer.detect", "pipe.unet.forward"]
    assert instrument(method) == []  # idempotent
    timer = StageTimer()
    with timer.activate():
        assert method.face_analyzer.largest_face("img") == "img"
        assert torch.equal(method.pipe.unet(x), expected)
    assert timer.counts == {"face_id": 1, "unet": 1}
    assert timer.totals["face_id"] >= 0.01
    assert Analyzer().detect.__name__ == "detect" and not hasattr(Analyzer.detect, "__idportrait_stage__")
