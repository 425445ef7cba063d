"""BiSeNet parity with the official module (fixtures §5) and strict checkpoint loading."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from idportrait.errors import CheckpointError
from idportrait.faces.bisenet import BiSeNet, load_bisenet
from idportrait.faces.parsing import BiSeNetParser, bisenet_logits, preprocess
from recipe import recipe_state_dict


@pytest.fixture(scope="module")
def recipe_weights():
    return recipe_state_dict("bisenet_manifest.json", conv_he=True)


@pytest.fixture(scope="module")
def net(recipe_weights):
    model = BiSeNet()
    model.load_state_dict(recipe_weights, strict=True)
    return model.eval()


def test_state_dict_keys_match_manifest(fixtures_dir):
    manifest = json.loads((fixtures_dir / "bisenet_manifest.json").read_text())
    state = BiSeNet().state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, s) for k, s in manifest]


def test_preprocessing_matches_fixture(fixtures_dir):
    inputs = load_file(fixtures_dir / "bisenet_inputs.safetensors")
    x = preprocess(inputs["image_uint8_hwc"].numpy())
    assert x.shape == (1, 3, 512, 512)
    torch.testing.assert_close(x[:, :, :16, :16], inputs["preprocessed_input_crop_y0_x0_16x16"], atol=1e-6, rtol=0)
    torch.testing.assert_close(x.mean((0, 2, 3)), inputs["preprocessed_input_channel_mean"], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_logits_and_labels_match_official(net, fixtures_dir):
    inputs = load_file(fixtures_dir / "bisenet_inputs.safetensors")
    expected = load_file(fixtures_dir / "bisenet_expected.safetensors")
    image = inputs["image_uint8_hwc"].numpy()
    with torch.no_grad():
        main, out16, out32 = (o[0] for o in net(preprocess(image)))
    torch.testing.assert_close(main[:, ::8, ::8], expected["logits_main_stride8"], atol=2e-3, rtol=1e-4)
    for name, out in (("main", main), ("out16", out16), ("out32", out32)):
        torch.testing.assert_close(out.mean((1, 2)), expected[f"class_mean_logits_{name}"], atol=2e-3, rtol=1e-4)
    torch.testing.assert_close(bisenet_logits(net, image), main)

    parsing = BiSeNetParser(net).parse(image)
    np.testing.assert_array_equal(parsing.labels, expected["argmax_labels"].numpy())
    assert parsing.labels.dtype == np.uint8 and parsing.labels.shape == (512, 512)


@pytest.mark.parametrize("variant", ["plain", "no_num_batches_tracked", "module_prefix", "safetensors"])
def test_load_bisenet_variants(tmp_path, recipe_weights, variant):
    state = dict(recipe_weights)
    path = tmp_path / "face_parsing.pth"
    if variant == "no_num_batches_tracked":
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if variant == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    if variant == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "face_parsing.safetensors"
        save_file(state, path)
    else:
        torch.save(state, path)
    net = load_bisenet(path)
    assert not net.training
    torch.testing.assert_close(net.state_dict()["conv_out.conv_out.weight"], recipe_weights["conv_out.conv_out.weight"])


def test_load_bisenet_rejects_wrong_checkpoints(tmp_path, recipe_weights):
    with pytest.raises(CheckpointError, match="not found"):
        load_bisenet(tmp_path / "missing.pth")

    state = dict(recipe_weights)
    del state["ffm.conv1.weight"]
    state["head.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.pth")
    with pytest.raises(CheckpointError, match=r"1 missing keys \['ffm.conv1.weight'\].*'head.extra'"):
        load_bisenet(tmp_path / "keys.pth")

    state = dict(recipe_weights)
    state["conv_out.conv_out.weight"] = torch.zeros(18, 256, 1, 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"conv_out\.conv_out\.weight"):
        load_bisenet(tmp_path / "shape.pth")

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pth: not a usable BiSeNet checkpoint: unreadable"):
        load_bisenet(tmp_path / "junk.pth")


class _Payload:
    def __reduce__(self):
        return (print, ("executed",))


def test_load_bisenet_never_unpickles_code(tmp_path, capsys):
    torch.save({"x": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError):
        load_bisenet(tmp_path / "evil.pth")
    assert "executed" not in capsys.readouterr().out


def test_parse_batch_equals_parse_photo_by_photo(net):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (96, 80, 3), dtype=np.uint8), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    parser = BiSeNetParser(net)
    batch = parser.parse_batch(photos)
    for photo, parsing in zip(photos, batch, strict=True):
        single = parser.parse(photo)
        np.testing.assert_array_equal(parsing.labels, single.labels)
        np.testing.assert_array_equal(parsing.labels, bisenet_logits(net, photo).argmax(0).numpy())
        assert list(parsing.regions) == list(single.regions)
    assert parser.parse_batch([]) == []
