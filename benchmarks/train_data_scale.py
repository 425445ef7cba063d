"""Training data at scale: start-up, memory and loader speed against the number of samples, one table per run.

    python benchmarks/train_data_scale.py [--sizes 1000,4000,16000,64000] [--shard-size 1000] [--eager-max 16000]

Synthetic curated shards in the writer's layout (`idportrait.shards.writer`): 512 px JPEGs (a pool of 32
distinct photo crops from scikit-image's sample photos, 40-90 KB each), a caption, a record with one face
(bbox, 5 keypoints, a 512-D embedding). Four distinct shards of ``--shard-size`` samples are written once; a
dataset of N samples is N / shard-size hard links to them, so disk use stays at four shards and every read is
served from the page cache (the numbers measure the code, not the disk). Every measurement is a fresh process:

- index s: the dataset index built from shards without index files (one pass over the tar headers, writing
  each shard's index file and the memory-mapped ``entries.npy``); open s: built from the shards' index files
  (what a curated dataset or a second run pays); reuse s: the same index found built (a resume). Imports are
  not timed (they do not grow with N).
- index RSS MB: peak RSS (VmHWM) of the process that built the index from index files and read one sample.
- train s / train RSS MB: ``idportrait train ipadapter-faceid --max-steps 1`` on a tiny SD1.5 base at 64 px,
  ``--num-workers 0``: the whole command (interpreter, imports, models, index, one step) and its peak RSS; the
  fastest of ``--repeats`` rounds over all sizes (each run into a new folder, so each builds the index from the
  index files).
- eager s / eager RSS MB: every sample's bytes and parsed JSON in one list, as training did before the index
  (up to ``--eager-max`` samples).
- loader samples/s: `FaceIDShardDataset` at 512 px (decode, crop, resize, tokenize) through the training
  DataLoader, batch 8, with 0, 1 and 2 workers, from the loader's start (workers included) to the last of
  ``--loader-samples`` samples; the best of the ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from idportrait.shards.writer import write_shard

DISTINCT_SHARDS = 4
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "retina")


def photo_pool(count: int = 32, size: int = 512) -> list[bytes]:
    """``count`` distinct photo-like JPEGs: random square crops of scikit-image's photos, resized, some flipped."""
    from skimage import data

    rng = np.random.default_rng(0)
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS]
    pool = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(min(photo.size) * rng.uniform(0.6, 1.0))
        left, top = (int(rng.integers(0, d - side + 1)) for d in photo.size)
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        if i % 2:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=90)
        pool.append(buf.getvalue())
    return pool


def write_distinct_shards(folder: Path, shard_size: int) -> list[Path]:
    pool = photo_pool()
    rng = np.random.default_rng(1)
    shards = []
    for s in range(DISTINCT_SHARDS):
        samples = []
        for i in range(shard_size):
            key = f"{s:05d}-{i:06d}"
            face = {"bbox": [180.0, 120.0, 330.0, 310.0], "kps": [[220.0, 190.0], [290.0, 190.0], [255.0, 230.0],
                    [225.0, 270.0], [285.0, 270.0]], "score": 0.99,
                    "embedding": rng.standard_normal(512).astype(np.float32).tolist()}  # fmt: skip
            caption = f"a photo of a person number {s * shard_size + i} standing in front of a wall"
            record = {"key": key, "caption": caption, "url": None, "width": 512, "height": 512,
                      "face_ratio": 0.11, "faces": [face], "source": "synthetic", "meta": {}}  # fmt: skip
            members = {"image": pool[(s * shard_size + i) % len(pool)], "text": caption.encode(),
                       "json": json.dumps(record).encode()}  # fmt: skip
            samples.append((key, members))
        shards.append(folder / f"distinct-{s}.tar")
        write_shard(str(shards[-1]), samples)
    return shards


