"""`idportrait train consistentid|ipadapter-faceid|instantid`: train an adapter with accelerate.

Single process: ``idportrait train ...``. Several GPUs: ``accelerate launch -m idportrait.cli train ...``.
Re-running the same command resumes from the latest checkpoint in ``--output-dir``.

The options every method shares are declared once below (`Data`, `OutputDir`, ...) and mapped onto
`TrainConfig` by `train_config`; each command adds its own method options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from idportrait import registry

app = typer.Typer(
    help="Train an adapter (ConsistentID, IP-Adapter-FaceID, InstantID) on annotated/curated data.",
    no_args_is_help=True,
)

Data = Annotated[
    list[Path],
    typer.Option(
        "--data",
        help="Input data (repeatable): an annotated FGID folder, FaceID .tar shards or folders of them, or the "
        "FaceID-6M release's JSON-lines files.",
    ),
]
OutputDir = Annotated[Path, typer.Option("--output-dir", help="Checkpoints, train_log.jsonl and the adapter go here.")]
Base = Annotated[str, typer.Option("--base", help="Base model (hub id or diffusers folder).")]
ImageEncoder = Annotated[str, typer.Option(help="CLIP vision tower (hub id or folder).")]
Resolution = Annotated[int, typer.Option(min=8, help="Training image size in pixels.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Per-device batch size.")]
GradAccum = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")]
LearningRate = Annotated[float, typer.Option("--lr", help="AdamW learning rate.")]
MaxSteps = Annotated[int, typer.Option("--max-steps", min=1, help="Optimizer steps to train for.")]
MixedPrecision = Annotated[str, typer.Option("--mixed-precision", help="no | fp16 | bf16.")]
CheckpointingSteps = Annotated[
    int, typer.Option("--checkpointing-steps", min=1, help="Save the full training state every N steps.")
]
CheckpointsTotalLimit = Annotated[
    int, typer.Option("--checkpoints-total-limit", min=1, help="Keep at most this many checkpoints.")
]
LoraRank = Annotated[int, typer.Option("--lora-rank", min=1, help="LoRA rank of every attention.")]
Seed = Annotated[int, typer.Option(help="Seed of the data order, noise and drops.")]
Resume = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the latest checkpoint.")]
NumWorkers = Annotated[
    int | None,
    typer.Option("--num-workers", min=0, help="DataLoader workers per process (default: the cores shared, up to 8)."),
]
AllowChangedData = Annotated[
    bool,
    typer.Option(
        "--allow-changed-data", help="Resume on data other than the checkpoint's (from the same sample position)."
    ),
]
DataFormat = Annotated[
    str,
    typer.Option(
        "--data-format",
        help="faceid-shards (curated .tar), faceid6m-jsonl (the release's JSON lines) or auto (by file name).",
    ),
]
DataRoot = Annotated[
    Path | None,
    typer.Option(
        "--data-root", help="faceid6m-jsonl: the folder its image and .npy paths are under (default: beside it)."
    ),
]


def train_config(
    data: list[Path],
    output_dir: Path,
    base: str,
    resolution: int,
    batch_size: int,
    grad_accum: int,
    lr: float,
    max_steps: int,
    mixed_precision: str,
    checkpointing_steps: int,
    checkpoints_total_limit: int,
    seed: int,
    resume: bool,
    num_workers: int | None,
    allow_changed_data: bool,
    **method: Any,
) -> Any:
    """`TrainConfig` from the shared options; ``method``: ``image_encoder``, ``lora_rank``, ``data_format``,
    ``data_root``, ``method_options``. `train` checks every value before anything loads."""
    from idportrait.training.loop import TrainConfig

    return TrainConfig(
        data=data, output_dir=output_dir, base_model=base, resolution=resolution, train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=lr, max_train_steps=max_steps,
        mixed_precision=mixed_precision, checkpointing_steps=checkpointing_steps,
        checkpoints_total_limit=checkpoints_total_limit, seed=seed, resume=resume, dataloader_num_workers=num_workers,
        allow_changed_data=allow_changed_data, **method,
    )  # fmt: skip


@app.command("consistentid")
def consistentid(
    data: Data,
    output_dir: OutputDir,
    base: Base = registry.SD15_REFERENCE_BASE,
    image_encoder: ImageEncoder = registry.CLIP_VIT_H,
    resolution: Resolution = 512,
    batch_size: BatchSize = 2,
    grad_accum: GradAccum = 1,
    lr: LearningRate = 1e-4,
    max_steps: MaxSteps = 1000,
    mixed_precision: MixedPrecision = "no",
    checkpointing_steps: CheckpointingSteps = 500,
    checkpoints_total_limit: CheckpointsTotalLimit = 3,
    lora_rank: LoraRank = 128,
    seed: Seed = 42,
    resume: Resume = True,
    num_workers: NumWorkers = None,
    allow_changed_data: AllowChangedData = False,
    facial_weight: Annotated[float, typer.Option(help="Weight of the facial attention localization loss.")] = 0.01,
    mask_loss_prob: Annotated[float, typer.Option(help="Probability of restricting the MSE to the person mask.")] = 0.5,
    adapter_size: Annotated[
        str, typer.Option(help="FacialEncoder/ID projector size: release or small (tiny bases)")
    ] = "release",
    region_pairing: Annotated[
        str,
        typer.Option(
            help="release (k-th region -> k-th class token) or token (own region per word); generate follows it"
        ),
    ] = "release",
) -> None:
    """ConsistentID: eps-MSE + facial_weight x localization loss on the facial tokens' cross-attention."""

    config = train_config(
        data, output_dir, base, resolution, batch_size, grad_accum, lr, max_steps, mixed_precision,
        checkpointing_steps, checkpoints_total_limit, seed, resume, num_workers, allow_changed_data,
        image_encoder=image_encoder, lora_rank=lora_rank,
        method_options={"facial_weight": facial_weight, "mask_loss_prob": mask_loss_prob, "adapter_size": adapter_size,
                        "pairing": region_pairing},
    )  # fmt: skip
    from idportrait.training.consistentid import ConsistentIDObjective
    from idportrait.training.loop import train

    train(config, ConsistentIDObjective)


