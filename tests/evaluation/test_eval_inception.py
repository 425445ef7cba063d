"""The FID Inception network: same features as torch-fidelity's on identical random weights, TF-1.x resizing and
quantisation on known inputs, strict loading, and the FD_DINO fallback only when the config asks for it.

torch-fidelity (installed with ``--no-deps``: it depends on torchvision, which this project does not install) is
imported without running its package ``__init__``, which imports torchvision; its Inception module does not.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from idportrait.errors import CheckpointError, ModelNotFoundError
from idportrait.evaluation.config import MetricsSpec
from idportrait.evaluation.fid import uint8_batch
from idportrait.evaluation.inception import FIDInceptionV3, load_fid_inception, quantise, tf1_resize_bilinear
from idportrait.evaluation.score import load_metric_models

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def _torch_fidelity_module(monkeypatch, name: str) -> types.ModuleType:
    """``torch_fidelity.<name>`` from the installed package, without its ``__init__``."""
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None:
        pytest.fail("torch-fidelity is a dev dependency: pip install --no-deps torch-fidelity==0.4.0")
    package = types.ModuleType("torch_fidelity")
    package.__path__ = list(spec.submodule_search_locations)
    monkeypatch.setitem(sys.modules, "torch_fidelity", package)
    for key in [k for k in sys.modules if k.startswith("torch_fidelity.")]:
        monkeypatch.delitem(sys.modules, key)
    return importlib.import_module(f"torch_fidelity.{name}")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    """A random FID Inception state dict, saved as the release is (a plain state dict); O(1) activations."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_NAME
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow
def test_features_match_torch_fidelity_on_identical_weights(monkeypatch, random_weights, capsys):
    theirs_module = _torch_fidelity_module(monkeypatch, "feature_extractor_inceptionv3")
    theirs = theirs_module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(random_weights))
    ours = load_fid_inception(random_weights)
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 97, 131), dtype=np.uint8))
    want = theirs(images)[0]
    got = ours(images)
    assert got.shape == want.shape == (2, 2048)
    assert want.abs().mean() > 0.1  # features of a useful size, so the tolerance means something
    difference = (got - want).abs().max().item()
    with capsys.disabled():
        print(f"\nFID Inception vs torch-fidelity, pool3 features: max |difference| = {difference:.2e}")
    assert difference < 1e-4


def test_resize_matches_tensorflow1_on_known_inputs():
    image = torch.tensor([[0.0, 100.0], [200.0, 50.0]]).view(1, 1, 2, 2)
    up = tf1_resize_bilinear(image, (4, 4))[0, 0]  # samples at 0, 0.5, 1, 1.5 (border repeated)
    assert up.tolist() == [[0, 50, 100, 100], [100, 87.5, 75, 75], [200, 125, 50, 50], [200, 125, 50, 50]]
    grid = torch.arange(16.0).view(1, 1, 4, 4)
    assert tf1_resize_bilinear(grid, (2, 2))[0, 0].tolist() == [[0, 2], [8, 10]]  # picks, no averaging


def test_resize_to_299_equals_torch_fidelity(monkeypatch):
    theirs = _torch_fidelity_module(
        monkeypatch, "interpolate_compat_tensorflow"
    ).interpolate_bilinear_2d_like_tensorflow1x
    x = quantise(torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))).float()
    assert torch.equal(tf1_resize_bilinear(x, (299, 299)), theirs(x, size=(299, 299), align_corners=False))


def test_quantise_rounds_and_clips_like_png_writing(tmp_path):
    levels = torch.tensor([0.0, 0.49 / 255, 0.51 / 255, 127.5 / 255, 1.0, 1.2, -0.1])
    assert quantise(levels).tolist() == [0, 0, 1, 128, 255, 255, 0]
    floats = np.random.default_rng(1).random((5, 7, 3))
    Image.fromarray((floats * 255).round().astype(np.uint8)).save(tmp_path / "x.png")  # diffusers' numpy_to_pil
    written = uint8_batch(Image.open(tmp_path / "x.png"))
    assert torch.equal(written, quantise(torch.from_numpy(floats)).permute(2, 0, 1).unsqueeze(0))


def test_weights_load_strictly_and_missing_weights_name_the_file(tmp_path, random_weights, tiny_dino_dir):
    state = torch.load(random_weights, weights_only=True)
    state.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="Missing key"):
        load_fid_inception(tmp_path / "partial.pth")

    missing = str(tmp_path / WEIGHTS_NAME)
    spec = MetricsSpec(clip="none", dino=str(tiny_dino_dir), face_backend="none", fid_weights=missing, device="cpu")
    with pytest.raises(ModelNotFoundError, match=f"{WEIGHTS_NAME}: FID Inception weights not found"):
        load_metric_models(spec)
    spec.fid_fallback = "dino"
    assert load_metric_models(spec).fid_name == "FD_DINO"
    spec.fid_weights = str(random_weights)
    models = load_metric_models(spec)
    assert models.fid_name == "FID" and isinstance(models.fid_feature, FIDInceptionV3)


def test_default_weights_come_from_the_torch_hub_cache_or_one_line(monkeypatch, tmp_path, random_weights):
    import idportrait.evaluation.inception as inception

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(inception, "FID_INCEPTION_URL", f"http://127.0.0.1:9/{WEIGHTS_NAME}")  # refused at once
    with pytest.raises(ModelNotFoundError, match=rf"could not download the FID Inception weights {WEIGHTS_NAME} .*"
                       r"pass its path with \[metrics\] fid_weights"):  # fmt: skip
        load_fid_inception()
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / WEIGHTS_NAME).write_bytes(random_weights.read_bytes())
    assert isinstance(load_fid_inception(), FIDInceptionV3)  # cached: no download
