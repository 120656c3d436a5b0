"""The one training engine: `train()` runs any Objective through transformers.Trainer.

Trainer supplies what every stage needs and nobody should rewrite: devices (CUDA when present),
multi-process training under torchrun/accelerate, gradient accumulation, schedulers, safetensors
checkpoints, resume, tqdm progress and TensorBoard. This module adds the three things tailor
needs on top: a loss made of named, weighted terms (all logged), an optional frozen teacher, and
per-parameter-group learning rates.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn
from transformers import ProgressCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.trainer_utils import has_length

from ..config import ConfigError
from ..files import atomic_write_text
from ..integrity import folder_hashes, mismatches
from .guards import NonFiniteError, NonFiniteGuard, non_finite_message
from .losses import Objective, weighted_sum
from .optim import make_optimizer, multistep_scheduler
from .precision import autocast, resolve, resolve_logged
from .progress import StageProgress
from .selection import KeepBestOnValidation
from .settings import TrainSettings

log = logging.getLogger(__name__)
CHECKPOINT_MANIFEST = "tailor-manifest.json"  # written last into each checkpoint: file hashes + totals so far
_NO_DECAY = re.compile(r"(bias|norm|LayerNorm|layer_norm|ln_|bn|embeddings\.position|cls_token|mask_token)", re.I)


@dataclass
class TrainReport:
    steps: int
    train_loss: float  # mean over every step, across resumed segments
    seconds: float  # training time summed over every segment
    resumed_from: str | None
    precision: str = "fp32"
    precision_reason: str = ""
    selection: dict | None = None  # with eval_every: the validation history and the step kept
    segments: int = 1  # 1 + number of resumes
    skipped_steps: int = 0  # optimizer steps dropped for non-finite gradients (non_finite: skip)

    def as_dict(self) -> dict:
        return asdict(self)


class MetricsFile(TrainerCallback):
    """Append every log record to `metrics.jsonl` (one JSON object per line), main process only."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class _ObjectiveTrainer(Trainer):
    def __init__(
        self,
        *args,
        objective: Objective,
        teacher: nn.Module | None,
        lr_overrides: Mapping[str, float] | None,
        settings: TrainSettings,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.settings = settings
        # Objectives return per-batch means, so Trainer must divide by grad_accum itself (it skips
        # that when it believes the model takes `num_items_in_batch`, which would scale gradients).
        self.model_accepts_loss_kwargs = False
        self.objective = objective
        self.non_finite = settings.non_finite
        self.teacher = teacher
        # Trainer's bf16/fp16 autocast wraps model.forward only; objectives may call submodules
        # (encoder, head, teacher) directly, so the whole objective runs under the same autocast.
        self.precision = resolve("bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32", self.args.device)
        self.lr_overrides = [(re.compile(p), lr) for p, lr in (lr_overrides or {}).items()]
        self._term_sums: dict[str, float] = {}
        self._term_count = 0
        self.prior = {"loss_sum": 0.0, "seconds": 0.0, "segments": 0}  # totals of earlier segments (resume)
        self.segment_start = time.time()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with autocast(self.precision, self.args.device):
            terms = objective_terms(self.objective, model, inputs, self.teacher)
        loss = weighted_sum(terms, self.objective.weights)
        if self.non_finite == "stop" and not torch.isfinite(loss.detach()):
            raise NonFiniteError(non_finite_message("loss", self.state.global_step + 1, self.args.learning_rate))
        for name, value in terms.items():
            self._term_sums[name] = self._term_sums.get(name, 0.0) + float(value.detach())
        self._term_count += 1
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._term_count and "loss" in logs:
            logs.update({f"loss/{k}": v / self._term_count for k, v in self._term_sums.items()})
            self._term_sums, self._term_count = {}, 0
        super().log(logs, *args, **kwargs)

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer's checkpoint, then a manifest (sha256 of its files, loss and time so far) written
        last: a checkpoint without a matching manifest is incomplete or damaged and is not resumed from."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
            manifest = {
                "step": self.state.global_step,
                "files": folder_hashes(folder, (CHECKPOINT_MANIFEST,)),
                "loss_sum": self.prior["loss_sum"] + self._total_loss_scalar + float(self._tr_loss.item()),
                "seconds": self.prior["seconds"] + time.time() - self.segment_start,
                "segments": self.prior["segments"] + 1,
            }
            atomic_write_text(folder / CHECKPOINT_MANIFEST, json.dumps(manifest))

    def create_optimizer(self, model=None):
        """AdamW, SGD or BertAdam (`settings.optimizer`), no decay on biases/norms, per-pattern learning rates."""
        if self.optimizer is not None:
            return self.optimizer
        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            lr = next((lr for pattern, lr in self.lr_overrides if pattern.search(name)), self.args.learning_rate)
            decay = 0.0 if (p.dim() < 2 or _NO_DECAY.search(name)) else self.args.weight_decay
            groups.setdefault((lr, decay), []).append(p)
        self.optimizer = make_optimizer(
            [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
            self.settings,
            eps=self.args.adam_epsilon,
        )
        return self.optimizer

    def get_train_dataloader(self):
        """A stream (an IterableDataset) is read by each rank as given: it is already split across ranks
        (`datasets.distributed.split_dataset_by_node`, see `tailor.zoo.corpus`). accelerate would
        otherwise have rank 0 read every batch and dispatch it (which also fails on batches padded to
        different lengths) or shard the stream a second time, dropping examples (accelerate#3547)."""
        if not isinstance(self.train_dataset, torch.utils.data.IterableDataset):
            return super().get_train_dataloader()
        from accelerate.data_loader import prepare_data_loader
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return prepare_data_loader(
            loader, self.args.device, num_processes=1, process_index=0, put_on_device=True, dispatch_batches=False
        )

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """transformers' schedules by name; `multistep` is torch's MultiStepLR."""
        if self.lr_scheduler is None and self.settings.scheduler == "multistep":
            loader = self.get_train_dataloader()  # a stream has no length: its milestones are in steps
            batches = len(loader) if has_length(loader) else 1
            steps_per_epoch = max(1, math.ceil(batches / self.args.gradient_accumulation_steps))
            self.lr_scheduler = multistep_scheduler(optimizer or self.optimizer, self.settings, steps_per_epoch)
        return super().create_scheduler(num_training_steps, optimizer)


def objective_terms(objective: Objective, model: nn.Module, batch, teacher: nn.Module | None) -> dict:
    """`objective.terms`, run inside DistributedDataParallel's forward when the model is wrapped in it.

    DDP synchronises gradients only for work done inside its `forward` (that is where it prepares
    the all-reduce for the next backward). Objectives call submodules directly (an encoder, an MLM
    head, several passes per step), so under DDP the whole objective becomes the wrapped module's
    forward for this one call, on the unwrapped model; the teacher stays outside DDP.
    """
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return objective.terms(model, batch, teacher)
    inner = model.module
    patched = inner.__dict__.get("forward")  # accelerate may have wrapped forward (autocast) on the instance

    def restore() -> None:
        if patched is not None:
            inner.forward = patched
        elif "forward" in inner.__dict__:
            del inner.forward

    def run_objective():
        restore()  # the objective's own model(...) calls run the real forward
        return objective.terms(inner, batch, teacher)

    inner.forward = run_objective
    try:
        return model()
    finally:
        restore()


def planned_steps(settings: TrainSettings, n_train: int | None) -> int | None:
    """The optimisation steps to run when they are fixed in advance: `steps`, or `epochs` over
    `n_train` examples raised to `min_steps` (None: let Trainer count epochs, or no length known).
    An epoch is counted as Trainer does: ceil(n / (batch x processes)) batches, / grad_accum rounded up."""
    if settings.steps or not settings.min_steps or n_train is None:
        return settings.steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = max(1, math.ceil(math.ceil(n_train / (settings.batch_size * world)) / settings.grad_accum))
    by_epochs = math.ceil(settings.epochs * per_epoch)
    return settings.min_steps if by_epochs < settings.min_steps else None


def training_arguments(
    settings: TrainSettings, out_dir: Path, seed: int, n_train: int | None = None
) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    precision = resolve(settings.precision).name
    return TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=settings.batch_size,
        num_train_epochs=settings.epochs,
        max_steps=planned_steps(settings, n_train) or -1,
        learning_rate=settings.lr,
        lr_scheduler_type="constant" if settings.scheduler == "multistep" else settings.scheduler,
        warmup_steps=settings.warmup_ratio,  # transformers 5 reads a float in [0, 1) as a ratio of total steps
        weight_decay=settings.weight_decay,
        adam_beta1=settings.adam_betas[0],
        adam_beta2=settings.adam_betas[1],
        max_grad_norm=0.0 if settings.optimizer == "bertadam" else settings.max_grad_norm or 0.0,  # it clips per tensor
        gradient_accumulation_steps=settings.grad_accum,
        logging_steps=settings.log_every,
        save_strategy="steps",
        save_steps=settings.save_every,
        save_total_limit=2,  # the newest checkpoint may be damaged: keep one to fall back to
        report_to="none",  # TensorBoard is attached explicitly to write into out_dir/tb
        seed=seed,
        data_seed=seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        ddp_backend="gloo" if distributed and not cuda else None,
        disable_tqdm=False,
        gradient_checkpointing=settings.gradient_checkpointing,
        torch_compile=settings.compile,
        bf16=precision == "bf16",  # Trainer/accelerate autocast the forward; weights and optimizer stay fp32
        fp16=precision == "fp16",
    )


def build_trainer(
    model: nn.Module,
    train_dataset,
    *,
    settings: TrainSettings,
    out_dir: Path,
    objective: Objective,
    collator,
    teacher: nn.Module | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    lr_overrides: Mapping[str, float] | None = None,
    seed: int = 0,
) -> Trainer:
    """The configured Trainer behind `train()` (exposed so tests and tools can inspect it)."""
    from torch.utils.tensorboard import SummaryWriter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = training_arguments(settings, out_dir, seed, len(train_dataset) if has_length(train_dataset) else None)
    if teacher is not None:
        teacher = teacher.to(args.device).eval().requires_grad_(False)
    trainer = _ObjectiveTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=collator,
        objective=objective,
        teacher=teacher,
        lr_overrides=lr_overrides,
        settings=settings,
        callbacks=[
            MetricsFile(out_dir / "metrics.jsonl"),
            TensorBoardCallback(SummaryWriter(str(out_dir / "tb"))),
            NonFiniteGuard(settings.non_finite),
            *callbacks,
        ],
    )
    trainer.remove_callback(ProgressCallback)  # it prints raw log dicts through the bar
    trainer.add_callback(StageProgress(out_dir.name))
    return trainer


