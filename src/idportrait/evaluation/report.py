"""Tables, plots and grids of a scored run (methods as rows, metrics x100 as columns, like the papers).

scores.csv        one row per generated image (`idportrait.evaluation.score.score_records`)
summary.csv/.md   one row per method: mean of each metric, FID, seconds per image by stage, no-face count
by_category.csv   method x prompt category means
plots/<metric>.png   grouped bars per prompt category (one bar per method); the analyzer's FaceSim is
                     named after its embedding (facesim_arcface, facesim_dlib)
grids/<identity>.png reference photo, then one row per method over the prompts (first seed)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from idportrait.evaluation.records import Record
from idportrait.evaluation.score import METRICS
from idportrait.evaluation.speed import STAGES
from idportrait.imageio import atomic_open, load_image, save_image, write_csv

LABELS = {
    "clip_t": "CLIP-T",
    "clip_i": "CLIP-I",
    "dino": "DINO",
    "facesim_facenet": "FaceSim (FaceNet)",
    "facesim_arcface": "FaceSim (ArcFace)",
    "fgis": "FGIS",
}
THUMB = 128


def summarise(rows: list[dict[str, Any]], fid: dict[str, float], fid_name: str = "FID") -> list[dict[str, Any]]:
    """One dict per method (first-seen order): n, no_face, metric means, FID, mean seconds per stage."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        summary: dict[str, Any] = {"method": method, "images": len(mine)}
        summary["no_face"] = None if mine[0]["face"] is None else sum(not r["face"] for r in mine)
        for metric in METRICS:
            summary[metric] = _mean(r[metric] for r in mine)
        summary[fid_name] = fid.get(method, float("nan"))
        summary["seconds"] = _mean(r["seconds"] for r in mine)
        for name in _stage_names(rows):
            summary[f"s_{name}"] = _mean(r.get(f"s_{name}", float("nan")) for r in mine)
        out.append(summary)
    return out


