"""``evaluate run`` in real processes: a two-worker torchrun run (gloo, CPU), SIGKILLed and run again, gives the
same images and the same scores as one process, with one manifest line per image."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from idportrait.evaluation.records import MANIFEST
from idportrait.tiny import save_tiny_sd15
from launched_runs import run_to_end, sigkill_after_outputs

pytestmark = pytest.mark.slow

METRICS = ("clip_t", "clip_i", "dino")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _command(config: Path, processes: int) -> list[str]:
    launch = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    )
    return [sys.executable, *launch, "-m", "idportrait.cli", "evaluate", "run", "--config", str(config)]


def _config(tmp_path: Path, name: str, references: Path, base: Path, clip: Path, dino: Path) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'references = "{references}"\noutput = "{name}"\nbase = "{base}"\nseeds = [0, 1]\nprompts = "consistentid"\n'
        'prompt_limit = 4\ndevice = "cpu"\n\n[[methods]]\nname = "plain-sd"\n'
        "generate = { num_inference_steps = 2 }\n\n"
        f'[metrics]\nclip = "{clip}"\ndino = "{dino}"\nface_backend = "none"\nfid_features = "dino"\ndevice = "cpu"\n'
    )
    return config


def _table(path: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    with open(path, newline="") as f:
        return [tuple(row[c] for c in columns) for row in csv.DictReader(f)]


def _images(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted((run / "images").rglob("*.png"))}


def test_killed_two_process_run_matches_one_process(tmp_path, astronaut, tom_hanks, tiny_clip_dir, tiny_dino_dir):
    references = tmp_path / "refs"
    references.mkdir()
    astronaut.resize((64, 64)).save(references / "astronaut.png")
    tom_hanks.resize((64, 64)).save(references / "tom.png")
    base = save_tiny_sd15(tmp_path / "sd15")
    one = _config(tmp_path, "one", references, base, tiny_clip_dir, tiny_dino_dir)
    two = _config(tmp_path, "two", references, base, tiny_clip_dir, tiny_dino_dir)
    run_to_end(_command(one, 1), _env())
    want = _images(tmp_path / "one")
    assert len(want) == 2 * 4 * 2  # identities x prompts x seeds

    proc = subprocess.Popen(_command(two, 2), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sigkill_after_outputs(proc, lambda: len(list(tmp_path.glob("two/images/*/*/*.png"))), 4)
    assert 4 <= len(_images(tmp_path / "two")) < len(want)

    run_to_end(_command(two, 2), _env())
    run = tmp_path / "two"
    assert _images(run) == want  # every image, byte for byte what one process makes
    keys = [tuple(json.loads(line)[k] for k in ("method", "identity", "prompt_index", "seed"))
            for line in (run / MANIFEST).read_text().splitlines()]  # fmt: skip
    assert len(keys) == len(set(keys)) == len(want)  # one record per image: the parts were merged once
    assert not list(run.glob("generation-rank*.jsonl"))
    columns = ("identity", "prompt_index", "seed", "path", *METRICS)  # timings differ from run to run
    assert _table(run / "scores.csv", columns) == _table(tmp_path / "one" / "scores.csv", columns)
    assert _table(run / "summary.csv", ("method", *METRICS, "FD_DINO")) == _table(
        tmp_path / "one" / "summary.csv", ("method", *METRICS, "FD_DINO")
    )
