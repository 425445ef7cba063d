"""Training data through the lazy index: batches do not depend on the worker count, the release's JSON lines."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from training_shards import write_faceid_shard, write_release_set

from idportrait.errors import UserError
from idportrait.pipelines.clip_processor import clip_image_processor
from idportrait.shards.index import build_index
from idportrait.shards.layout import ROLES
from idportrait.shards.reader import FaceIDSamples
from idportrait.training.data import EpochSampler, make_loader, open_training_data
from idportrait.training.ipadapter_faceid import FaceIDShardDataset
from idportrait.training.loop import TrainConfig
from idportrait.training.steps import stack_collate


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from idportrait.tiny import clip_tokenizer_from_bpe

    return clip_tokenizer_from_bpe(tmp_path_factory.mktemp("tokenizer"))


def batches(dataset, workers: int, epochs: int = 2) -> list[dict]:
    sampler = EpochSampler(len(dataset), seed=3)
    loader = make_loader(dataset, sampler, 2, stack_collate, workers, pin_memory=False, seed=3)
    out = []
    for epoch in range(epochs):
        sampler.epoch = epoch
        out += list(loader)
    return out


def test_batches_are_the_same_with_0_1_and_2_workers(tmp_path, tokenizer):
    for i in range(2):
        write_faceid_shard(tmp_path / f"s{i}.tar", n=3, seed=i)
    index = build_index([str(tmp_path / "s0.tar"), str(tmp_path / "s1.tar")], "tar", tmp_path / "index", require=ROLES)
    dataset = FaceIDShardDataset(FaceIDSamples(index), tokenizer, clip_image_processor(), 32, plus=True)
    reference = batches(dataset, 0)
    assert len(reference) == 6 and sorted(k for b in reference[:3] for k in b["keys"]) == sorted(
        f"s{s}.tar:{i:06d}" for s in range(2) for i in range(3)
    )  # every sample once per epoch
    assert [b["keys"] for b in reference[:3]] != [b["keys"] for b in reference[3:]]  # a new order each epoch
    for workers in (1, 2):
        got = batches(dataset, workers)
        assert [b["keys"] for b in got] == [b["keys"] for b in reference]
        for a, b in zip(got, reference, strict=True):
            for name in ("pixel_values", "input_ids", "id_embeds", "clip_pixels"):
                assert torch.equal(a[name], b[name]), name


def test_release_json_lines_read_as_faceid_samples(tmp_path):
    root = tmp_path / "release"
    jsonl = write_release_set(root, n=3)
    config = TrainConfig(data=[jsonl], output_dir=tmp_path / "run", base_model="-", data_root=root)
    samples = open_training_data(config, "faceid", progress=False)
    assert samples.index.kind == "lines" and len(samples) == 3
    sample = samples[0]
    assert sample.key == "laion_1024/images_part0/000000.jpg" and sample.source == "train.jsonl"
    assert sample.image == (root / sample.key).read_bytes() and sample.caption == "a photo of person 0"
    face = sample.record["faces"][0]
    assert face["kps"] == [[15, 20], [25, 20], [20, 26], [16, 32], [24, 32]] and face["bbox"][2] == 32.0
    want = np.load(root / "features/images_part0/000000.npy")  # saved as [1, 512]
    assert face["embedding"].shape == (512,) and np.array_equal(face["embedding"], want.reshape(-1))
    assert samples[2].caption == "a photo of person 2"

    (root / "features/images_part0/000001.npy").unlink()
    with pytest.raises(UserError, match=r"000001\.npy: not found \(is --data-root"):
        samples[1]
    jsonl.write_text(jsonl.read_text() + '{"image_file": "x.jpg", "bbox": [0, 0, 1, 1]}\n')
    samples = open_training_data(config, "faceid", progress=False)  # the grown file is indexed again
    with pytest.raises(UserError, match=r"train\.jsonl: line at byte \d+: no landmarks, additional_feature"):
        samples[3]
    np.save(root / "features/images_part0/000001.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(UserError, match=r"not a numeric \.npy array"):
        samples[1]


def test_open_training_data_names_a_missing_folder_of_shards(tmp_path):
    (tmp_path / "empty").mkdir()
    config = TrainConfig(data=[tmp_path / "empty"], output_dir=tmp_path / "run", base_model="-")
    with pytest.raises(UserError, match=r"empty: no \.tar files in this folder"):
        open_training_data(config, "faceid", progress=False)
    assert not Path(tmp_path / "run" / "data_index" / "sources.json").exists()


def test_a_bad_sample_found_by_a_worker_is_one_line(tmp_path, tokenizer):
    import tarfile

    from idportrait.training.data import worker_error

    shard = write_faceid_shard(tmp_path / "s.tar", n=2)
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w") as tar:  # the second sample's JPEG cut short
        for member, data in members:
            data = data[:100] if member.name == "000001.jpg" else data
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    index = build_index([str(shard)], "tar", tmp_path / "index", require=ROLES)
    dataset = FaceIDShardDataset(FaceIDSamples(index), tokenizer, clip_image_processor(), 32, plus=False)
    with pytest.raises(UserError) as raised:
        batches(dataset, workers=1, epochs=1)
    assert "Original Traceback" in str(raised.value)  # how torch hands it over
    assert str(worker_error(raised.value)) == "s.tar:000001: not a readable image (OSError)"