def link_dataset(folder: Path, distinct: list[Path], n: int, shard_size: int, with_index_files: bool) -> None:
    folder.mkdir(parents=True)
    for j in range(n // shard_size):
        source = distinct[j % len(distinct)]
        os.link(source, folder / f"shard-{j:06d}.tar")
        if with_index_files:
            os.link(f"{source}.idx.arrow", folder / f"shard-{j:06d}.tar.idx.arrow")


PEAK_RSS = """
def peak_rss_mb():  # this process's own high-water mark (ru_maxrss would include the forking parent's)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
"""

INDEX_SCRIPT = (
    PEAK_RSS
    + """
import json, sys, time
from pathlib import Path
import pyarrow, pyarrow.ipc, rich.progress
from idportrait.shards.index import build_index, find_sources
from idportrait.shards.reader import FaceIDSamples
data, folder = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
index = build_index(find_sources([data], "tar"), "tar", folder, require=("image", "text", "json"), progress=False)
sample = FaceIDSamples(index)[len(index) - 1]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(),
                  "index_mb": (folder / "entries.npy").stat().st_size / 2**20}))
"""
)

EAGER_SCRIPT = (
    PEAK_RSS
    + """
import json, sys, tarfile, time
from pathlib import Path
start = time.perf_counter()
samples = []
for shard in sorted(Path(sys.argv[1]).glob("*.tar")):
    groups = {}
    with tarfile.open(shard) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            groups.setdefault(key, {"key": key, "source": shard.name})[ext] = tar.extractfile(member).read()
    for sample in groups.values():
        sample["txt"], sample["json"] = sample["txt"].decode(), json.loads(sample["json"])
        samples.append(sample)
print(json.dumps({"seconds": time.perf_counter() - start, "rss_mb": peak_rss_mb()}))
"""
)

TRAIN_SCRIPT = (
    PEAK_RSS
    + """
import atexit, json, sys
atexit.register(lambda: print(json.dumps({"rss_mb": peak_rss_mb()}), flush=True))
from idportrait.cli import main
sys.argv = ["idportrait", *sys.argv[1:]]
main()
"""
)

LOADER_SCRIPT = """
import json, sys, time
from pathlib import Path
import torch
from idportrait.pipelines.clip_processor import clip_image_processor
from idportrait.shards.index import SampleIndex
from idportrait.shards.reader import FaceIDSamples
from idportrait.tiny import clip_tokenizer_from_bpe
from idportrait.training.data import EpochSampler, make_loader
from idportrait.training.ipadapter_faceid import FaceIDShardDataset
from idportrait.training.steps import stack_collate
torch.set_num_threads(1)
index, workers, count = SampleIndex(Path(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
tokenizer = clip_tokenizer_from_bpe(Path(sys.argv[4]))
dataset = FaceIDShardDataset(FaceIDSamples(index), tokenizer, clip_image_processor(), 512, plus=False)
loader = make_loader(dataset, EpochSampler(len(dataset), 0), 8, stack_collate, workers, False, 0)
start, seen = time.perf_counter(), 0
for batch in loader:
    seen += len(batch["keys"])
    if seen >= count:
        break
print(json.dumps({"samples_per_s": seen / (time.perf_counter() - start)}))
"""


def run_json(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, *args], check=True, env=env, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_command(data: Path, out: Path, base: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a one-step `idportrait train ipadapter-faceid` (no workers)."""
    args = ["train", "ipadapter-faceid", "--data", str(data), "--output-dir", str(out), "--base", str(base),
            "--resolution", "64", "--batch-size", "2", "--max-steps", "1", "--lora-rank", "4",
            "--num-workers", "0"]  # fmt: skip
    start = time.perf_counter()
    rss = run_json(["-c", TRAIN_SCRIPT, *args])["rss_mb"]
    return time.perf_counter() - start, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000,16000,64000", help="Sample counts, multiples of --shard-size.")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--eager-max", type=int, default=16000, help="Largest N for the eager reader (RAM).")
    parser.add_argument("--loader-samples", type=int, default=256, help="Samples timed per loader row.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of the train command and the loader (best).")
    parser.add_argument("--workdir", type=Path, default=None, help="Where the shards go (default: a temp folder).")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console(width=200)
    from idportrait.tiny import clip_tokenizer_from_bpe, save_tiny_sd15

    root = Path(tempfile.mkdtemp(prefix="train_data_scale-", dir=args.workdir))
    try:
        distinct = write_distinct_shards(root, args.shard_size)
        clip_tokenizer_from_bpe(root / "tokenizer")
        base = save_tiny_sd15(root / "sd15")
        jpeg_kb = np.mean([len(p) for p in photo_pool()]) / 1024
        index_rows = {}
        for n in sizes:
            bare, indexed = root / f"bare-{n}", root / f"indexed-{n}"
            link_dataset(bare, distinct, n, args.shard_size, with_index_files=False)
            link_dataset(indexed, distinct, n, args.shard_size, with_index_files=True)
            cold = run_json(["-c", INDEX_SCRIPT, str(bare), str(root / f"cold-{n}")])
            warm = run_json(["-c", INDEX_SCRIPT, str(indexed), str(root / f"warm-{n}")])
            reuse = run_json(["-c", INDEX_SCRIPT, str(indexed), str(root / f"warm-{n}")])
            eager = run_json(["-c", EAGER_SCRIPT, str(indexed)]) if n <= args.eager_max else None
            index_rows[n] = (cold, warm, reuse, eager)
            shutil.rmtree(bare)
        train = {n: (float("inf"), 0.0) for n in sizes}
        loader = {n: [0.0, 0.0, 0.0] for n in sizes}
        for repeat in range(args.repeats):  # every size once per round: the machine's load falls on all alike
            for n in sizes:
                train[n] = min(train[n], train_command(root / f"indexed-{n}", root / f"run-{n}-{repeat}", base))
                for w in (0, 1, 2):
                    speed = run_json(["-c", LOADER_SCRIPT, str(root / f"warm-{n}"), str(w), str(args.loader_samples),
                                      str(root / "tokenizer")])["samples_per_s"]  # fmt: skip
                    loader[n][w] = max(loader[n][w], speed)
            console.print(f"round {repeat + 1} of {args.repeats} done", style="dim")
        rows = [(n, *index_rows[n][:3], *train[n], index_rows[n][3], loader[n]) for n in sizes]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"training data, synthetic 512 px shards ({jpeg_kb:.0f} KB JPEGs), {os.cpu_count()} CPUs")
    for name in ("samples", "index MB", "index s", "open s", "reuse s", "index RSS MB", "train s",
                 "train RSS MB", "eager s", "eager RSS MB", "loader 0w/s", "1w/s", "2w/s"):  # fmt: skip
        table.add_column(name, justify="right")
    for n, cold, warm, reuse, train_s, train_rss, eager, loader in rows:
        table.add_row(
            f"{n:,}", f"{warm['index_mb']:.2f}", f"{cold['seconds']:.2f}", f"{warm['seconds']:.2f}",
            f"{reuse['seconds']:.2f}", f"{warm['rss_mb']:.0f}", f"{train_s:.1f}", f"{train_rss:.0f}",
            f"{eager['seconds']:.1f}" if eager else "-", f"{eager['rss_mb']:.0f}" if eager else "-",
            *(f"{v:.1f}" for v in loader),
        )  # fmt: skip
    console.print(table)
    first, last = rows[0], rows[-1]
    added = last[0] - first[0]
    if added:
        growth = [(last[2]["rss_mb"] - first[2]["rss_mb"]) * 1024 / added, (last[5] - first[5]) * 1024 / added]
        console.print(
            f"from {first[0]:,} to {last[0]:,} samples: RSS growth {growth[0]:.3f} KB/sample (index), "
            f"{growth[1]:.3f} KB/sample (train); train start-up x{last[4] / first[4]:.2f}, "
            f"index open x{last[2]['seconds'] / first[2]['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
