"""The method registry: consistentid and plain-sd behind prepare/generate, on tiny local models."""

from __future__ import annotations

import numpy as np
import pytest

from idportrait.errors import UserError
from idportrait.methods import METHODS, load_method

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_names_and_declared_capabilities():
    assert set(METHODS) == {"consistentid", "consistentid-sdxl", "instantid", "ipadapter-faceid", "plain-sd"}
    from idportrait.methods.consistentid import ConsistentIDMethod
    from idportrait.methods.instantid import InstantIDMethod
    from idportrait.methods.ipadapter_faceid import IPAdapterFaceIDMethod
    from idportrait.methods.plain_sd import PlainSDMethod

    assert not ConsistentIDMethod.multi_reference and not PlainSDMethod.multi_reference
    assert InstantIDMethod.multi_reference and IPAdapterFaceIDMethod.multi_reference
    with pytest.raises(UserError, match="unknown method 'nope'"):
        load_method("nope")


def test_consistentid_prepare_cached_and_generate(tiny_models):
    from idportrait.demo import demo_photo

    base, adapter = tiny_models
    method = load_method(
        "consistentid", base=str(base), adapter=str(adapter), face_backend="dlib", parser="landmarks",
        device="cpu", num_inference_steps=2, size=(64, 32),
    )  # fmt: skip
    photo = demo_photo()
    prepared = method.prepare(photo)
    assert method.prepare(photo.copy()) is prepared  # same pixels -> cached per identity
    images = method.generate(prepared, ["a hat", "a beach"], [0, 1])
    assert len(images) == 4 and images[0].size == (64, 32)  # size is (width, height), as PIL's
    again = method.generate(prepared, ["a beach"], [1])
    # prompt-major, per-image seeds; a batch of 4 and a batch of 1 may round one 8-bit level apart (float32 kernels)
    assert np.abs(np.asarray(again[0], np.int16) - np.asarray(images[3], np.int16)).max() <= 1


def test_plain_sd_ignores_the_reference(tiny_models):
    from idportrait.demo import demo_photo

    method = load_method("plain-sd", base=str(tiny_models[0]), device="cpu", num_inference_steps=2, size=(64, 32))
    assert method.prepare(demo_photo()) is None
    images = method.generate(None, ["a hat"], [0, 1])
    assert len(images) == 2 and images[0].size == (64, 32)
    assert list(images[0].getdata()) != list(images[1].getdata())


def test_consistentid_offload_needs_a_gpu(tiny_models):
    base, adapter = tiny_models
    with pytest.raises(UserError, match="--offload needs a GPU"):
        load_method("consistentid", base=str(base), adapter=str(adapter), device="cpu", offload=True)