@app.command("ipadapter-faceid")
def ipadapter_faceid(
    data: Data,
    output_dir: OutputDir,
    base: Base = registry.SD15_REFERENCE_BASE,
    plus: Annotated[
        bool, typer.Option("--plus", help="Train IP-Adapter-FaceID-Plus (adds CLIP of the aligned face).")
    ] = False,
    image_encoder: ImageEncoder = registry.CLIP_VIT_H,
    resolution: Resolution = 512,
    batch_size: BatchSize = 2,
    grad_accum: GradAccum = 1,
    lr: LearningRate = 1e-4,
    max_steps: MaxSteps = 1000,
    mixed_precision: MixedPrecision = "no",
    checkpointing_steps: CheckpointingSteps = 500,
    checkpoints_total_limit: CheckpointsTotalLimit = 3,
    lora_rank: LoraRank = 128,
    seed: Seed = 42,
    resume: Resume = True,
    num_workers: NumWorkers = None,
    allow_changed_data: AllowChangedData = False,
    data_format: DataFormat = "auto",
    data_root: DataRoot = None,
) -> None:
    """IP-Adapter-FaceID(-Plus) on curated FaceID shards or the FaceID-6M release; exports the released layout."""

    config = train_config(
        data, output_dir, base, resolution, batch_size, grad_accum, lr, max_steps, mixed_precision,
        checkpointing_steps, checkpoints_total_limit, seed, resume, num_workers, allow_changed_data,
        image_encoder=image_encoder, lora_rank=lora_rank, data_format=data_format, data_root=data_root,
        method_options={"variant": "faceid-plus" if plus else "faceid"},
    )  # fmt: skip
    from idportrait.training.ipadapter_faceid import FaceIDObjective
    from idportrait.training.loop import train

    train(config, FaceIDObjective)


@app.command("instantid")
def instantid(
    data: Data,
    output_dir: OutputDir,
    base: Base = registry.SDXL_BASE,
    resolution: Resolution = 1024,
    batch_size: BatchSize = 1,
    grad_accum: GradAccum = 1,
    lr: LearningRate = 1e-5,
    max_steps: MaxSteps = 1000,
    mixed_precision: MixedPrecision = "no",
    checkpointing_steps: CheckpointingSteps = 500,
    checkpoints_total_limit: CheckpointsTotalLimit = 3,
    seed: Seed = 42,
    resume: Resume = True,
    num_workers: NumWorkers = None,
    allow_changed_data: AllowChangedData = False,
    data_format: DataFormat = "auto",
    data_root: DataRoot = None,
    resampler_dim: Annotated[int, typer.Option(help="Resampler width (release 1280).")] = 1280,
    resampler_heads: Annotated[int, typer.Option(help="Resampler heads of 64 (release 20).")] = 20,
) -> None:
    """InstantID on curated FaceID shards or the FaceID-6M release; exports the released adapter layout and an
    IdentityNet folder."""

    config = train_config(
        data, output_dir, base, resolution, batch_size, grad_accum, lr, max_steps, mixed_precision,
        checkpointing_steps, checkpoints_total_limit, seed, resume, num_workers, allow_changed_data,
        data_format=data_format, data_root=data_root, method_options={"dim": resampler_dim, "heads": resampler_heads},
    )  # fmt: skip
    from idportrait.training.instantid import InstantIDObjective
    from idportrait.training.loop import train

    train(config, InstantIDObjective)
