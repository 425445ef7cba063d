"""Does ConsistentID's facial localization loss do its job? A CPU learning experiment with tiny models.

    python benchmarks/fgid_localization.py [--steps 60] [--facial-weights 0,0.01,1] [--out outputs/fgid_bench]

Data: face crops/flips of scikit-image's astronaut photo (a real photo shipped with the package), annotated by the
real `idportrait.annotate` pipeline with the offline dlib face analyzer and the landmark face parser; the VLM is
replaced by fixed template captions (the overall caption and a facial caption naming face, ears, eyes, nose and
mouth), because a captioning model cannot run here.

One run of the real training loop per ``--facial-weights`` value (0 = no localization loss; 0.01 = the spec),
all from the same seed, data order and tiny SD1.5 base (`idportrait.tiny`). Every ``--eval-every`` steps each
is measured on one fixed batch (fixed noise and timesteps, no drop): the share of each facial token's
cross-attention mass inside its own region mask ("token" pairing: each class word with its region),
averaged over tokens, photos, timesteps and the captured layers (mid_block, up_blocks.1 of the tiny UNet),
and the eps-MSE. Prints the curves side by side and saves
``localization_curves.png`` / ``.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from idportrait.annotate.prompts import FACIAL_PROMPT
from idportrait.training.consistentid import ConsistentIDObjective
from idportrait.training.loop import TrainConfig, read_log, train
from idportrait.training.metrics import attention_share_in_regions, region_area_fraction

EVAL_TIMESTEPS = (200, 400, 600, 800)


class TemplateCaptions:
    """Fixed captions in place of LLaVA (see the module docstring)."""

    name = "template"

    def caption(self, image: Image.Image, prompt: str) -> str:
        if prompt == FACIAL_PROMPT:
            return (
                "The woman in the image has an oval face, small ears, brown eyes, a straight nose, and a smiling mouth."
            )
        return "A woman in an orange space suit. She smiles at the camera in front of a flag."


def make_photos(out_dir: Path, n: int, seed: int = 0) -> Path:
    """``n`` random square crops around the astronaut's face (140-220 px; every other one mirrored)."""
    from skimage import data

    out_dir.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(seed)
    cx, cy = 220, 122  # face centre in the 512x512 photo
    for i in range(n):
        size = int(rng.integers(140, 221))
        left = int(np.clip(cx - size // 2 + rng.integers(-20, 21), 0, 512 - size))
        top = int(np.clip(cy - size // 2 + rng.integers(-20, 21), 0, 512 - size))
        crop = photo.crop((left, top, left + size, top + size)).resize((256, 256), Image.BICUBIC)
        (crop.transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else crop).save(out_dir / f"astronaut_{i:02d}.png")
    return out_dir


def annotate_photos(photos: Path, out: Path) -> Path:
    from idportrait.annotate.annotate import annotate
    from idportrait.faces import get_face_analyzer, get_face_parser

    models = {"vlm": "template", "face_analyzer": "dlib", "face_parser": "landmarks"}
    counts = annotate(
        [photos], out, get_face_analyzer("dlib"), get_face_parser("landmarks"), TemplateCaptions(), models
    )
    print(f"annotation: {counts}")
    return out


@torch.no_grad()
def evaluate(objective: ConsistentIDObjective, model: torch.nn.Module, batch: dict) -> dict[str, float]:
    """Attention share inside the regions, the uniform-map share, and eps-MSE on one fixed batch.

    Fixed noise and timesteps (``EVAL_TIMESTEPS``), no drop, posterior mean latents; the global RNG is left
    untouched so the training run is not perturbed.
    """
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        frozen = objective.frozen
        latents = frozen.vae.encode(batch["pixel_values"]).latent_dist.mean * frozen.vae.config.scaling_factor
        shares, uniform, mses = [], [], []
        for t_value in EVAL_TIMESTEPS:
            noise = torch.randn_like(latents)
            t = torch.full((latents.shape[0],), t_value, dtype=torch.long)
            noisy = frozen.noise_scheduler.add_noise(latents, noise, t)
            drop = torch.zeros(latents.shape[0], dtype=torch.bool)
            pred, maps, token_mask = objective.predict(model, batch, noisy, t, drop)
            mses.append(torch.nn.functional.mse_loss(pred.float(), noise).item())
            shares.append(attention_share_in_regions(maps, batch["region_masks"], token_mask).mean().item())
            uniform.append(
                np.mean([region_area_fraction(batch["region_masks"], token_mask, m.shape[2]) for m in maps.values()])
            )
    return {"share": float(np.mean(shares)), "uniform": float(np.mean(uniform)), "mse": float(np.mean(mses))}


def run(args: argparse.Namespace, base: Path, data: Path, facial_weight: float) -> dict:
    """Train once with ``facial_weight``; returns {step: evaluate(...)} and the training log."""
    options = {"facial_weight": facial_weight, "mask_loss_prob": 0.5, "adapter_size": "small", "pairing": "token"}
    return train_with_evals(args, base, data, args.out / f"w{facial_weight:g}", options)


def add_run_options(parser: argparse.ArgumentParser, lr: float) -> None:
    """The options `train_with_evals` and the photos read: steps, evaluation interval, photos, batch size,
    resolution (px), learning rate (default ``lr``) and LoRA rank."""
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--rank", type=int, default=8)


def train_with_evals(args: argparse.Namespace, base: Path, data: Path, out: Path, method_options: dict) -> dict:
    """One tiny ConsistentID run of the real loop into ``out``, evaluated (`evaluate`) at step 1 and every
    ``args.eval_every`` steps on one fixed batch of up to 8 training photos; returns the curve, the training log
    and the seconds it took."""
    curve: dict[int, dict[str, float]] = {}
    state: dict = {}

    def on_step(step: int, model: torch.nn.Module, objective: ConsistentIDObjective) -> None:
        if "batch" not in state:
            items = [objective.dataset[i] for i in range(min(len(objective.dataset), 8))]
            state["batch"] = objective.collate(items)
        if step == 1 or step % args.eval_every == 0:
            curve[step] = evaluate(objective, model, state["batch"])

    config = TrainConfig(
        data=[data],
        output_dir=out,
        base_model=str(base),
        image_encoder=str(base / "image_encoder"),
        resolution=args.resolution,
        train_batch_size=args.batch_size,
        learning_rate=args.lr,
        max_train_steps=args.steps,
        checkpointing_steps=args.steps,
        checkpoints_total_limit=1,
        resume=False,
        seed=0,
        lora_rank=args.rank,
        method_options=method_options,
    )
    start = time.perf_counter()
    train(config, ConsistentIDObjective, on_step=on_step)
    return {"curve": curve, "log": read_log(config.output_dir), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser, lr=1e-3)
    parser.add_argument("--facial-weights", default="0,0.01,1", help="comma-separated; 0 = no localization loss")
    parser.add_argument("--out", type=Path, default=Path("outputs/fgid_bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    weights = [float(w) for w in args.facial_weights.split(",")]

    from idportrait.tiny import save_tiny_sd15

    args.out.mkdir(parents=True, exist_ok=True)
    base = save_tiny_sd15(args.out / "tiny_base")
    data = annotate_photos(make_photos(args.out / "photos", args.photos), args.out / "annotated")
    results = {w: run(args, base, data, w) for w in weights}

    console = Console()
    first = results[weights[0]]["curve"]
    uniform = next(iter(first.values()))["uniform"]
    table = Table(
        title=f"fixed eval batch: attention share inside the token's region / eps-MSE (uniform share {uniform:.4f})"
    )
    table.add_column("step", justify="right")
    for w in weights:
        table.add_column(f"share w={w:g}", justify="right")
    for w in weights:
        table.add_column(f"MSE w={w:g}", justify="right")
    for step in sorted(first):
        shares = [f"{results[w]['curve'][step]['share']:.4f}" for w in weights]
        mses = [f"{results[w]['curve'][step]['mse']:.4f}" for w in weights]
        table.add_row(str(step), *shares, *mses)
    console.print(table)
    for w in weights:
        log = results[w]["log"]
        console.print(
            f"w={w:g}: training MSE mean of steps 1-10 {np.mean([e['mse'] for e in log[:10]]):.4f}, "
            f"last 10 {np.mean([e['mse'] for e in log[-10:]]):.4f}; {results[w]['seconds']:.0f} s"
        )

    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "uniform_share": uniform,
        "curves": {f"{w:g}": results[w]["curve"] for w in weights},
    }
    (args.out / "localization_curves.json").write_text(json.dumps(summary, indent=2))
    plot = save_plot(args.out / "localization_curves.png", results, uniform)
    console.print(f"curves written to {plot} and {args.out / 'localization_curves.json'}")


def save_plot(path: Path, results: dict[float, dict], uniform: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for w, res in results.items():
        steps = sorted(res["curve"])
        label = "no localization loss" if w == 0 else f"localization weight {w:g}"
        ax1.plot(steps, [res["curve"][s]["share"] for s in steps], marker="o", label=label)
        ax2.plot(steps, [res["curve"][s]["mse"] for s in steps], marker="o", label=label)
    ax1.axhline(uniform, color="grey", linestyle="--", label="uniform attention")
    ax1.set_xlabel("step")
    ax1.set_ylabel("facial-token attention share inside its region")
    ax1.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("eps-MSE on the fixed eval batch")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


if __name__ == "__main__":
    main()
