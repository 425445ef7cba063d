from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def pipeline_tests_on_one_thread(one_torch_thread):
    """Every test here runs with the root conftest's `one_torch_thread`."""


@pytest.fixture(scope="session")
def face_models():
    """The offline face analyzer (dlib, 128-D descriptor) and the landmark parser."""
    from idportrait.faces import get_face_analyzer, get_face_parser

    return get_face_analyzer("dlib"), get_face_parser("landmarks")


def consistentid_pipe(base, adapter):
    """ConsistentIDPipeline of a base folder with an adapter file, through the real loaders (CPU, float32), without
    its progress bar."""
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.pipelines.loading import load_sd15_pipeline

    pipe = load_sd15_pipeline(ConsistentIDPipeline, str(base))
    pipe.load_consistentid(str(adapter))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def load_pipe():
    """`consistentid_pipe`, for tests that load other bases or adapters."""
    return consistentid_pipe


@pytest.fixture(scope="session")
def tiny_pipe(tiny_models):
    """ConsistentIDPipeline loaded from the tiny models through the real loaders (CPU, float32)."""
    torch.manual_seed(0)
    return consistentid_pipe(*tiny_models)


@pytest.fixture(scope="session")
def astronaut_inputs(tiny_pipe, face_models):
    """FaceInputs of the packaged astronaut photo."""
    from idportrait.demo import demo_photo

    return tiny_pipe.prepare_face_inputs(demo_photo(), *face_models, source="astronaut")


@pytest.fixture
def fresh_pipe(tiny_models):
    """A ConsistentIDPipeline of its own, for tests that change it (accelerators, compilation)."""
    return consistentid_pipe(*tiny_models)