def by_category(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Method x category means of every metric."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for category in dict.fromkeys(r["category"] for r in rows):
            mine = [r for r in rows if r["method"] == method and r["category"] == category]
            if mine:
                out.append({"method": method, "category": category, "images": len(mine)})
                out[-1] |= {metric: _mean(r[metric] for r in mine) for metric in METRICS}
    return out


def markdown_table(summary: list[dict[str, Any]], fid_name: str = "FID", face_name: str = "ArcFace") -> str:
    """The papers' table: methods as rows; columns with no value for any method (metric switched off, no
    timings, no face analyzer) are left out."""
    metrics = [m for m in METRICS if any(not math.isnan(s[m]) for s in summary)]
    has_fid = any(not math.isnan(s[fid_name]) for s in summary)
    has_speed = _has_timings(summary)
    has_face = any(s["no_face"] is not None for s in summary)
    columns = [_label(m, face_name) for m in metrics] + [fid_name] * has_fid
    columns += ["Speed (s)"] * has_speed + ["No face"] * has_face
    rows = []
    for s in summary:
        cells = [_fmt(s[m]) for m in metrics] + [_fmt(s[fid_name])] * has_fid + [_fmt(s["seconds"], 2)] * has_speed
        cells += [f"{s['no_face']}/{s['images']}"] * has_face
        rows.append([s["method"], *cells])
    return _table(["Method", *columns], rows)


def speed_table(summary: list[dict[str, Any]]) -> str:
    """Seconds per image by stage: ``prepare`` (per reference) and ``generate`` (per image), then marked stages."""
    stages = [k for k in summary[0] if k.startswith("s_") and any(not math.isnan(s[k]) for s in summary)]
    rows = [[s["method"], *(_fmt(s[k], 2) for k in stages), _fmt(s["seconds"], 2)] for s in summary]
    return _table(["Method", *(k[2:] for k in stages), "total"], rows)


def summary_markdown(summary: list[dict[str, Any]], fid_name: str = "FID", face_name: str = "ArcFace") -> str:
    """``summary.md``: the methods table, then the stage table, or a line saying no timings were recorded."""
    if not _has_timings(summary):
        return markdown_table(summary, fid_name, face_name) + "\nNo timings recorded (images made outside a run).\n"
    return markdown_table(summary, fid_name, face_name) + "\nSeconds per image by stage:\n\n" + speed_table(summary)


def write_report(
    out_dir: Path,
    rows: list[dict[str, Any]],
    fid: dict[str, float],
    fid_name: str,
    face_name: str,
    records: list[Record],
    run_dir: Path,
    references: dict[str, Path],
) -> dict[str, Path]:
    """Write every table, plot and grid under ``out_dir``; returns name -> path."""
    summary = summarise(rows, fid, fid_name)
    categories = by_category(rows)
    paths = {
        "scores": write_csv(out_dir / "scores.csv", rows),
        "summary": write_csv(out_dir / "summary.csv", summary),
        "by_category": write_csv(out_dir / "by_category.csv", categories),
        "table": out_dir / "summary.md",
    }
    with atomic_open(paths["table"], "w") as f:
        f.write(summary_markdown(summary, fid_name, face_name))
    paths["plots"] = out_dir / "plots"
    for metric in METRICS:
        if any(not math.isnan(c[metric]) for c in categories):
            path = paths["plots"] / f"{plot_name(metric, face_name)}.png"
            plot_categories(categories, metric, path, _label(metric, face_name))
    paths["grids"] = out_dir / "grids"
    for identity, photo in references.items():
        mine = [r for r in records if r.identity == identity]
        if mine:
            save_image(paths["grids"] / f"{identity}.png", identity_grid(load_image(photo), mine, run_dir))
    return paths


def plot_name(metric: str, face_name: str = "ArcFace") -> str:
    """File stem of a metric's plot: the analyzer's FaceSim is named after its embedding (``facesim_dlib``)."""
    if metric != "facesim_arcface":
        return metric
    return "facesim_" + "".join(c if c.isalnum() else "_" for c in face_name.lower())


def plot_categories(categories: list[dict[str, Any]], metric: str, path: Path, label: str) -> Path:
    """Save `category_figure` as a PNG."""
    fig = category_figure(categories, metric, label)
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def category_figure(categories: list[dict[str, Any]], metric: str, label: str) -> Any:
    """Grouped bar chart: prompt categories on x, one bar per method, metric x100 on y; widened until the
    title fits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(c["method"] for c in categories))
    names = list(dict.fromkeys(c["category"] for c in categories))
    value = {(c["method"], c["category"]): c[metric] for c in categories}
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(names), 3.5))
    for i, method in enumerate(methods):
        heights = [value.get((method, n), np.nan) for n in names]
        ax.bar(np.arange(len(names)) + (i - (len(methods) - 1) / 2) * width, heights, width, label=method)
    ax.set_xticks(np.arange(len(names)), names, rotation=15)
    ax.set_ylabel(f"{label} (x100)")
    ax.set_title(f"{label} by prompt category")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.canvas.draw()
    title = ax.title.get_window_extent()
    overflow = max(0.0, title.x1 - fig.bbox.x1, fig.bbox.x0 - title.x0)
    if overflow:
        fig.set_figwidth(fig.get_figwidth() + (2 * overflow + 20) / fig.dpi)
        fig.tight_layout()
    return fig


def identity_grid(reference: Image.Image, records: list[Record], run_dir: Path) -> Image.Image:
    """Reference in the first column; one row per method, its images by prompt index (first seed only)."""
    methods = list(dict.fromkeys(r.method for r in records))
    first_seed = {m: min((r.seed or 0) for r in records if r.method == m) for m in methods}
    rows = {
        m: sorted((r for r in records if r.method == m and (r.seed or 0) == first_seed[m]), key=_order) for m in methods
    }
    columns = max(len(v) for v in rows.values()) + 1
    label_h = 16
    grid = Image.new("RGB", (columns * THUMB, len(methods) * (THUMB + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, method in enumerate(methods):
        y = i * (THUMB + label_h)
        draw.text((4, y + 2), method, fill="black")
        grid.paste(_thumb(reference), (0, y + label_h))
        for j, record in enumerate(rows[method], start=1):
            grid.paste(_thumb(load_image(run_dir / record.path)), (j * THUMB, y + label_h))
    return grid


def _label(metric: str, face_name: str) -> str:
    return f"FaceSim ({face_name})" if metric == "facesim_arcface" else LABELS[metric]


def _order(record: Record) -> int:
    return record.prompt_index


def _thumb(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((THUMB, THUMB), Image.BICUBIC)


def _stage_names(rows: list[dict[str, Any]]) -> list[str]:
    found = list(dict.fromkeys(k[2:] for r in rows for k in r if k.startswith("s_")))
    order = ("prepare", "generate", *STAGES, "other")
    return [s for s in order if s in found] + [s for s in found if s not in order]


def _has_timings(summary: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(s["seconds"]) for s in summary)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table; every row has the header's number of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _mean(values) -> float:
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(finite)) if finite else float("nan")


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"
