"""The human study's numbers: per method and criterion the mean rating with a 95 % bootstrap interval,
and the inter-rater agreement per criterion.

    summary = human_summary(db.ratings(), seed)       # one dict per (method, criterion)
    agreement = human_agreement(db.ratings())         # one dict per criterion
    write_human_report(out_dir, summary, agreement, resamples, seed)

The bootstrap resamples images (all ratings of an image stay together, as raters of one image are not
independent) and takes the 2.5 and 97.5 percentiles of the resampled means.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from idportrait.evaluation.agreement import krippendorff_alpha_ordinal
from idportrait.evaluation.rating_db import CRITERIA, MAX_SCORE, Rating
from idportrait.imageio import atomic_open, write_csv

RESAMPLES = 2000
SECTION = "## Human ratings"


def bootstrap_mean(scores_by_image: list[list[int]], resamples: int, seed: int) -> tuple[float, float, float]:
    """(mean of all scores, 2.5 %, 97.5 % percentiles of the mean over images resampled with replacement)."""
    sums = np.array([sum(s) for s in scores_by_image], dtype=np.float64)
    counts = np.array([len(s) for s in scores_by_image], dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, len(sums), (resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(sums.sum() / counts.sum()), float(low), float(high)


def human_summary(ratings: list[Rating], seed: int = 0, resamples: int = RESAMPLES) -> list[dict[str, Any]]:
    """Per method (sorted) and criterion: mean, low, high (95 % bootstrap), ratings, images, raters."""
    out = []
    for method in sorted({r.method for r in ratings}):
        for criterion in CRITERIA:
            mine = [r for r in ratings if r.method == method and r.criterion == criterion]
            if not mine:
                continue
            by_image: dict[str, list[int]] = {}
            for r in mine:
                by_image.setdefault(r.image, []).append(r.score)
            mean, low, high = bootstrap_mean(list(by_image.values()), resamples, seed)
            counts = {"ratings": len(mine), "images": len(by_image), "raters": len({r.rater for r in mine})}
            out.append({"method": method, "criterion": criterion, "mean": mean, "low": low, "high": high, **counts})
    return out


def human_agreement(ratings: list[Rating]) -> list[dict[str, Any]]:
    """Per criterion: Krippendorff's alpha (ordinal) over all images, the images rated by 2+ raters, raters."""
    out = []
    for criterion in CRITERIA:
        mine = [r for r in ratings if r.criterion == criterion]
        raters = sorted({r.rater for r in mine})
        images = sorted({r.image for r in mine})
        table = np.full((len(raters), len(images)), np.nan)
        for r in mine:
            table[raters.index(r.rater), images.index(r.image)] = r.score
        shared = int((np.sum(~np.isnan(table), axis=0) >= 2).sum())
        alpha = krippendorff_alpha_ordinal(table) if shared else float("nan")
        out.append({"criterion": criterion, "alpha": alpha, "shared_images": shared, "raters": len(raters)})
    return out


def human_markdown(summary: list[dict[str, Any]], agreement: list[dict[str, Any]], resamples: int, seed: int) -> str:
    """The human section of ``summary.md``: a methods x criteria table, then the agreement table."""
    cell = {(s["method"], s["criterion"]): s for s in summary}
    methods = list(dict.fromkeys(s["method"] for s in summary))
    lines = [
        SECTION,
        "",
        f"Mean rating (0-{MAX_SCORE}) [95 % bootstrap interval over images, {resamples} resamples, seed {seed}] "
        "(number of ratings).",
        "",
        "| Method | " + " | ".join(CRITERIA.values()) + " |",
        "|---" * (len(CRITERIA) + 1) + "|",
    ]
    for method in methods:
        cells = [_interval(cell.get((method, c))) for c in CRITERIA]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Inter-rater agreement (Krippendorff's alpha, ordinal):", ""]
    lines += ["| Criterion | Alpha | Images rated by 2+ raters | Raters |", "|---|---|---|---|"]
    for a in agreement:
        alpha = "–" if math.isnan(a["alpha"]) else f"{a['alpha']:.3f}"
        lines.append(f"| {CRITERIA[a['criterion']]} | {alpha} | {a['shared_images']} | {a['raters']} |")
    return "\n".join(lines) + "\n"


def write_human_report(
    out_dir: Path, summary: list[dict[str, Any]], agreement: list[dict[str, Any]], resamples: int, seed: int
) -> dict[str, Path]:
    """``human.csv``, ``agreement.csv``, ``plots/human.png``; the human columns go into ``summary.csv`` and the
    human section into ``summary.md`` (beside a scored run's metrics; created when absent; replaced on a rerun).
    Returns name -> path."""
    paths = {
        "human": write_csv(out_dir / "human.csv", summary),
        "agreement": write_csv(out_dir / "agreement.csv", agreement),
        "human_plot": plot_human(summary, out_dir / "plots" / "human.png"),
        "table": out_dir / "summary.md",
    }
    section = human_markdown(summary, agreement, resamples, seed)
    automatic = paths["table"].read_text("utf-8").split(f"\n{SECTION}\n")[0] if paths["table"].is_file() else ""
    with atomic_open(paths["table"], "w") as f:
        f.write(f"{automatic.rstrip()}\n\n{section}" if automatic.strip() else section)
    paths["summary"] = _merge_summary_csv(out_dir / "summary.csv", summary)
    return paths


def plot_human(summary: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars: criteria on x, one bar per method, the 95 % interval as error bars, 0-5 on y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(s["method"] for s in summary))
    cell = {(s["method"], s["criterion"]): s for s in summary}
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(CRITERIA), 3.8))
    x = np.arange(len(CRITERIA))
    for i, method in enumerate(methods):
        found = [cell.get((method, c)) for c in CRITERIA]
        means = [np.nan if s is None else s["mean"] for s in found]
        errors = [[0.0, 0.0] if s is None else [s["mean"] - s["low"], s["high"] - s["mean"]] for s in found]
        offset = (i - (len(methods) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=np.array(errors).T, capsize=3, label=method)
    ax.set_xticks(x, list(CRITERIA.values()))
    ax.set_ylim(0, MAX_SCORE)
    ax.set_ylabel(f"mean rating (0-{MAX_SCORE}), 95 % CI")
    ax.set_title("Human ratings")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def _merge_summary_csv(path: Path, summary: list[dict[str, Any]]) -> Path:
    """Add ``human_<criterion>`` (+ ``_low``, ``_high``, ``_n``) columns per method to ``summary.csv``."""
    rows: list[dict[str, Any]] = []
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: v for k, v in row.items() if not k.startswith("human_")} for row in csv.DictReader(f)]
    by_method = {row["method"]: row for row in rows}
    for s in summary:
        row = by_method.setdefault(s["method"], {"method": s["method"]})
        key = f"human_{s['criterion']}"
        row |= {key: s["mean"], f"{key}_low": s["low"], f"{key}_high": s["high"], f"{key}_n": s["ratings"]}
    return write_csv(path, list(by_method.values()))


def _interval(s: dict[str, Any] | None) -> str:
    return "–" if s is None else f"{s['mean']:.2f} [{s['low']:.2f}, {s['high']:.2f}] ({s['ratings']})"
