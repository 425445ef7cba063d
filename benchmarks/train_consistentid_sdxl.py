"""ConsistentID training on an SDXL base: the loss curve of a tiny run, with the same run on SD1.5 beside it.

    python benchmarks/train_consistentid_sdxl.py [--steps 60] [--eval-every 10] [--out outputs/train_sdxl_bench]

Data: the annotated astronaut crops of ``fgid_localization.py`` (the real annotation pipeline with the dlib face
analyzer, the landmark parser and fixed template captions). Models: the tiny random bases of `idportrait.tiny`
(SDXL: two 32-d text encoders, cross-attention 64, pooled 32; SD1.5: one 32-d text encoder), a small adapter, LoRA
rank 8, through the real training loop (`idportrait train consistentid` with the base told apart by its UNet).
Both runs share the seed, data order, learning rate and batch size. Every ``--eval-every`` steps each is measured on
one fixed batch of its training photos (fixed noise and timesteps, no drop): the eps-MSE and the facial tokens'
attention share inside their regions. The training loss column is the mean of the logged steps since the last
row. Prints the table and writes ``loss_curves.png`` / ``.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from fgid_localization import add_run_options, annotate_photos, make_photos, train_with_evals
from rich.console import Console
from rich.table import Table

BASES = ("sdxl", "sd15")


def window_loss(log: list[dict], step: int, previous: int) -> float:
    """Mean training loss of the logged steps in (previous, step] (step 1: that step alone)."""
    return float(np.mean([e["loss"] for e in log if previous < e["step"] <= step]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser, lr=3e-3)
    parser.add_argument("--out", type=Path, default=Path("outputs/train_sdxl_bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from idportrait.tiny import save_tiny_sd15, save_tiny_sdxl

    args.out.mkdir(parents=True, exist_ok=True)
    bases = {"sdxl": save_tiny_sdxl(args.out / "tiny_sdxl"), "sd15": save_tiny_sd15(args.out / "tiny_sd15")}
    data = annotate_photos(make_photos(args.out / "photos", args.photos), args.out / "annotated")
    options = {"adapter_size": "small"}
    results = {name: train_with_evals(args, bases[name], data, args.out / name, options) for name in BASES}

    table = Table(title="tiny ConsistentID training: fixed-batch eps-MSE, training loss, facial attention share")
    table.add_column("step", justify="right")
    for what in ("eval MSE", "train loss", "attn share"):
        for name in BASES:
            table.add_column(f"{what} {name}", justify="right")
    steps = sorted(results[BASES[0]]["curve"])
    for previous, step in zip([0, *steps], steps, strict=False):
        row = [str(step)]
        row += [f"{results[n]['curve'][step]['mse']:.4f}" for n in BASES]
        row += [f"{window_loss(results[n]['log'], step, previous):.4f}" for n in BASES]
        row += [f"{results[n]['curve'][step]['share']:.4f}" for n in BASES]
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name in BASES:
        curve = results[name]["curve"]
        first, last = curve[steps[0]]["mse"], curve[steps[-1]]["mse"]
        console.print(
            f"{name}: eval MSE step {steps[-1]} / step 1 = {last / first:.3f}; "
            f"{results[name]['seconds']:.0f} s for {args.steps} steps"
        )

    summary = {"args": {k: str(v) for k, v in vars(args).items()}}
    summary |= {name: {"curve": results[name]["curve"], "log": results[name]["log"]} for name in BASES}
    (args.out / "loss_curves.json").write_text(json.dumps(summary, indent=2))
    plot = save_plot(args.out / "loss_curves.png", results)
    console.print(f"curves written to {plot} and {args.out / 'loss_curves.json'}")


def save_plot(path: Path, results: dict[str, dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, res in results.items():
        steps = sorted(res["curve"])
        ax1.plot(steps, [res["curve"][s]["mse"] for s in steps], marker="o", label=name)
        log = res["log"]
        ax2.plot([e["step"] for e in log], [e["loss"] for e in log], alpha=0.8, label=name)
    ax1.set_xlabel("step")
    ax1.set_ylabel("eps-MSE on the fixed batch")
    ax1.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (MSE + 0.01 localization)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


if __name__ == "__main__":
    main()
