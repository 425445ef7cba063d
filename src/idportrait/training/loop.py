"""The accelerate training loop shared by every method.

    check every option                                             # before anything loads
    data = open_training_data(...)                                 # the memory-mapped sample index (main first)
    refuse a checkpoint of other settings or other data            # before any model loads
    objective = build_objective(config, data, device, weight_dtype)  # frozen models + trainable module + dataset
    model, optimizer, loader = accelerator.prepare(...)            # loader: EpochSampler, workers that decode
    resume from the latest checkpoint (model, optimizer, RNG states, global sample position)
    for each micro-batch (skipping those already seen in the resumed epoch):
        with accelerator.accumulate(model): loss = objective.loss(model, batch); backward; step
        every checkpointing_steps optimizer steps: save a checkpoint (oldest beyond checkpoints_total_limit deleted)
    export the adapter (safetensors that `idportrait generate` loads)

Checkpoints live in ``<output_dir>/checkpoints/checkpoint_<n>`` and hold only data (`idportrait.training.checkpoint`:
safetensors, JSON, weights-only optimizer state); resuming loads the newest complete one, and only when the run's
settings (`resume_settings`) are the ones it was trained with.
The data order is one global permutation per epoch; with P processes of batch B a micro-step takes the next
P x B samples (process r the r-th batch of B). A checkpoint keeps the global sample position, so a run saved
with P processes resumes with any P' of the same global batch (P' x B' = P x B): elastic, nothing skipped or
repeated. It also keeps the data's fingerprint (sources, sizes, sample count); other data is refused unless
``allow_changed_data``.
``train_log.jsonl`` gets one line per optimizer step (step, epoch, loss terms averaged over processes, the sample
keys of every process in process order); on resume, lines past the checkpoint are dropped so the log never holds
a step twice. Multi-GPU: ``accelerate launch -m idportrait.cli train ...``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from idportrait.errors import UserError, disk_full_error, find_disk_full
from idportrait.processes import close_process_group
from idportrait.training import checkpoint as ckpt
from idportrait.training.data import (
    EpochSampler,
    check_embedding_size,
    data_fingerprint,
    default_num_workers,
    make_loader,
    open_training_data,
    resolve_data_format,
    worker_error,
)


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
    dataloader_num_workers: int | None = None
    """DataLoader workers per process; None: `default_num_workers` (the machine's cores shared by its processes)."""
    data_format: str = "auto"
    data_root: Path | None = None
    allow_changed_data: bool = False
    method_options: dict[str, Any] = field(default_factory=dict)


class Objective(Protocol):
    """What a method provides to the loop: its data and option facts (class attributes), its model and loss."""

    name: ClassVar[str]
    data_kind: ClassVar[str]
    """"faceid" (FaceID shards or the release's JSON lines) or "fgid" (annotated folders)."""
    embedding_size: ClassVar[int | None]
    """The face embedding size it trains on (None: any)."""
    model: nn.Module
    dataset: torch.utils.data.Dataset

    @staticmethod
    def check_options(options: dict[str, Any]) -> None: ...

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]: ...

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]: ...

    def export(self, model: nn.Module, path: Path) -> Path: ...


@dataclass
class Progress:
    """Counters saved with every checkpoint; ``samples_seen`` counts the samples of every process."""

    global_step: int = 0
    samples_seen: int = 0


RESUME_INDEPENDENT = ("output_dir", "max_train_steps", "checkpointing_steps", "checkpoints_total_limit", "resume",
                      "dataloader_num_workers", "train_batch_size", "data", "data_format", "data_root",
                      "allow_changed_data")  # fmt: skip
