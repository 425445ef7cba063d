"""Curation at scale: images/s per CPU core of each stage and end to end, and what LAION-2B-en would cost.

    python benchmarks/curate_scale.py [--images 120] [--side 512] [--latency-ms 100]
        [--detector dlib | insightface:antelopev2 --face-model-dir DIR] [--device cpu | cuda] [--detect-batch 16]
        [--no-ray] [--node-cores 64] [--node-gpus 8]

Corpus: ``--images`` rows with English person captions whose urls point at a loopback web server (its
own process) that answers after ``--latency-ms``, serving the bundled sample photos (faces, a group,
no face) as ``--side`` x ``--side`` JPEGs. The text stage runs on the 1000 real captions of
``tests/data/curate/captions_dev_labels.tsv`` (real LAION alt texts; their pass share is printed too).

Per stage (in this process, models loaded beforehand, one thread but for the downloads): wall
seconds, CPU seconds, items per second and items per CPU-second (= per core). End to end: a whole
`run_local` with 1 and 2 worker processes and `run_ray` with downloads and detection scaled apart
(2 download tasks, 1 detection actor), worker start-up and model loading included; CPU seconds are
this process's and its descendants' (Ray's raylet and workers included), the web server's left out.

With ``--device cuda`` (and an insightface pack) the detection row is per GPU instead of per core.
The last table prices LAION-2B-en (2.32 billion captions) at the measured rates: core-hours of the
text stage on every caption and of download, decode and writing on the captions that pass it,
detection hours (core or GPU), and the nodes that finish the job in one week.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from idportrait.curate.cascade import check_decoded, detect_stage, text_stage
from idportrait.curate.config import CurateConfig
from idportrait.curate.detect import make_detector
from idportrait.curate.download import Fetcher, download_stage
from idportrait.curate.options import DownloadConfig, RayOptions, StageOptions
from idportrait.curate.readers import Shard
from idportrait.curate.results import ShardResult
from idportrait.curate.runner import run_local
from idportrait.curate.sample import PHOTOS
from idportrait.curate.types import Sample

DEV_CAPTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "curate" / "captions_dev_labels.tsv"
PHOTO_CYCLE = ("astronaut_crop", "tom_hanks", "coffee", "group", "astronaut_crop_flipped", "chelsea")
CAPTIONS = ("Portrait of a young woman", "Actor smiling at the camera", "A woman drinking coffee")
LAION_2B_EN = 2_322_161_808
"""Rows of LAION-2B-en (captions the text stage reads)."""
WEEK_HOURS = 7 * 24


@dataclass
class Clock:
    """Wall and CPU seconds (this process and its reaped children) of one measured block."""

    wall: float = 0.0
    cpu: float = 0.0


EXCLUDED_PIDS: set[int] = set()
"""Processes whose CPU time is not ours (the web server)."""


def cpu_seconds() -> float:
    """CPU seconds of this process, its reaped descendants and its live ones (Ray's raylet and workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for process in psutil.Process().children(recursive=True):
        if process.pid not in EXCLUDED_PIDS:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                live += times.user + times.system
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + live


def measure(fn: Callable[[], object]) -> Clock:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return Clock(time.perf_counter() - wall, cpu_seconds() - cpu)


def serve(folder: str, latency: float, port: multiprocessing.Queue) -> None:
    """A threaded static web server over ``folder`` that waits ``latency`` seconds before each reply."""
    import functools
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(latency)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    port.put(server.server_address[1])
    server.serve_forever()


def write_photos(www: Path, side: int) -> None:
    """The sample photos as ``side`` x ``side`` JPEGs for the web server."""
    www.mkdir()
    for name in PHOTO_CYCLE:
        buf = io.BytesIO()
        PHOTOS[name]().resize((side, side)).save(buf, format="JPEG", quality=90)
        (www / f"{name}.jpg").write_bytes(buf.getvalue())


def write_shards(folder: Path, images: int, base_url: str) -> list[dict]:
    """2 parquet shards of url rows in ``folder``; returns the rows."""
    folder.mkdir()
    rows = [
        {"key": f"r{i:05d}", "caption": CAPTIONS[i % len(CAPTIONS)], "url": f"{base_url}/{name}.jpg?{i}"}
        for i, name in enumerate(PHOTO_CYCLE[i % len(PHOTO_CYCLE)] for i in range(images))
    ]
    half = len(rows) // 2
    for part, chunk in enumerate((rows[:half], rows[half:])):
        pq.write_table(pa.Table.from_pylist(chunk), folder / f"web-{part}.parquet")
    return rows


def dev_captions() -> list[Sample]:
    with DEV_CAPTIONS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Sample(f"dev{r['row']}", r["TEXT"].strip() or None) for r in rows]


