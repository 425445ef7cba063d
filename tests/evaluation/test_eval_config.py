from __future__ import annotations

import json

import pytest

from idportrait import registry
from idportrait.errors import UserError
from idportrait.evaluation.config import load_config, load_metrics_spec
from idportrait.evaluation.records import MANIFEST, Record, append_record, load_generated, read_manifest


def test_toml_yaml_json_give_the_same_config(tmp_path):
    (tmp_path / "a.toml").write_text(
        'references = "refs"\noutput = "out"\nseeds = [1, 2]\nclass_words = { alice = "woman" }\n'
        '[[methods]]\nname = "consistentid"\ngenerate = { num_inference_steps = 30 }\n'
        '[[methods]]\nname = "plain-sd"\n[metrics]\nfid_features = "dino"\n'
    )
    data = {
        "references": "refs",
        "output": "out",
        "seeds": [1, 2],
        "class_words": {"alice": "woman"},
        "methods": [{"name": "consistentid", "generate": {"num_inference_steps": 30}}, {"name": "plain-sd"}],
        "metrics": {"fid_features": "dino"},
    }
    (tmp_path / "a.json").write_text(json.dumps(data))
    (tmp_path / "a.yaml").write_text(
        "references: refs\noutput: out\nseeds: [1, 2]\nclass_words: {alice: woman}\nmethods:\n"
        "  - {name: consistentid, generate: {num_inference_steps: 30}}\n  - {name: plain-sd}\n"
        "metrics: {fid_features: dino}\n"
    )
    configs = [load_config(tmp_path / f"a.{ext}") for ext in ("toml", "json", "yaml")]
    assert configs[0] == configs[1] == configs[2]
    config = configs[0]
    assert config.references == tmp_path.resolve() / "refs" and config.output == tmp_path.resolve() / "out"
    assert [m.label for m in config.methods] == ["consistentid", "plain-sd"]
    assert config.class_word_for("alice") == "woman" and config.class_word_for("bob") == "person"
    assert config.metrics.clip == registry.CLIP_EVAL and config.metrics.dino == registry.DINO_VIT_S16
    assert load_metrics_spec(tmp_path / "a.toml").fid_features == "dino"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('output = "o"\nmethods = []\n', "missing 'references'"),
        ('references = "r"\noutput = "o"\n[[methods]]\nname = "a"\n[[methods]]\nname = "a"\n', "labels must be unique"),
        (
            'references = "r"\noutput = "o"\n[[methods]]\nname = "a"\nsteps = 3\n',
            r"unknown key\(s\) in \[\[methods\]\]",
        ),
        ('references = "r"\noutput = "o"\nseeds = []\n[[methods]]\nname = "a"\n', "seeds must not be empty"),
        ("references = \n", "cannot parse config"),
    ],
)
def test_bad_configs_name_the_file_and_the_problem(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(UserError, match=message) as err:
        load_config(tmp_path / "bad.toml")
    assert "bad.toml" in str(err.value)


def test_manifest_last_record_wins_and_a_torn_line_is_ignored(tmp_path):
    record = Record("m", "alice", 3, "style", "a woman", 0, "images/m/alice/p003_s0.png", seconds=1.0)
    append_record(tmp_path, record)
    append_record(tmp_path, Record(**{**record.__dict__, "seconds": 2.0}))
    with open(tmp_path / MANIFEST, "a") as f:
        f.write('{"method": "m", "identi')
    (records,) = read_manifest(tmp_path)
    assert records.seconds == 2.0
    with pytest.raises(UserError, match="no generated images"):
        load_generated(tmp_path)  # the recorded image file does not exist


def test_images_of_an_identity_without_reference_are_an_error_not_a_skip(tmp_path):
    from idportrait.evaluation.score import MetricModels, score_records

    record = Record("m", "bob", 0, "all", None, None, "m/bob/0.png")
    with pytest.raises(UserError, match="no reference photo: bob"):
        score_records(tmp_path, [record], {"alice": tmp_path / "alice.png"}, MetricModels())
