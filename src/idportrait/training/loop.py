"""The accelerate training loop shared by every method.

    objective = build_objective(config, device, weight_dtype)     # frozen models + trainable module + dataset
    model, optimizer, loader = accelerator.prepare(...)
    resume from the latest checkpoint (model, optimizer, RNG states, step counter)
    for each micro-batch (skipping those already seen in the resumed epoch):
        with accelerator.accumulate(model): loss = objective.loss(model, batch); backward; step
        every checkpointing_steps optimizer steps: save a checkpoint (oldest beyond checkpoints_total_limit deleted)
    export the adapter (safetensors that `idportrait generate` loads)

Checkpoints live in ``<output_dir>/checkpoints/checkpoint_<n>`` and hold only data (`idportrait.training.checkpoint`:
safetensors, JSON, weights-only optimizer state); resuming loads the newest complete one, and only when the run's
settings (`resume_settings`) are the ones it was trained with.
``train_log.jsonl`` gets one line per optimizer step (step, epoch, loss terms averaged over processes, the main
process's sample keys); on resume, lines past the checkpoint are dropped so the log never holds a step twice.
Multi-GPU: ``accelerate launch -m idportrait.cli train ...``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from idportrait.errors import UserError, disk_full_error, find_disk_full
from idportrait.training import checkpoint as ckpt
from idportrait.training.data import EpochSampler


@dataclass
class TrainConfig:
    """Options shared by every method (the CLI maps its flags onto these)."""

    data: list[Path]
    output_dir: Path
    base_model: str
    image_encoder: str | None = None
    resolution: int = 512
    train_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    max_train_steps: int = 1000
    mixed_precision: str = "no"
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 3
    resume: bool = True
    seed: int = 42
    lora_rank: int = 128
    dataloader_num_workers: int = 0
    method_options: dict[str, Any] = field(default_factory=dict)


class Objective(Protocol):
    """What a method provides to the loop."""

    model: nn.Module
    dataset: torch.utils.data.Dataset

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]: ...

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]: ...

    def export(self, model: nn.Module, path: Path) -> Path: ...


@dataclass
class Progress:
    """Counters saved with every checkpoint."""

    global_step: int = 0
    batches_seen: int = 0


RESUME_INDEPENDENT = ("output_dir", "max_train_steps", "checkpointing_steps", "checkpoints_total_limit", "resume",
                      "dataloader_num_workers")  # fmt: skip
"""Options a resumed run may change; every other `TrainConfig` field must match the checkpoint's."""

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def train(config: TrainConfig, build_objective: Callable[..., Objective], on_step: Callable | None = None) -> Path:
    """Run (or resume) training and export the adapter; returns the exported file.

    ``on_step(step, model, objective)``, when given, is called on the main process after each optimizer step.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from rich.progress import Progress as Bar

    check_config(config)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    AcceleratorState._reset_state()  # a previous run in this process may have used another mixed precision
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # a batch whose texts were all dropped leaves the FacialEncoder unused
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    settings = resume_settings(config, build_objective, accelerator.num_processes)
    checkpoints = output_dir / "checkpoints"
    latest = ckpt.latest_checkpoint(checkpoints) if config.resume else None
    if latest is not None:  # before any model loads
        ckpt.check_settings(latest, ckpt.read_state(latest).get("settings", {}), settings)
    set_seed(config.seed)
    objective = build_objective(config, accelerator.device, WEIGHT_DTYPES[config.mixed_precision])

    sampler = EpochSampler(len(objective.dataset), config.seed)
    loader = torch.utils.data.DataLoader(
        objective.dataset,
        batch_size=config.train_batch_size,
        sampler=sampler,
        collate_fn=objective.collate,
        num_workers=config.dataloader_num_workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.seed),  # worker seeds: keeps the global RNG untouched
    )
    if len(loader) == 0:
        raise UserError(f"{len(objective.dataset)} samples are fewer than one batch of {config.train_batch_size}")
    params = [p for p in objective.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer, loader = accelerator.prepare(objective.model, optimizer, loader)
    progress = Progress()

    log_path = output_dir / "train_log.jsonl"
    if latest is not None:
        _resume(accelerator, latest, model, optimizer, progress)
        accelerator.print(f"resumed from {latest} at step {progress.global_step}")
    if accelerator.is_main_process:
        _truncate_log(log_path, progress.global_step)

    batches_per_epoch = len(loader)
    step_keys: list[str] = []
    with Bar(disable=not accelerator.is_local_main_process) as bar:
        task = bar.add_task("training", total=config.max_train_steps, completed=progress.global_step)
        while progress.global_step < config.max_train_steps:
            epoch, skip = divmod(progress.batches_seen, batches_per_epoch)
            sampler.epoch = epoch
            epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
            for batch in epoch_loader:
                with accelerator.accumulate(model):
                    loss, logs = objective.loss(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(params, config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                progress.batches_seen += 1
                step_keys.extend(batch["keys"])
                if not accelerator.sync_gradients:
                    continue
                progress.global_step += 1
                logs = {
                    k: accelerator.gather(torch.tensor(v, device=accelerator.device)).mean().item()
                    for k, v in logs.items()
                }
                if accelerator.is_main_process:
                    _append_log(log_path, {"step": progress.global_step, "epoch": epoch, **logs, "keys": step_keys})
                    if on_step is not None:
                        on_step(progress.global_step, accelerator.unwrap_model(model), objective)
                step_keys = []
                bar.update(task, completed=progress.global_step, description=f"training loss {logs['loss']:.4f}")
                if progress.global_step % config.checkpointing_steps == 0:
                    _save(accelerator, checkpoints, config, model, optimizer, progress, settings)
                if progress.global_step >= config.max_train_steps:
                    break

    accelerator.wait_for_everyone()
    out = output_dir / "adapter.safetensors"
    if accelerator.is_main_process:
        objective.export(accelerator.unwrap_model(model), out)
        accelerator.print(f"adapter written to {out}; checkpoints in {output_dir / 'checkpoints'}; log {log_path}")
    accelerator.end_training()
    return out


def check_config(config: TrainConfig) -> None:
    """`UserError` for options no model can fix: an unknown mixed precision, an output folder that is a file."""
    if config.mixed_precision not in WEIGHT_DTYPES:
        raise UserError(f"--mixed-precision {config.mixed_precision}: use one of {', '.join(WEIGHT_DTYPES)}")
    if Path(config.output_dir).exists() and not Path(config.output_dir).is_dir():
        raise UserError("--output-dir must be a folder, and this is a file", config.output_dir)
    for path in config.data:
        if not Path(path).exists():
            raise UserError("--data not found", path)


def resume_settings(config: TrainConfig, build_objective: Callable[..., Objective], processes: int) -> dict[str, Any]:
    """What a checkpoint is tied to, as JSON values: the method, the process count, most `TrainConfig` fields."""
    fields = {k: v for k, v in vars(config).items() if k not in RESUME_INDEPENDENT}
    fields["data"] = [str(Path(p).resolve()) for p in config.data]
    fields |= {"method": build_objective.__name__, "num_processes": processes}
    return json.loads(json.dumps(fields, default=str))


def _save(accelerator: Any, checkpoints: Path, config: TrainConfig, model: nn.Module, optimizer: Any,
          progress: Progress, settings: dict[str, Any]) -> None:  # fmt: skip
    """Every process writes its RNG state, the main process the rest; ``state.json`` last, once all are done."""
    from idportrait.imageio import write_json

    if accelerator.is_main_process:
        ckpt.new_checkpoint_folder(checkpoints, config.checkpoints_total_limit)
    accelerator.wait_for_everyone()
    folder = ckpt.checkpoint_folders(checkpoints)[-1]
    try:
        write_json(ckpt.rng_file(folder, accelerator.process_index), ckpt.rng_state())
        if accelerator.is_main_process:
            ckpt.save_weights(folder, accelerator.unwrap_model(model), optimizer, accelerator.scaler)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {"global_step": progress.global_step, "batches_seen": progress.batches_seen,
                     "micro_step": accelerator.step, "settings": settings}  # fmt: skip
            write_json(folder / ckpt.STATE, state)
    except Exception as err:  # a full disk: no half checkpoint is left behind
        if find_disk_full(err) is None:
            raise
        full = disk_full_error(err, folder)
        shutil.rmtree(folder, ignore_errors=True)
        raise full from None


def _resume(accelerator: Any, folder: Path, model: nn.Module, optimizer: Any, progress: Progress) -> None:
    """Load the weights, optimizer, RNG states and counters that ``_save`` wrote."""
    state = ckpt.read_state(folder)
    ckpt.load_weights(folder, accelerator.unwrap_model(model), optimizer, accelerator.scaler, accelerator.device)
    ckpt.load_rng_state(folder, accelerator.process_index)
    progress.global_step, progress.batches_seen = int(state["global_step"]), int(state["batches_seen"])
    accelerator.step = int(state["micro_step"])


def _append_log(path: Path, entry: dict[str, Any]) -> None:
    from idportrait.imageio import append_lines

    append_lines(path, json.dumps(entry) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the log lines of steps <= ``step`` (the ones the resumed state includes)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry["step"] <= step:
            kept.append(line)
    from idportrait.imageio import atomic_open

    with atomic_open(path, "w") as f:
        f.write("".join(k + "\n" for k in kept))


def read_log(output_dir: Path) -> list[dict[str, Any]]:
    """The per-step entries of ``train_log.jsonl``."""
    path = Path(output_dir) / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