def stage_rows(rows: list[dict], cfg: CurateConfig, options: StageOptions, out: Path) -> tuple[list[tuple], float]:
    """((stage, items, what, Clock) of each stage on its own, models loaded first; the text stage's pass share)."""
    captions = dev_captions()
    text_stage(captions[:50], cfg)  # loads spaCy
    detect = make_detector(cfg.detector, cfg.face_model_dir, options.device)
    samples = [Sample(r["key"], r["caption"], url=r["url"]) for r in rows]
    decisions = []
    results = []
    text = measure(lambda: decisions.extend(text_stage(dev_captions(), cfg)))
    passed = sum(d.keep for d in decisions)
    fetcher = Fetcher(options.download)
    download = measure(lambda: download_stage(samples, fetcher))
    checked: list = []
    decode = measure(lambda: checked.extend(check_decoded(s, cfg) for s in samples))
    detect_stage(samples[:2], checked[:2], cfg, detect)  # warm-up (first call initialises the backend)
    batch = options.detect_batch

    def detect_all() -> None:
        for start in range(0, len(samples), batch):
            results.extend(detect_stage(samples[start : start + batch], checked[start : start + batch], cfg, detect))

    detection = measure(detect_all)

    def write() -> None:
        result = ShardResult(str(out), Shard("bench.parquet", "bench"), cfg)
        for sample, decision in zip(samples, results, strict=True):
            result.add(sample, decision)
        result.close()

    writing = measure(write)
    return [
        ("text stage (real dev captions)", len(captions), f"captions, {passed} pass", text),
        ("download (loopback, threads)", len(samples), "images", download),
        ("decode + size check", len(samples), "images", decode),
        (f"detect + embed ({cfg.detector}, {options.device}, batch {batch})", len(samples), "images", detection),
        ("write (tar, index, decisions)", len(samples), "images", writing),
    ], passed / len(captions)


def end_to_end_rows(folder: Path, cfg: CurateConfig, options: StageOptions, images: int, ray: bool) -> list[tuple]:
    rows = []
    for workers in (1, 2):
        out = folder / f"out-w{workers}"
        clock = measure(
            lambda out=out, workers=workers: run_local([str(folder / "in")], str(out), cfg, workers, options)
        )
        rows.append((f"run_local, {workers} worker process{'es' if workers > 1 else ''}", images, "images", clock))
    if ray:
        import ray as ray_module

        from idportrait.curate.ray_runner import run_ray

        ray_options = RayOptions(num_cpus=2, download_tasks=2, download_cpus=0.25, detect_actors=1)
        try:  # Ray's processes are still alive at the end of the measurement: their CPU time counts
            clock = measure(lambda: run_ray([str(folder / "in")], str(folder / "out-ray"), cfg, options, ray_options))
        finally:
            ray_module.shutdown()
        rows.append(("run_ray: 2 download tasks x 0.25 CPU, 1 detect actor", images, "images", clock))
    return rows


