"""``generate-batch`` in real processes: two torchrun workers (gloo, CPU) make the same PNGs as one process, and a
SIGKILLed two-process run, run again, makes every image exactly once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from idportrait.tiny import save_tiny_sd15
from launched_runs import run_to_end, sigkill_after_outputs

pytestmark = pytest.mark.slow

PROMPTS = [f"a portrait, style {i}" for i in range(8)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _command(base: Path, faces: Path, prompts: Path, out: Path, processes: int) -> list[str]:
    launch = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    )
    return [sys.executable, *launch, "-m", "idportrait.cli", "generate-batch", "--method", "plain-sd",
            "--base", str(base), "--faces", str(faces), "--prompts", str(prompts), "--steps", "2",
            "--device", "cpu", "--out", str(out)]  # fmt: skip


def _pngs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_two_processes_match_one_and_a_killed_run_resumes_exactly_once(tmp_path):
    base = save_tiny_sd15(tmp_path / "sd15")
    faces = tmp_path / "faces"
    faces.mkdir()
    for name, colour in (("ada", "gray"), ("bo", "white")):
        Image.new("RGB", (32, 32), colour).save(faces / f"{name}.png")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS))

    one = tmp_path / "one"
    run_to_end(_command(base, faces, prompts, one, 1), _env())
    want = _pngs(one)
    assert len(want) == 2 * len(PROMPTS)

    two = tmp_path / "two"
    proc = subprocess.Popen(_command(base, faces, prompts, two, 2), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    sigkill_after_outputs(proc, lambda: len(list(two.rglob("*.png"))), 4)
    before = {p: p.stat().st_mtime_ns for p in two.rglob("*.png")}
    assert 4 <= len(before) < len(want)
    assert "images" not in json.loads((two / "settings.json").read_text())  # the killed run did not claim completion

    done = run_to_end(_command(base, faces, prompts, two, 2), _env())
    assert "2 identities, 2 process(es)" in done.stderr  # the work was split, not done twice
    written, there = map(int, re.search(r"(\d+) images written, (\d+) already there", done.stderr).groups())
    assert (written, there) == (len(want) - len(before), len(before))
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # nothing made twice ...
    assert _pngs(two) == want  # ... nothing missing, and byte for byte what one process makes
    listed = json.loads((two / "settings.json").read_text())
    assert listed == json.loads((one / "settings.json").read_text())
    assert sorted(listed["images"]) == sorted(want)
