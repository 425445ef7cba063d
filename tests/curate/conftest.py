from __future__ import annotations

from pathlib import Path

import pytest

from idportrait.curate.config import CurateConfig


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample shards (built once per session from packaged photos)."""
    from idportrait.curate.sample import build_sample

    folder = tmp_path_factory.mktemp("curate_sample")
    build_sample(folder)
    return folder


@pytest.fixture(scope="session")
def dlib_cfg() -> CurateConfig:
    """Default FaceID-6M thresholds with the offline dlib detector."""
    return CurateConfig(detector="dlib")


@pytest.fixture(scope="session")
def dlib_detect():
    """The offline dlib batch detector, memoised per image on pixel content (the sample reuses a few photos)."""
    import hashlib

    from idportrait.curate.detect import make_detector

    detect = make_detector("dlib")
    seen: dict[bytes, list] = {}

    def cached(images):
        keys = [hashlib.sha1(image.tobytes()).digest() + bytes(str(image.shape), "ascii") for image in images]
        todo = {k: image for k, image in zip(keys, images, strict=True) if k not in seen}
        seen.update(zip(todo, detect(list(todo.values())), strict=True))
        return [seen[k] for k in keys]

    return cached


@pytest.fixture(scope="session")
def curated_sample(sample_inputs, dlib_cfg, dlib_detect, tmp_path_factory) -> Path:
    """Output folder of one curation run over the bundled sample (dlib detector)."""
    from idportrait.curate.runner import run_local

    out = tmp_path_factory.mktemp("curated")
    run_local([str(sample_inputs)], str(out), dlib_cfg, detect=dlib_detect)
    return out
