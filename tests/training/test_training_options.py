"""Every training option is checked before any model loads: one `error:` line, exit code 2, no traceback.

The base given is a folder that does not exist, so a check that came after model loading would fail on the base
instead of naming the option.
"""

from __future__ import annotations

import pytest
from training_shards import write_faceid_shard

from cli_run import run_cli_lines


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A folder standing in for an annotated FGID folder, a shard of 512-D and one of 128-D (dlib) embeddings."""
    root = tmp_path_factory.mktemp("option_data")
    (root / "fgid").mkdir()
    return {"fgid": root / "fgid", "shard": write_faceid_shard(root / "arcface.tar", n=2),
            "dlib": write_faceid_shard(root / "dlib.tar", n=2, dim=128)}  # fmt: skip


CASES = [
    ("consistentid", "fgid", ["--region-pairing", "zz"], "--region-pairing zz: use one of release, token"),
    ("consistentid", "fgid", ["--facial-weight", "nan"], "--facial-weight nan: must be a finite number >= 0"),
    ("consistentid", "fgid", ["--mask-loss-prob", "2"], "--mask-loss-prob 2.0: must be a finite number >= 0 and <= 1"),
    ("consistentid", "fgid", ["--adapter-size", "huge"], "--adapter-size huge: use one of release, small"),
    ("ipadapter-faceid", "shard", ["--lr", "-1"], "--lr -1.0: must be a finite number > 0"),
    ("ipadapter-faceid", "shard", ["--lr", "nan"], "--lr nan: must be a finite number > 0"),
    ("ipadapter-faceid", "shard", ["--resolution", "36"], "--resolution 36: must be a positive multiple of 8"),
    ("ipadapter-faceid", "shard", ["--mixed-precision", "fp8"], "--mixed-precision fp8: use one of no, fp16, bf16"),
    ("ipadapter-faceid", "shard", ["--data-format", "tfrecord"], "--data-format tfrecord: use one of auto,"),
    ("ipadapter-faceid", "shard", ["--data-root", "/nonexistent-root"], "/nonexistent-root: --data-root is not a"),
    ("instantid", "shard", ["--resampler-dim", "0"], "--resampler-dim 0: must be a whole number of at least 1"),
    ("ipadapter-faceid", "dlib", [], "its face embedding is 128-D (dlib); ipadapter-faceid trains on 512-D"),
    ("instantid", "dlib", [], "curate with --detector insightface:antelopev2"),
]


@pytest.mark.parametrize(("method", "kind", "options", "message"), CASES, ids=[" ".join(c[2]) or c[0] for c in CASES])
def test_option_refused_before_models_load(monkeypatch, capsys, tmp_path, data, method, kind, options, message):
    args = ["train", method, "--data", str(data[kind]), "--output-dir", str(tmp_path / "run"),
            "--base", "/nonexistent-base", *options]  # fmt: skip
    code, lines = run_cli_lines(monkeypatch, capsys, *args)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "run" / "checkpoints").exists()
