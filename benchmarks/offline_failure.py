"""Seconds until a model that is not cached is reported, when the hub cannot be reached: one table.

    python benchmarks/offline_failure.py [--cap SECONDS]

Rows: a hub endpoint that accepts connections and never answers (a dead network path), one that refuses
them, and ``HF_HUB_OFFLINE=1``. Columns: ``hf_hub_download`` called directly (the libraries' own timeouts
and retries) and the same download through `idportrait.hub.fetch` (one bounded reachability check, then the
local cache only). Each measurement runs in a fresh process with an empty cache; imports are not timed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.table import Table

MEASURE = """
import sys, time
from huggingface_hub import hf_hub_download
from idportrait.hub import fetch

def download(local_files_only=False):
    return hf_hub_download("acme/not-cached", "weights.bin", local_files_only=local_files_only)

start = time.monotonic()
try:
    download() if sys.argv[1] == "direct" else fetch("weights", "acme/not-cached", "--weights", download)
except Exception as err:
    print(f"{time.monotonic() - start:.2f} {type(err).__name__}")
"""


def seconds(way: str, env: dict[str, str], cap: float) -> str:
    """Seconds (and the error type) until ``way`` fails, or ``> cap`` when it is still waiting."""
    try:
        done = subprocess.run([sys.executable, "-c", MEASURE, way], env=env, capture_output=True, text=True,
                              timeout=cap)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"> {cap:.0f}"
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=120.0, help="Give up on a measurement after this many seconds.")
    args = parser.parse_args()

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # handshakes complete; nothing ever answers
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    cache = tempfile.mkdtemp()
    base = {**os.environ, "HF_HOME": cache}
    base.pop("HF_HUB_OFFLINE", None)
    conditions = {
        "endpoint never answers": {**base, "HF_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}"},
        "endpoint refuses": {**base, "HF_ENDPOINT": f"http://127.0.0.1:{refused_port}"},
        "HF_HUB_OFFLINE=1": {**base, "HF_HUB_OFFLINE": "1"},
    }
    table = Table("hub", "hf_hub_download alone [s]", "through hub.fetch [s]", "ratio")
    for name, env in conditions.items():
        direct, fetched = seconds("direct", env, args.cap), seconds("fetch", env, args.cap)
        a, b = (float(x.split()[-1] if x.startswith(">") else x.split()[0]) for x in (direct, fetched))
        table.add_row(name, direct, fetched, f"{'>' if direct.startswith('>') else ''}{a / max(b, 1e-3):.1f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
