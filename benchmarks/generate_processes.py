"""generate-batch on 1 process against N torchrun processes: wall time and images/s, one table.

    python benchmarks/generate_processes.py [--processes 2] [--prompts 8] [--steps 4] [--size 64]

Plain SD on a tiny random SD1.5 base (built in a temp folder), 2 identities x ``--prompts`` prompts, one
image each, on the CPU. Each run is the whole command (``python -m idportrait.cli generate-batch``, under
``torch.distributed.run --standalone`` for N > 1): interpreter and torch start-up and model loading are
included, as a user pays them. Every process runs one CPU thread (``OMP_NUM_THREADS=1``): CPU kernels sum
in an order that depends on the thread count, so PNGs made with other thread counts differ in their last
bits, while the process count alone changes nothing; the PNGs of the N-process run are compared byte for
byte with the 1-process run. On GPUs use ``accelerate launch``; see README "Several GPUs or machines".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from idportrait.tiny import save_tiny_sd15


def run(root: Path, base: Path, processes: int, steps: int, size: int) -> tuple[float, dict[str, bytes]]:
    out = root / f"out{processes}"
    launch = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    )
    cmd = [sys.executable, *launch, "-m", "idportrait.cli", "generate-batch", "--method", "plain-sd",
           "--base", str(base), "--faces", str(root / "faces"), "--prompts", str(root / "prompts.txt"),
           "--steps", str(steps), "--device", "cpu", "--out", str(out),
           "--set", f"height={size}", "--set", f"width={size}"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = save_tiny_sd15(root / "sd15")
        (root / "faces").mkdir()
        for name in ("ada", "bo"):
            Image.new("RGB", (32, 32), "gray").save(root / "faces" / f"{name}.png")
        (root / "prompts.txt").write_text("\n".join(f"a portrait, style {i}" for i in range(args.prompts)))
        one_s, one = run(root, base, 1, args.steps, args.size)
        many_s, many = run(root, base, args.processes, args.steps, args.size)
    table = Table(title=f"generate-batch, tiny SD1.5, {len(one)} images of {args.size} px, {args.steps} steps, CPU "
                  f"({os.cpu_count()} cores, 1 thread per process)")  # fmt: skip
    for column in ("processes", "wall s", "images/s", "speed-up", "PNGs identical to 1 process"):
        table.add_column(column, justify="right")
    for n, seconds, images in ((1, one_s, one), (args.processes, many_s, many)):
        table.add_row(
            str(n), f"{seconds:.1f}", f"{len(images) / seconds:.2f}", f"{one_s / seconds:.2f}x", str(images == one)
        )
    Console().print(table)


if __name__ == "__main__":
    main()