def train(
    model: nn.Module,
    train_dataset,
    *,
    settings: TrainSettings,
    out_dir: Path,
    objective: Objective,
    collator,
    teacher: nn.Module | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    lr_overrides: Mapping[str, float] | None = None,
    seed: int = 0,
    validation=None,
) -> TrainReport:
    """Train `model` in place on `train_dataset`; resumes from `out_dir/checkpoints` if a checkpoint exists.

    The arguments before `validation` are `build_trainer`'s. `validation` (ModelInputs with a
    `validation` split) is what `eval_every`, `select: best` and `patience` score.
    """
    keeper = _validation_callback(model, validation, settings, Path(out_dir))
    trainer = build_trainer(
        model,
        train_dataset,
        settings=settings,
        out_dir=out_dir,
        objective=objective,
        collator=collator,
        teacher=teacher,
        callbacks=[*callbacks, *([keeper] if keeper else [])],
        lr_overrides=lr_overrides,
        seed=seed,
    )
    choice = resolve_logged(settings.precision, f"training ({Path(out_dir).name})", trainer.args.device)
    ckpt_dir = Path(trainer.args.output_dir)
    resume = last_complete_checkpoint(ckpt_dir, discard_damaged=True)
    if resume:
        manifest = json.loads((Path(resume) / CHECKPOINT_MANIFEST).read_text())
        trainer.prior = {k: manifest[k] for k in ("loss_sum", "seconds", "segments")}
        log.info(
            "%s: resuming from checkpoint %s (step %d, %.0f s trained before)",
            Path(out_dir).name,
            resume,
            manifest["step"],
            manifest["seconds"],
        )
        _drop_rows_after(Path(out_dir) / "metrics.jsonl", manifest["step"])
    trainer.segment_start = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    guard = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, NonFiniteGuard))
    loss_sum = trainer.prior["loss_sum"] + float(result.training_loss) * result.global_step
    selection = None
    if keeper:
        selection = {
            "select": settings.select,
            **(keeper.restore_best() if settings.select == "best" else keeper.summary()),
        }
    return TrainReport(
        result.global_step,
        loss_sum / max(result.global_step, 1),
        trainer.prior["seconds"] + time.time() - trainer.segment_start,
        resume,
        choice.name,
        choice.reason,
        selection,
        trainer.prior["segments"] + 1,
        guard.skipped_steps,
    )


