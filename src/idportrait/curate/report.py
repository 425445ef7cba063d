"""`idportrait curate report`: the statistics table of a finished (or partial) curation run.

Reads ``<out>/stats/*.json`` and ``<out>/decisions/*.parquet`` of finished shards and writes

    <out>/report/report.md            per-filter funnel (dropped / remaining, like FaceID-6M's table),
                                      failed downloads by cause (``http_404``, ``timeout``...),
                                      per-step counts of the text stage, unreadable input shards
    <out>/report/report.json          the same numbers, machine-readable
    <out>/report/resolution_hist.png  shorter side of every image that decoded (its real size)
    <out>/report/face_area_hist.png   largest-face area fraction of every detected image

Every file is written whole or not at all, with the permissions of any other output (the umask's).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idportrait.curate import reasons
from idportrait.curate.writer import DECISIONS_DIR, FAILURES_DIR, load_stats, output_path
from idportrait.errors import UserError
from idportrait.imageio import write_bytes, write_json
from idportrait.shards.files import filesystem


@dataclass
class Report:
    """Aggregated counts over finished shards; ``funnel`` rows are (reason, dropped, remaining)."""

    shards: int
    samples: int
    kept: int
    dropped: dict[str, int]
    """Drop reason (``download_failed:<detail>`` counted apart) -> samples."""
    funnel: list[tuple[str, int, int]]
    min_sides: list[int] = field(repr=False)
    face_ratios: list[float] = field(repr=False)
    config: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    """``language:<rule>`` / ``person:<step>`` -> samples that rule or step decided (text stage)."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    """Input shards that could not be read: ``{"shard", "source", "error"}``."""

    @property
    def download_failures(self) -> dict[str, int]:
        """Failure detail (``http_404``, ``timeout``...) -> failed downloads, most first."""
        found = {r.split(":", 1)[1]: n for r, n in self.dropped.items() if r.startswith(f"{reasons.DOWNLOAD_FAILED}:")}
        return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "samples": self.samples,
            "kept": self.kept,
            "dropped": self.dropped,
            "funnel": [{"filter": r, "dropped": d, "remaining": k} for r, d, k in self.funnel],
            "download_failures": self.download_failures,
            "steps": self.steps,
            "failures": self.failures,
            "config": self.config,
        }


def build_report(out: str) -> Report:
    """Aggregate the stats and decisions of every finished shard under ``out``."""
    import pyarrow.parquet as pq

    stats = load_stats(out)
    dropped: dict[str, int] = {}
    steps: dict[str, int] = {}
    for s in stats:
        for reason, n in s["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
        for step, n in s.get("steps", {}).items():
            steps[step] = steps.get(step, 0) + n
    samples = sum(s["samples"] for s in stats)
    families: dict[str, int] = {}
    for reason, n in dropped.items():
        families[reasons.family(reason)] = families.get(reasons.family(reason), 0) + n
    funnel, remaining = [], samples
    for reason in [*reasons.ORDER, *sorted(set(families) - set(reasons.ORDER))]:
        remaining -= families.get(reason, 0)
        funnel.append((reason, families.get(reason, 0), remaining))
    min_sides: list[int] = []
    face_ratios: list[float] = []
    for s in stats:
        fs, path = filesystem(output_path(out, DECISIONS_DIR, s["shard"]))
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["width", "height", "decoded", "face_ratio"]).to_pylist()
        min_sides += [min(r["width"], r["height"]) for r in table if r["decoded"]]
        face_ratios += [r["face_ratio"] for r in table if r["face_ratio"] is not None]
    return Report(
        shards=len(stats),
        samples=samples,
        kept=sum(s["kept"] for s in stats),
        dropped=dropped,
        funnel=funnel,
        min_sides=min_sides,
        face_ratios=face_ratios,
        config=stats[0].get("config", {}) if stats else {},
        steps=dict(sorted(steps.items())),
        failures=load_failures(out),
    )


def load_failures(out: str) -> list[dict[str, Any]]:
    """Failure records of the shards under ``out`` that could not be read, by shard name; corrupt ones left out."""
    fs, root = filesystem(f"{out.rstrip('/')}/{FAILURES_DIR}")
    if not fs.exists(root):
        return []
    failures = []
    for path in sorted(fs.glob(f"{root}/*.json")):
        with fs.open(path, "rb") as f:
            try:
                record = json.loads(f.read())
            except (ValueError, UnicodeDecodeError):
                continue  # cut short: the shard is not done either, and a rerun records it again
        if isinstance(record, dict) and {"shard", "error"} <= set(record):
            failures.append(record)
    return failures


def render_markdown(report: Report) -> str:
    lines = [
        f"# Curation report: {report.samples} samples in {report.shards} shards, {report.kept} kept",
        "",
        "| filter | drop reason | dropped | remaining |",
        "| --- | --- | ---: | ---: |",
        f"| input | | | {report.samples} |",
    ]
    for reason, n, remaining in report.funnel:
        lines.append(f"| {reasons.DESCRIPTIONS.get(reason, reason)} | `{reason}` | {n} | {remaining} |")
    lines.append(f"| **kept** | | | **{report.kept}** |")
    if report.download_failures:
        lines += ["", "## Failed downloads by cause", "", "| cause | urls |", "| --- | ---: |"]
        lines += [f"| `{detail}` | {n} |" for detail, n in report.download_failures.items()]
    if report.steps:
        lines += ["", "## Text stage: what decided", "", "| step | samples |", "| --- | ---: |"]
        lines += [f"| `{step}` | {n} |" for step, n in report.steps.items()]
    if report.failures:
        lines += ["", f"## Unreadable input shards ({len(report.failures)}, not curated)", ""]
        lines += ["| shard | error |", "| --- | --- |"]
        lines += [f"| `{f['shard']}` | {f['error'].replace('|', '/')} |" for f in report.failures]
    return "\n".join(lines) + "\n"


def _histogram(values: list[float], threshold: float, title: str, xlabel: str, path: Path) -> None:
    """A PNG histogram with the threshold marked, written whole to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.hist(values, bins=30, color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
    ax.set(title=title, xlabel=xlabel, ylabel="samples")
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    write_bytes(path, png.getvalue())


def write_report(out: str, report_dir: str | Path | None = None) -> tuple[Report, Path]:
    """Build the report of ``out`` and write md/json/png files into ``report_dir`` (local folder).

    Nothing is written (no folder made) when ``out`` holds no finished shard and no recorded failure.
    """
    report = build_report(out)
    if report.shards == 0 and not report.failures:
        raise UserError("no finished shards to report on (run `idportrait curate run` first)", out)
    folder = Path(report_dir) if report_dir else Path(out) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "report.md", render_markdown(report).encode("utf-8"))
    write_json(folder / "report.json", report.to_json())
    _histogram(
        report.min_sides,
        report.config.get("min_side", 512),
        f"Shorter side of the decoded images ({len(report.min_sides)} samples)",
        "pixels",
        folder / "resolution_hist.png",
    )
    _histogram(
        report.face_ratios,
        report.config.get("min_face_ratio", 0.04),
        f"Largest face area / image area ({len(report.face_ratios)} detected images)",
        "fraction of image area",
        folder / "face_area_hist.png",
    )
    return report, folder
