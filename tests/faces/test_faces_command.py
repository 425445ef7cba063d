import json

import numpy as np
import pytest
from faces_fake_packs import write_fake_pack
from faces_photos import astronaut
from PIL import Image
from typer.testing import CliRunner

from idportrait.errors import ModelNotFoundError
from idportrait.faces.command import app


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    return path


def test_detect_writes_faces_json(tmp_path, photo):
    result = CliRunner().invoke(app, ["detect", str(photo), "--analyzer", "dlib", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "faces written to" in result.output
    records = json.loads((tmp_path / "o" / "faces.json").read_text())
    assert len(records) == 1 and len(records[0]["faces"]) == 1
    face = records[0]["faces"][0]
    assert len(face["embedding"]) == 128 and len(face["kps"]) == 5 and 150 < face["bbox"][0] < 200


def test_parse_writes_labels_and_regions(tmp_path, photo):
    out = tmp_path / "p"
    result = CliRunner().invoke(app, ["parse", str(photo), "--parser", "landmarks", "--out", str(out)])
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (512, 512) and labels.max() <= 18
    assert sorted(p.name for p in out.glob("region_*.png")) == [
        "region_0_Face.png",
        "region_1_Left_Eye.png",
        "region_2_Left_Ear.png",
        "region_3_Nose.png",
        "region_4_Upper_Lip.png",
    ]


def test_check_models(tmp_path):
    write_fake_pack(tmp_path / "antelopev2", "antelopev2")
    result = CliRunner().invoke(app, ["check-models", "--pack", "antelopev2", "--model-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "scrfd_10g_bnkps.onnx" in result.output and "glintr100.onnx" in result.output
    result = CliRunner().invoke(app, ["check-models", "--model-dir", str(tmp_path)])
    assert isinstance(result.exception, ModelNotFoundError)
    assert "det_10g.onnx" in str(result.exception)