def _validation_callback(model, validation, settings: TrainSettings, out_dir: Path):
    if not settings.eval_every:
        return None
    if validation is None:
        raise ConfigError(
            f"eval_every is set but this stage has no labelled validation split to score "
            f"({out_dir.name}); remove eval_every/select/patience from it"
        )
    return KeepBestOnValidation(
        model, validation, settings.eval_every, settings.eval_batch_size, out_dir, settings.precision, settings.patience
    )


def last_complete_checkpoint(ckpt_dir: Path, discard_damaged: bool = False) -> str | None:
    """The newest checkpoint that was saved to the end and is still whole, or None.

    Trainer writes `trainer_state.json` last and tailor then writes its manifest (sha256 of every
    file), so a run killed while saving leaves a newer folder without a manifest, and a file damaged
    later no longer matches it; `transformers.trainer_utils.get_last_checkpoint` would pick either
    and the resume would fail. With `discard_damaged`, newer unusable checkpoints are deleted (and
    logged) so Trainer's rotation keeps the good ones.
    """
    folders = sorted(Path(ckpt_dir).glob("checkpoint-*"), key=_step_of, reverse=True)
    for folder in folders:
        problem = _checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        if discard_damaged:
            log.warning("checkpoint %s is unusable (%s): deleted, falling back to an older one", folder, problem)
            shutil.rmtree(folder, ignore_errors=True)
    return None


def _step_of(folder: Path) -> int:
    tail = folder.name.rsplit("-", 1)[1]
    return int(tail) if tail.isdigit() else -1


def _checkpoint_problem(folder: Path) -> str | None:
    try:
        manifest = json.loads((folder / CHECKPOINT_MANIFEST).read_text())
    except (OSError, ValueError):
        return "no manifest: the save did not finish"
    bad = mismatches(folder, manifest.get("files", {}))
    return ", ".join(bad) if bad else None


def _drop_rows_after(metrics: Path, step: int) -> None:
    """On resume, forget log rows of the steps that will be trained again (no duplicates in the log)."""
    if metrics.is_file():
        rows = [line for line in metrics.read_text().splitlines() if json.loads(line)["step"] <= step]
        atomic_write_text(metrics, "".join(row + "\n" for row in rows))
