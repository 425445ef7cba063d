"""Face analysis speed per backend on the astronaut photo (512x512): ms/image, one table.

    python benchmarks/faces_speed.py [--insightface-dir DIR] [--device cpu|cuda] [--repeats N]

BiSeNet runs with random weights (the speed does not depend on them). insightface rows appear only
with --insightface-dir pointing at a folder holding buffalo_l/ and/or antelopev2/.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import skimage.data
import torch
from rich.console import Console
from rich.table import Table

from idportrait.faces.analyzer import FaceAnalyzer, get_face_analyzer
from idportrait.faces.bisenet import BiSeNet
from idportrait.faces.dlib_backend import DlibBackend
from idportrait.faces.landmark_parsing import LandmarkParser
from idportrait.faces.parsing import BiSeNetParser


def time_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--insightface-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    image = skimage.data.astronaut()
    rows: list[tuple[str, str, float]] = []

    hog68 = FaceAnalyzer("dlib:hog", DlibBackend("hog", "68"))
    face = hog68.largest_face(image)
    rows.append(
        ("dlib HOG detect + 68 landmarks", "detect", time_ms(lambda: hog68.detect(image, embed=False), args.repeats))
    )
    rows.append(
        (
            "dlib HOG + 68 landmarks + 128-D descriptor",
            "detect+embed",
            time_ms(lambda: hog68.detect(image), args.repeats),
        )
    )
    hog5 = FaceAnalyzer("dlib:hog", DlibBackend("hog", "5"))
    rows.append(
        ("dlib HOG + 5 landmarks + 128-D descriptor", "detect+embed", time_ms(lambda: hog5.detect(image), args.repeats))
    )
    cnn = FaceAnalyzer("dlib:cnn", DlibBackend("cnn", "68", upsample=0))
    rows.append(("dlib CNN (MMOD) detect, no upsampling", "detect", time_ms(lambda: cnn.detect(image, embed=False), 1)))

    landmarks = LandmarkParser()
    rows.append(
        ("landmark parser (given 68 points)", "parse", time_ms(lambda: landmarks.parse(image, face), args.repeats))
    )
    bisenet = BiSeNetParser(BiSeNet().eval().to(args.device))
    rows.append((f"BiSeNet 512x512 ({args.device})", "parse", time_ms(lambda: bisenet.parse(image), args.repeats)))

    if args.insightface_dir:
        for pack in ("buffalo_l", "antelopev2"):
            try:
                analyzer = get_face_analyzer(f"insightface:{pack}", model_dir=args.insightface_dir, device=args.device)
            except Exception as err:
                Console().print(f"[yellow]skipping {pack}: {err}")
                continue
            rows.append(
                (
                    f"insightface {pack} det 640",
                    "detect",
                    time_ms(lambda a=analyzer: a.detect(image, embed=False), args.repeats),
                )
            )
            rows.append(
                (
                    f"insightface {pack} det 640 + ArcFace",
                    "detect+embed",
                    time_ms(lambda a=analyzer: a.detect(image), args.repeats),
                )
            )

    table = Table(
        title=f"face analysis on astronaut 512x512, torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    table.add_column("backend")
    table.add_column("task")
    table.add_column("ms/image", justify="right")
    table.add_column("x fastest", justify="right")
    fastest = min(ms for _, _, ms in rows)
    for name, task, ms in rows:
        table.add_row(name, task, f"{ms:.1f}", f"{ms / fastest:.1f}")
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
