from __future__ import annotations

import pytest
import torch
from consistentid_pipes import load_pipe


@pytest.fixture(autouse=True)
def pipeline_tests_on_one_thread(one_torch_thread):
    """Every test here runs with the root conftest's `one_torch_thread`."""


@pytest.fixture(scope="session")
def tiny_pipe(tiny_models):
    """ConsistentIDPipeline loaded from the tiny models through the real loaders (CPU, float32)."""
    torch.manual_seed(0)
    return load_pipe(*tiny_models)


@pytest.fixture(scope="session")
def astronaut_inputs(tiny_pipe, face_models):
    """FaceInputs of the packaged astronaut photo."""
    from idportrait.demo import demo_photo

    return tiny_pipe.prepare_face_inputs(demo_photo(), *face_models, source="astronaut")


@pytest.fixture
def fresh_pipe(tiny_models):
    """A ConsistentIDPipeline of its own, for tests that change it (accelerators, compilation)."""
    return load_pipe(*tiny_models)
