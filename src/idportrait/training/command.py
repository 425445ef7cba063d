"""`idportrait train consistentid|ipadapter-faceid|instantid`: train an adapter with accelerate.

Single process: ``idportrait train ...``. Several GPUs: ``accelerate launch -m idportrait.cli train ...``.
Re-running the same command resumes from the latest checkpoint in ``--output-dir``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from idportrait import registry

app = typer.Typer(
    help="Train an adapter (ConsistentID, IP-Adapter-FaceID, InstantID) on annotated/curated data.",
    no_args_is_help=True,
)

DATA = typer.Option(..., "--data", help="Input data (repeatable): an annotated FGID folder or FaceID .tar shards.")
OUTPUT = typer.Option(..., "--output-dir", help="Checkpoints, train_log.jsonl and adapter.safetensors go here.")
BASE = typer.Option(registry.SD15_REFERENCE_BASE, "--base", help="SD1.5-family base (hub id or diffusers folder).")
RESOLUTION = typer.Option(512, help="Training image size in pixels.")
BATCH = typer.Option(2, "--batch-size", help="Per-device batch size.")
ACCUM = typer.Option(1, "--grad-accum", help="Gradient accumulation steps.")
LR = typer.Option(1e-4, "--lr", help="AdamW learning rate.")
STEPS = typer.Option(1000, "--max-steps", help="Optimizer steps to train for.")
PRECISION = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16.")
CKPT_STEPS = typer.Option(500, "--checkpointing-steps", help="Save the full training state every N steps.")
CKPT_LIMIT = typer.Option(3, "--checkpoints-total-limit", help="Keep at most this many checkpoints.")
RANK = typer.Option(128, "--lora-rank", help="LoRA rank of every attention.")
SEED = typer.Option(42, help="Seed of the data order, noise and drops.")
RESUME = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint in --output-dir.")


def _config(**kwargs):
    from idportrait.training.loop import TrainConfig

    return TrainConfig(**kwargs)


@app.command("consistentid")
def consistentid(
    data: list[Path] = DATA,
    output_dir: Path = OUTPUT,
    base: str = BASE,
    image_encoder: str = typer.Option(registry.CLIP_VIT_H, help="CLIP vision tower (hub id or folder)."),
    resolution: int = RESOLUTION,
    batch_size: int = BATCH,
    grad_accum: int = ACCUM,
    lr: float = LR,
    max_steps: int = STEPS,
    mixed_precision: str = PRECISION,
    checkpointing_steps: int = CKPT_STEPS,
    checkpoints_total_limit: int = CKPT_LIMIT,
    lora_rank: int = RANK,
    seed: int = SEED,
    resume: bool = RESUME,
    facial_weight: float = typer.Option(0.01, help="Weight of the facial attention localization loss."),
    mask_loss_prob: float = typer.Option(0.5, help="Probability of restricting the MSE to the person mask."),
    adapter_size: str = typer.Option("release", help="FacialEncoder/ID projector size: release or small (tiny bases)"),
    region_pairing: str = typer.Option(
        "release", help="release (k-th region -> k-th class token) or token (own region per word); generate follows it"
    ),
) -> None:
    """ConsistentID: eps-MSE + facial_weight x localization loss on the facial tokens' cross-attention."""
    from idportrait.training.consistentid import ConsistentIDObjective
    from idportrait.training.loop import train

    config = _config(
        data=data, output_dir=output_dir, base_model=base, image_encoder=image_encoder, resolution=resolution,
        train_batch_size=batch_size, gradient_accumulation_steps=grad_accum, learning_rate=lr,
        max_train_steps=max_steps, mixed_precision=mixed_precision, checkpointing_steps=checkpointing_steps,
        checkpoints_total_limit=checkpoints_total_limit, lora_rank=lora_rank, seed=seed, resume=resume,
        method_options={"facial_weight": facial_weight, "mask_loss_prob": mask_loss_prob, "adapter_size": adapter_size,
                        "pairing": region_pairing},
    )  # fmt: skip
    train(config, ConsistentIDObjective)


@app.command("ipadapter-faceid")
def ipadapter_faceid(
    data: list[Path] = DATA,
    output_dir: Path = OUTPUT,
    base: str = BASE,
    plus: bool = typer.Option(False, "--plus", help="Train IP-Adapter-FaceID-Plus (adds CLIP of the aligned face)."),
    image_encoder: str = typer.Option(registry.CLIP_VIT_H, help="CLIP vision tower for --plus (hub id or folder)."),
    resolution: int = RESOLUTION,
    batch_size: int = BATCH,
    grad_accum: int = ACCUM,
    lr: float = LR,
    max_steps: int = STEPS,
    mixed_precision: str = PRECISION,
    checkpointing_steps: int = CKPT_STEPS,
    checkpoints_total_limit: int = CKPT_LIMIT,
    lora_rank: int = RANK,
    seed: int = SEED,
    resume: bool = RESUME,
) -> None:
    """IP-Adapter-FaceID(-Plus) on curated FaceID shards; exports the released layout."""
    from idportrait.training.ipadapter_faceid import FaceIDObjective
    from idportrait.training.loop import train

    config = _config(
        data=data, output_dir=output_dir, base_model=base, image_encoder=image_encoder, resolution=resolution,
        train_batch_size=batch_size, gradient_accumulation_steps=grad_accum, learning_rate=lr,
        max_train_steps=max_steps, mixed_precision=mixed_precision, checkpointing_steps=checkpointing_steps,
        checkpoints_total_limit=checkpoints_total_limit, lora_rank=lora_rank, seed=seed, resume=resume,
        method_options={"variant": "faceid-plus" if plus else "faceid"},
    )  # fmt: skip
    train(config, FaceIDObjective)


@app.command("instantid")
def instantid(
    data: list[Path] = typer.Option(..., "--data", help="Curated FaceID .tar shards (faces with kps + embedding)."),
    output_dir: Path = typer.Option(..., "--output-dir", help="Checkpoints, train_log.jsonl, adapter + IdentityNet."),
    base: str = typer.Option(registry.SDXL_BASE, "--base", help="SDXL base (hub id or diffusers folder)."),
    resolution: int = typer.Option(1024, help="Training image size in pixels."),
    batch_size: int = typer.Option(1, "--batch-size", help="Per-device batch size."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    lr: float = typer.Option(1e-5, "--lr", help="AdamW learning rate."),
    max_steps: int = typer.Option(1000, "--max-steps", help="Optimizer steps to train for."),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16."),
    checkpointing_steps: int = typer.Option(500, "--checkpointing-steps", help="Save the training state every N."),
    checkpoints_total_limit: int = typer.Option(3, "--checkpoints-total-limit", help="Keep at most this many."),
    resampler_dim: int = typer.Option(1280, help="Resampler width (release 1280)."),
    resampler_heads: int = typer.Option(20, help="Resampler heads of 64 (release 20)."),
    seed: int = typer.Option(42, help="Seed of the data order, noise and drops."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint."),
) -> None:
    """InstantID on curated FaceID shards; exports the released adapter layout and an IdentityNet folder."""
    from idportrait.training.instantid import InstantIDObjective
    from idportrait.training.loop import TrainConfig, train

    config = TrainConfig(
        data=data, output_dir=output_dir, base_model=base, resolution=resolution, train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=lr, max_train_steps=max_steps,
        mixed_precision=mixed_precision, checkpointing_steps=checkpointing_steps,
        checkpoints_total_limit=checkpoints_total_limit, seed=seed, resume=resume,
        method_options={"dim": resampler_dim, "heads": resampler_heads},
    )  # fmt: skip
    train(config, InstantIDObjective)