def rate_table(title: str, rows: list[tuple], per_gpu_stage: str | None) -> Table:
    table = Table(title=title)
    for column in ("stage", "items", "wall s", "CPU s", "items/s", "items/s per core"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, items, what, clock in rows:
        per_unit = f"{items / clock.wall:.1f} per GPU" if stage == per_gpu_stage else f"{items / clock.cpu:.2f}"
        table.add_row(
            stage, f"{items} {what}", f"{clock.wall:.2f}", f"{clock.cpu:.2f}", f"{items / clock.wall:.2f}", per_unit
        )
    return table


def cost_table(stages: list[tuple], pass_share: float, gpu: bool, node_cores: int, node_gpus: int) -> Table:
    """LAION-2B-en at the measured per-core (and per-GPU) rates."""
    text, download, decode, detection, write = stages
    images = LAION_2B_EN * pass_share
    core_hours = {
        "text stage": LAION_2B_EN * text[3].cpu / text[1] / 3600,
        "download": images * download[3].cpu / download[1] / 3600,
        "decode": images * decode[3].cpu / decode[1] / 3600,
        "write": images * write[3].cpu / write[1] / 3600,
    }
    detect_hours = images * (detection[3].wall if gpu else detection[3].cpu) / detection[1] / 3600
    table = Table(
        title=f"LAION-2B-en: {LAION_2B_EN / 1e9:.2f} B captions, {images / 1e9:.2f} B images past the text stage"
    )
    for column in ("work", "core-hours", "GPU-hours", f"nodes for one week ({node_cores} cores, {node_gpus} GPUs)"):
        table.add_column(column, justify="left" if column == "work" else "right")
    cpu_total = sum(core_hours.values()) + (0 if gpu else detect_hours)
    for name, hours in core_hours.items():
        table.add_row(name, f"{hours:,.0f}", "", "")
    table.add_row(
        "detect + embed",
        "" if gpu else f"{detect_hours:,.0f}",
        f"{detect_hours:,.0f}" if gpu else "not measured",
        "",
    )
    nodes = cpu_total / (WEEK_HOURS * node_cores)
    if gpu:
        nodes = max(nodes, detect_hours / (WEEK_HOURS * node_gpus))
    table.add_row("[bold]total[/]", f"{cpu_total:,.0f}", f"{detect_hours:,.0f}" if gpu else "", f"{nodes:,.1f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--detector", default="dlib")
    parser.add_argument("--face-model-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detect-batch", type=int, default=16)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--node-cores", type=int, default=64)
    parser.add_argument("--node-gpus", type=int, default=8)
    args = parser.parse_args()

    cfg = CurateConfig(detector=args.detector, face_model_dir=args.face_model_dir)
    download = DownloadConfig(per_host=64, threads=32)  # one loopback host stands for many web hosts
    options = StageOptions(device=args.device, detect_batch=args.detect_batch, download=download)
    gpu = args.device.startswith("cuda")
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_photos(folder / "www", args.side)
        context = multiprocessing.get_context("spawn")
        port = context.Queue()
        server = context.Process(target=serve, args=(str(folder / "www"), args.latency_ms / 1000, port), daemon=True)
        server.start()
        EXCLUDED_PIDS.add(server.pid)
        try:
            rows = write_shards(folder / "in", args.images, f"http://127.0.0.1:{port.get(timeout=60)}")
            stages, pass_share = stage_rows(rows, cfg, options, folder / "stage-out")
            whole = end_to_end_rows(folder, cfg, options, args.images, not args.no_ray)
        finally:
            server.kill()
    where = f"{args.side} px JPEGs, {args.latency_ms:g} ms server latency"
    detect_name = stages[3][0] if gpu else None
    console.print(rate_table(f"Curation stages, one at a time ({where})", stages, detect_name))
    console.print(rate_table(f"Curation end to end ({args.images} images in 2 shards, {where})", whole, None))
    console.print(cost_table(stages, pass_share, gpu, args.node_cores, args.node_gpus))
    console.print(f"CPU cores visible: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
