"""``idportrait train instantid``: IdentityNet + face adapter on curated FaceID shards (SDXL base)."""

from __future__ import annotations

from pathlib import Path

import typer

from idportrait import registry


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
