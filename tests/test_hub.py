"""An unreachable hub: every loader of a model that is not cached fails within seconds, naming it and its option."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from idportrait import hub
from idportrait.errors import ModelNotFoundError
from loopback_port import free_port

FAST = 10.0
"""Seconds within which a missing model must be reported (the reachability check gives up after 3)."""


def closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def unreachable_hub(request, monkeypatch, tmp_path) -> Iterator[None]:
    """A hub that accepts connections and never answers, one that refuses them, or offline mode."""
    from huggingface_hub import constants

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes the handshakes; nothing ever reads or answers
    endpoint = {"silent-endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}", "closed-port": closed_port()}
    monkeypatch.setattr(constants, "ENDPOINT", endpoint.get(request.param, constants.ENDPOINT))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", request.param == "HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()
    silent.close()


def captioner() -> Callable[[], object]:
    from transformers import AutoProcessor, LlavaForConditionalGeneration  # noqa: F401 (imported before the clock)

    from idportrait.annotate.captioner import load_captioner

    return lambda: load_captioner("acme/not-cached-vlm")


def parser_weights() -> Callable[[], object]:
    from idportrait.faces.parsing import default_bisenet_weights

    return default_bisenet_weights


def training_base() -> Callable[[], object]:
    import torch

    from idportrait.training.models import load_frozen_sd15

    return lambda: load_frozen_sd15("acme/not-cached-base", None, "cpu", torch.float32)


def metric_model() -> Callable[[], object]:
    from transformers import ViTImageProcessor, ViTModel  # noqa: F401 (imported before the clock)

    from idportrait.evaluation.dino import load_dino

    return lambda: load_dino("acme/not-cached-dino")


def facenet_release(monkeypatch, tmp_path, endpoint: str) -> Callable[[], object]:
    import torch

    from idportrait import registry
    from idportrait.evaluation.facenet import load_facenet

    monkeypatch.setattr(registry, "FACENET_VGGFACE2_URL", f"{endpoint}/20180402-114759-vggface2.pt")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    return load_facenet


@pytest.mark.parametrize("unreachable_hub", ["silent-endpoint"], indirect=True)
def test_facenet_download_that_cannot_start_fails_fast(unreachable_hub, monkeypatch, tmp_path):
    from huggingface_hub import constants

    load = facenet_release(monkeypatch, tmp_path, constants.ENDPOINT)
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"vggface2\.pt cannot be reached.*facenet_weights"):
        load()
    assert time.monotonic() - start < FAST


@pytest.mark.parametrize("unreachable_hub", ["silent-endpoint"], indirect=True)
@pytest.mark.parametrize(
    ("loader", "names"),
    [
        (captioner, ("acme/not-cached-vlm", "--vlm PATH")),
        (parser_weights, ("JackAILab/ConsistentID/face_parsing.pth", "--parser-weights PATH")),
        (training_base, ("acme/not-cached-base", "--base PATH")),
        (metric_model, ("acme/not-cached-dino", "dino =")),
    ],
    ids=["annotate-vlm", "bisenet-weights", "train-base", "eval-dino"],
)
def test_missing_model_fails_fast_with_one_line(unreachable_hub, loader: Callable, names: tuple[str, str]):
    load = loader()  # the libraries are imported before the clock starts
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as err:
        load()
    assert time.monotonic() - start < FAST
    message = str(err.value)
    assert "\n" not in message
    assert all(name in message for name in names), message


@pytest.mark.parametrize("unreachable_hub", ["closed-port", "HF_HUB_OFFLINE"], indirect=True)
def test_refused_or_offline_hub_fails_fast(unreachable_hub):
    test_missing_model_fails_fast_with_one_line(unreachable_hub, captioner, ("acme/not-cached-vlm", "--vlm PATH"))


@pytest.mark.parametrize("unreachable_hub", ["silent-endpoint"], indirect=True)
def test_hub_reachable_answers_within_its_timeout(unreachable_hub):
    start = time.monotonic()
    assert hub.hub_reachable(timeout=1.0) is False
    assert time.monotonic() - start < 2.0


class _TouchOnLoad:
    """Unpickling this object would create ``marker`` (what a malicious checkpoint could do instead)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_read_torch_file_loads_plain_data_and_refuses_anything_else_unread(tmp_path):
    import torch

    from idportrait.errors import CheckpointError

    good = tmp_path / "good.bin"
    torch.save({"w": torch.ones(2), "meta": {"steps": 3}}, good)
    state = hub.read_torch_file(good, "test weights")
    assert torch.equal(state["w"], torch.ones(2)) and state["meta"] == {"steps": 3}

    marker = tmp_path / "executed"
    evil = tmp_path / "evil.bin"
    torch.save({"w": _TouchOnLoad(str(marker))}, evil)
    with pytest.raises(CheckpointError) as refused:
        hub.read_torch_file(evil, "test weights")
    message = str(refused.value)
    assert message.startswith(f"{evil}: not a usable test weights: it holds a reference to ")
    assert "refused without loading it" in message and "\n" not in message and "\x1b" not in message
    assert not marker.exists()  # nothing in the file ran

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x1b[1mnot a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage.bin: not a usable test weights: unreadable with torch.load \("):
        hub.read_torch_file(garbage, "test weights")


def test_first_line_drops_colour_codes_and_later_lines():
    err = RuntimeError("Weights only load failed, \x1b[1mdo this only if you trust it\x1b[0m.\nsecond line")
    assert hub.first_line(err) == "Weights only load failed, do this only if you trust it."
    assert hub.first_line(ValueError("")) == "ValueError"