"""Options a resumed run may change; every other `TrainConfig` field must match the checkpoint's. The data is
checked by its fingerprint, the batch size as the global batch (per-process batch x processes)."""

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def train(config: TrainConfig, build_objective: Callable[..., Objective], on_step: Callable | None = None) -> Path:
    """Run (or resume) training and export the adapter; returns the exported file.

    ``on_step(step, model, objective)``, when given, is called on the main process after each optimizer step.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed
    from rich.progress import Progress as Bar

    check_config(config, build_objective)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    AcceleratorState._reset_state()  # a previous run in this process may have used another mixed precision
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # a batch whose texts were all dropped leaves the FacialEncoder unused
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    with accelerator.main_process_first():  # the main process builds the index, the others find it built
        data = open_training_data(config, build_objective.data_kind, progress=accelerator.is_main_process)
    if build_objective.embedding_size is not None:
        check_embedding_size(data, build_objective.embedding_size, build_objective.name)
    global_batch = config.train_batch_size * accelerator.num_processes
    settings = resume_settings(config, build_objective, global_batch)
    fingerprint = data_fingerprint(data, config)
    checkpoints = output_dir / "checkpoints"
    latest = ckpt.latest_checkpoint(checkpoints) if config.resume else None
    if latest is not None:  # before any model loads
        state = ckpt.read_state(latest)
        ckpt.check_settings(latest, state.get("settings", {}), settings)
        changes = ckpt.check_data(latest, state.get("data", {}), fingerprint, config.allow_changed_data)
        if changes:
            accelerator.print(f"resuming on changed data (--allow-changed-data): {'; '.join(changes)}")
    set_seed(config.seed, device_specific=True)
    objective = build_objective(config, data, accelerator.device, WEIGHT_DTYPES[config.mixed_precision])

    sampler = EpochSampler(len(objective.dataset), config.seed)
    workers = config.dataloader_num_workers
    if workers is None:
        workers = default_num_workers(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    loader = make_loader(objective.dataset, sampler, config.train_batch_size, objective.collate, workers,
                         accelerator.device.type == "cuda", config.seed)  # fmt: skip
    if len(objective.dataset) < global_batch:
        raise UserError(
            f"{len(objective.dataset)} samples are fewer than one batch of {config.train_batch_size}"
            + (f" x {accelerator.num_processes} processes" if accelerator.num_processes > 1 else "")
        )
    params = [p for p in objective.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer, loader = accelerator.prepare(objective.model, optimizer, loader)
    progress = Progress()

    log_path = output_dir / "train_log.jsonl"
    if latest is not None:
        _resume(accelerator, latest, model, optimizer, progress, config.seed)
        accelerator.print(f"resumed from {latest} at step {progress.global_step}")
    if accelerator.is_main_process:
        _truncate_log(log_path, progress.global_step)

    batches_per_epoch = len(loader)  # per process; a micro-step takes one batch of every process
    step_keys: list[str] = []
    with Bar(disable=not accelerator.is_local_main_process) as bar:
        task = bar.add_task("training", total=config.max_train_steps, completed=progress.global_step)
        while progress.global_step < config.max_train_steps:
            epoch, skip = divmod(progress.samples_seen // global_batch, batches_per_epoch)
            sampler.epoch = epoch
            epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
            try:
                for batch in epoch_loader:
                    with accelerator.accumulate(model):
                        loss, logs = objective.loss(model, batch)
                        accelerator.backward(loss)
                        if accelerator.sync_gradients:
                            accelerator.clip_grad_norm_(params, config.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad()
                    progress.samples_seen += global_batch
                    step_keys.extend(gather_object(batch["keys"]))
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
                        _save(accelerator, checkpoints, config, model, optimizer, progress, settings, fingerprint)
                    if progress.global_step >= config.max_train_steps:
                        break
            except UserError as err:  # a bad sample, found by a worker
                raise worker_error(err) from None

    accelerator.wait_for_everyone()
    out = output_dir / "adapter.safetensors"
    if accelerator.is_main_process:
        objective.export(accelerator.unwrap_model(model), out)
        accelerator.print(f"adapter written to {out}; checkpoints in {output_dir / 'checkpoints'}; log {log_path}")
    del model, optimizer, loader  # the DDP model holds the process group, which must die in close_process_group
    accelerator.free_memory()
    close_process_group()
    return out


def check_config(config: TrainConfig, build_objective: Any = None) -> None:
    """`UserError` for any option no model can fix, named as on the command line; the method's own options are
    checked by ``build_objective.check_options``. Runs before anything loads."""
    if config.mixed_precision not in WEIGHT_DTYPES:
        raise UserError(f"--mixed-precision {config.mixed_precision}: use one of {', '.join(WEIGHT_DTYPES)}")
    if Path(config.output_dir).exists() and not Path(config.output_dir).is_dir():
        raise UserError("--output-dir must be a folder, and this is a file", config.output_dir)
    for path in config.data:
        if not Path(path).exists():
            raise UserError("--data not found", path)
    resolve_data_format(list(config.data), config.data_format)
    if config.data_root is not None and not Path(config.data_root).is_dir():
        raise UserError("--data-root is not a folder", config.data_root)
    check_number("--lr", config.learning_rate, above=0)
    check_number("weight decay", config.weight_decay, minimum=0)
    check_number("max grad norm", config.max_grad_norm, above=0)
    if config.resolution <= 0 or config.resolution % 8:
        raise UserError(f"--resolution {config.resolution}: must be a positive multiple of 8 (the VAE's factor)")
    counts = {"--batch-size": config.train_batch_size, "--grad-accum": config.gradient_accumulation_steps,
              "--max-steps": config.max_train_steps, "--checkpointing-steps": config.checkpointing_steps,
              "--lora-rank": config.lora_rank}  # fmt: skip
    for option, value in counts.items():
        if value < 1:
            raise UserError(f"{option} {value}: must be at least 1")
    if config.dataloader_num_workers is not None and config.dataloader_num_workers < 0:
        raise UserError(f"--num-workers {config.dataloader_num_workers}: must be 0 or more")
    if build_objective is not None:
        build_objective.check_options(config.method_options)


def check_number(option: str, value: float, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None) -> None:  # fmt: skip
    """`UserError` unless ``value`` is a finite number >= ``minimum``, <= ``maximum`` and > ``above``."""
    bounds = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
              f"<= {maximum}" if maximum is not None else ""]  # fmt: skip
    ok = math.isfinite(value) and (minimum is None or value >= minimum) and (above is None or value > above)
    if not ok or (maximum is not None and value > maximum):
        wanted = " and ".join(b for b in bounds if b)
        raise UserError(f"{option} {value}: must be a finite number" + (f" {wanted}" if wanted else ""))


def resume_settings(
    config: TrainConfig, build_objective: Callable[..., Objective], global_batch: int
) -> dict[str, Any]:
    """What a checkpoint is tied to, as JSON values: the method, the global batch, most `TrainConfig` fields."""
    fields = {k: v for k, v in vars(config).items() if k not in RESUME_INDEPENDENT}
    fields |= {"method": build_objective.__name__, "global_batch_size": global_batch}
    return json.loads(json.dumps(fields, default=str))


def _save(accelerator: Any, checkpoints: Path, config: TrainConfig, model: nn.Module, optimizer: Any,
          progress: Progress, settings: dict[str, Any], fingerprint: dict[str, Any]) -> None:  # fmt: skip
    """Every process writes its RNG state, the main process the rest; ``state.json`` last, once all are done."""
    from idportrait.imageio import write_json

    if accelerator.is_main_process:
        ckpt.new_checkpoint_folder(checkpoints)
    accelerator.wait_for_everyone()
    folder = ckpt.checkpoint_folders(checkpoints)[-1]
    try:
        write_json(ckpt.rng_file(folder, accelerator.process_index), ckpt.rng_state())
        if accelerator.is_main_process:
            ckpt.save_weights(folder, accelerator.unwrap_model(model), optimizer, accelerator.scaler)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {"global_step": progress.global_step, "samples_seen": progress.samples_seen,
                     "micro_step": accelerator.step, "num_processes": accelerator.num_processes,
                     "settings": settings, "data": fingerprint}  # fmt: skip
            write_json(folder / ckpt.STATE, state)
            ckpt.prune_checkpoints(checkpoints, config.checkpoints_total_limit)
    except Exception as err:  # a full disk: no half checkpoint is left behind
        if find_disk_full(err) is None:
            raise
        full = disk_full_error(err, folder)
        shutil.rmtree(folder, ignore_errors=True)
        raise full from None


def _resume(accelerator: Any, folder: Path, model: nn.Module, optimizer: Any, progress: Progress, seed: int) -> None:
    """Load the weights, optimizer, RNG states and counters that ``_save`` wrote. A process the saved run did not
    have (a resume with more processes) starts a random stream of its own, from the seed, its rank and the step."""
    from accelerate.utils import set_seed

    state = ckpt.read_state(folder)
    ckpt.load_weights(folder, accelerator.unwrap_model(model), optimizer, accelerator.scaler, accelerator.device)
    progress.global_step, progress.samples_seen = int(state["global_step"]), int(state["samples_seen"])
    if accelerator.process_index < int(state["num_processes"]):
        ckpt.load_rng_state(folder, accelerator.process_index)
    else:
        set_seed(hash((seed, accelerator.process_index, progress.global_step)) % 2**32)
    accelerator.step = int(state["micro_step"])


def _append_log(path: Path, entry: dict[str, Any]) -> None:
    from idportrait.imageio import append_lines

    append_lines(path, json.dumps(entry) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the log lines of steps <= ``step`` (the ones the resumed state includes), one line at a time."""
    from idportrait.imageio import atomic_open

    if not path.exists():
        return
    with open(path) as src, atomic_open(path, "w") as dst:
        for line in src:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry["step"] <= step:
                dst.write(line.rstrip("\n") + "\n")


def read_log(output_dir: Path) -> list[dict[str, Any]]:
    """The per-step entries of ``train_log.jsonl``."""
    path = Path(output_dir) / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
