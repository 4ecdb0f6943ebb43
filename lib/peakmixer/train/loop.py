"""The training loop: one loop for CPU and CUDA, mixed precision, DDP, checkpoints and exact resume.

    cfg = load_config("params/train/synth_ir17.yaml", ["optim.lr=1e-3"])
    summary = train(cfg)                # writes cfg.out_dir/{config.yaml, last.pt, best.pt, metrics.json}
    train(cfg, resume=True)             # continues a killed run from last.pt

Model selection uses a dataset-level validation metric (micro-F1 or accuracy), never a batch average.
Data order depends only on (seed, epoch), and checkpoints carry the RNG state, so a run resumed from a
mid-epoch checkpoint reproduces the uninterrupted run exactly on CPU.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from peakmixer.config import (
    ConfigError,
    to_dict,
)
from peakmixer.data.dataset import SpectraDataset, file_sha256, input_grid, load, spectrum_kind
from peakmixer.data.preprocess import import_scaling
from peakmixer.data.split_record import record_splits
from peakmixer.files import write_text
from peakmixer.ip import IPModel, IPOutput, ip_loss, pathway_metrics
from peakmixer.metrics import main_metric
from peakmixer.models import PeakModel, code_fingerprint, describe, profile_model
from peakmixer.provenance import git_sha
from peakmixer.train.augment import augment_batch, step_generator
from peakmixer.train.checkpoint import (
    build_from_config,
    load_checkpoint,
    model_from_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from peakmixer.train.config import OptimConfig, TrainConfig
from peakmixer.train.device import autocast, resolve_device, resolve_precision
from peakmixer.train.distributed import Dist, init_distributed, sync_batchnorm
from peakmixer.train.identity import init_identity, machine, model_config_id
from peakmixer.train.prepare import (
    Prepared,
    check_trainable,
    evaluate_split,
    loss_fn,
    prepare_split,
    train_val_rows,
)


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=cfg.t_max or cfg.epochs, eta_min=cfg.eta_min
        )
    if cfg.scheduler == "cosine_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=cfg.t_0, T_mult=cfg.t_mult, eta_min=cfg.eta_min
        )
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


class Objective:
    """What a training step minimises, the loop's one seam for models that train differently.

    `forward` runs under autocast and returns the model's training output; `loss` turns it into the fp32
    loss; `epoch_logs` adds per-epoch diagnostics to the history. This one: the task loss of the logits.
    """

    def __init__(self, task: str) -> None:
        self.task = task

    def forward(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Any:
        return net(x)

    def loss(self, out: Any, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(self.task, out, y)

    def epoch_logs(self, model: nn.Module, data: Prepared, epoch: int) -> dict[str, float]:
        return {}


class IPObjective(Objective):
    """The interpretable path's loss: L(pred_1) + λ L(pred_2 where the sampled class was right), with the
    three pathways' validation metrics logged every epoch (sampling seeded by the epoch)."""

    def __init__(self, task: str, weight: float) -> None:
        super().__init__(task)
        self.weight = weight

    def forward(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> IPOutput:
        return net(x, y)

    def loss(self, out: IPOutput, y: torch.Tensor) -> torch.Tensor:
        return ip_loss(out, y, self.task, self.weight)

    def epoch_logs(self, model: nn.Module, data: Prepared, epoch: int) -> dict[str, float]:
        scores = pathway_metrics(model, data.X, data.y, task=self.task, seed=epoch)
        return {f"val_{name}": value for name, value in scores.items()}


def make_objective(model: nn.Module, task: str, cfg: TrainConfig) -> Objective:
    return IPObjective(task, cfg.model.ip.weight) if isinstance(model, IPModel) else Objective(task)


def _improved(value: float, best: float, min_delta: float) -> bool:
    return math.isnan(best) or value > best + min_delta


@dataclass
class _Session:
    """Everything one training run holds; the steps of `train` read and update it."""

    cfg: TrainConfig
    ddp: Dist
    device: torch.device
    precision: str
    out: Path
    dataset: SpectraDataset
    train_data: Prepared
    val_data: Prepared
    model: PeakModel | IPModel
    net: nn.Module
    objective: Objective
    opt: torch.optim.Optimizer
    sched: Any
    scaler: torch.amp.GradScaler
    local_batch: int
    config_id: str
    init_id: str
    data_hash: str
    input_axis: np.ndarray
    split_record: dict[str, Any]
    status: StatusLine | None = None
    state: dict[str, Any] = field(
        default_factory=lambda: {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "best": float("nan"),
            "best_epoch": -1,
            "bad_epochs": 0,
            "history": [],
            "train_seconds": 0.0,
            "spectra_seen": 0,
            "loss_sum": 0.0,  # of the current epoch, so a mid-epoch resume reports the whole epoch's loss
            "loss_steps": 0,
            "threads": torch.get_num_threads(),  # CPU results depend on it: a resumed run keeps it
        }
    )

    @property
    def task(self) -> str:
        return self.train_data.task

    @property
    def metric(self) -> str:
        return main_metric(self.task)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class StatusLine:
    """What a long run prints so that a log never goes quiet: where it is (epoch, step), its validation
    metric so far, the time spent and an estimate of the time left, at least every `every` seconds. The
    estimate runs to the epoch cap at this session's pace (validation included): early stopping usually
    ends a run sooner."""

    def __init__(self, s: _Session, every: float, steps_per_epoch: int) -> None:
        self.every, self.steps_per_epoch = every, max(steps_per_epoch, 1)
        self.name = "/".join(s.out.parts[-3:])
        self.start = self.last = time.perf_counter()
        self.first_step = s.state["global_step"]

    def text(self, s: _Session) -> str:
        state, cfg = s.state, s.cfg
        now = time.perf_counter()
        done = state["global_step"] - self.first_step
        left = (cfg.optim.epochs - state["epoch"]) * self.steps_per_epoch - state["step_in_epoch"]
        eta = (now - self.start) / done * max(left, 0) if done else float("nan")
        history = state["history"]
        val = f"val {s.metric} {history[-1][f'val_{s.metric}']:.4f}" if history else f"val {s.metric} -"
        best = f" (best {state['best']:.4f}, epoch {state['best_epoch']})" if history else ""
        left_text = f"at most {_clock(eta)} left (epoch cap)" if done else "time left: after the first steps"
        return (
            f"[train] {self.name}: epoch {state['epoch']}/{cfg.optim.epochs} step "
            f"{state['step_in_epoch']}/{self.steps_per_epoch}, {val}{best}, "
            f"elapsed {_clock(now - self.start)}, {left_text}"
        )

    def due(self) -> bool:
        return bool(self.every) and time.perf_counter() - self.last >= self.every

    def print(self, s: _Session) -> None:
        self.last = time.perf_counter()
        print(self.text(s), flush=True)


def _load_init(model: nn.Module, cfg: TrainConfig, n_classes: int) -> None:
    """Start from `cfg.init_from` (pre-train -> fine-tune), with a fresh head when `new_head`."""
    init = load_checkpoint(cfg.init_from)
    weights = init["model"]
    if cfg.new_head:
        init_model = model_from_checkpoint(init)
        init_model.reset_head(n_classes)
        weights = init_model.state_dict()
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise ConfigError(
            f"init_from {cfg.init_from} does not fit this model ({first}); the model section must match "
            "the pre-trained one, and new_head: true starts a fresh head for another label set"
        ) from None


def _start(cfg: TrainConfig, dataset: SpectraDataset | None) -> _Session:
    """Devices, data, model (and its start), optimiser, schedule and the run's identity."""
    ddp = init_distributed(cfg.device)
    device = resolve_device(cfg.device, ddp.local_rank)
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if dataset is None:
        if not cfg.data.path:
            raise ConfigError("data.path: no dataset given")
        dataset = load(cfg.data.path)
    train_rows, val_rows = train_val_rows(dataset, cfg)
    train_data = prepare_split(dataset, train_rows, cfg)
    val_data = prepare_split(dataset, val_rows, cfg)
    check_trainable(dataset, train_data, val_data, cfg)
    n_classes = len(train_data.label_names)

    model = build_from_config(cfg, n_classes, train_data.task)
    init_id = init_identity(cfg.init_from) if cfg.init_from else ""
    config_id = model_config_id(
        cfg, dataset, code_fingerprint(model), device_type=device.type, precision=precision, init_id=init_id
    )
    if cfg.init_from:
        _load_init(model, cfg, n_classes)
    model.to(device)
    if ddp.world > 1:
        model = sync_batchnorm(model, device)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model
    if cfg.optim.batch_size % ddp.world:
        raise ConfigError(
            f"optim.batch_size {cfg.optim.batch_size} is not divisible by {ddp.world} processes"
        )
    opt = make_optimizer(net, cfg.optim)
    return _Session(
        cfg=cfg,
        ddp=ddp,
        device=device,
        precision=precision,
        out=Path(cfg.out_dir),
        dataset=dataset,
        train_data=train_data,
        val_data=val_data,
        model=model,
        net=net,
        objective=make_objective(model, train_data.task, cfg),
        opt=opt,
        sched=make_scheduler(opt, cfg.optim),
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        local_batch=cfg.optim.batch_size // ddp.world,
        config_id=config_id,
        init_id=init_id,
        data_hash=file_sha256(cfg.data.path) if cfg.data.path else "in-memory",
        input_axis=input_grid(dataset.axis, cfg.model.input_length),
        split_record=record_splits(dataset, train_rows, val_rows),
    )


def _resume(s: _Session) -> None:
    """Continue from ``last.pt`` (weights, optimiser, schedule, loop state, RNG) when it is the same run."""
    last = s.out / "last.pt"
    if not last.exists():
        return
    # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the model's device.
    ckpt = load_checkpoint(last, map_location="cpu")
    if ckpt.get("config_id") != s.config_id:
        raise ConfigError(
            f"{last} was made with other settings, code, data, device type or precision than this run "
            f"(id {ckpt.get('config_id')} vs {s.config_id}); resume only the same run (or choose another "
            "out_dir)"
        )
    s.model.load_state_dict(ckpt["model"])
    s.opt.load_state_dict(ckpt["optimizer"])
    s.sched.load_state_dict(ckpt["scheduler"])
    s.scaler.load_state_dict(ckpt["scaler"])
    s.state = ckpt["state"]
    set_rng_state(ckpt["rng"], s.device)
    # A CPU's sums run in another order on another thread count, so a run resumed on another count would
    # differ from one never interrupted (and from its row's `threads`): it continues on the count it began
    # with (checkpoints from before this rule do not say it).
    began = s.state.get("threads")
    if s.device.type == "cpu" and began and began != torch.get_num_threads():
        print(f"[train] {s.out}: resumed on {began} threads as it began (not {torch.get_num_threads()})")
        torch.set_num_threads(began)


def _checkpoint(s: _Session, name: str, metrics: dict | None = None) -> None:
    if not s.ddp.main:
        return
    save_checkpoint(
        s.out / name,
        {
            "model": s.model.state_dict(),
            "optimizer": s.opt.state_dict(),
            "scheduler": s.sched.state_dict(),
            "scaler": s.scaler.state_dict(),
            "state": s.state,
            "rng": rng_state(s.device),
            "config": to_dict(s.cfg),
            "model_spec": s.model.spec,
            "task": s.task,
            "label_names": s.train_data.label_names,
            "metrics": metrics or {},
            "data_hash": s.data_hash,
            "config_id": s.config_id,
            "input_axis": torch.from_numpy(s.input_axis),  # what `explain` and `evaluate` resample onto
            "synthetic_data": bool(s.dataset.provenance.get("synthetic")),
            "split_record": s.split_record,  # what `evaluate` checks a scored split against
            "spectrum_kind": spectrum_kind(s.dataset),  # ir / raman / None: what `explain` accepts
            # the preprocessing its data went through: applied to raw inputs by explain / evaluate / predict
            "preprocess": s.dataset.provenance.get("preprocess"),
            # how its importer scaled the spectra (min-max or as measured): raw inputs are read the same way
            "import_scaling": import_scaling(s.dataset.provenance),
        },
    )


def _epoch_batches(s: _Session, sampler: DistributedSampler) -> list[torch.Tensor]:
    """This epoch's batches of row indices; the order depends only on (seed, epoch)."""
    sampler.set_epoch(s.state["epoch"])
    batches = list(torch.tensor(list(sampler)).split(s.local_batch))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # BatchNorm cannot train on a batch of one
    return batches


def _train_epoch(s: _Session, sampler: DistributedSampler, X: torch.Tensor, y: torch.Tensor) -> bool:
    """The optimiser steps of one epoch (from where a resumed run left off); True when `max_steps` cut it
    short (then ``last.pt`` holds the mid-epoch state)."""
    cfg, state = s.cfg, s.state
    batches = _epoch_batches(s, sampler)
    s.net.train()
    t0 = time.perf_counter()
    loss_sum, loss_steps = torch.zeros((), device=s.device), 0  # summed on the device: no sync per step

    def flush() -> None:
        nonlocal loss_sum, loss_steps, t0
        state["train_seconds"] += time.perf_counter() - t0
        state["loss_sum"] += float(loss_sum)
        state["loss_steps"] += loss_steps
        loss_sum, loss_steps, t0 = torch.zeros((), device=s.device), 0, time.perf_counter()

    bar = tqdm(
        batches[state["step_in_epoch"] :],
        desc=f"epoch {state['epoch']}",
        leave=False,
        disable=not (cfg.progress and s.ddp.main),
    )
    for idx in bar:
        if cfg.max_steps and state["global_step"] >= cfg.max_steps:  # before the step: a resume adds none
            flush()
            _checkpoint(s, "last.pt")
            return True
        idx = idx.to(s.device)
        xb = X[idx]
        if cfg.augment.active:
            gen = step_generator(cfg.seed * 1000 + s.ddp.rank, state["global_step"], s.device)
            xb = augment_batch(xb, cfg.augment, gen)
        with autocast(s.device, s.precision):
            out = s.objective.forward(s.net, xb, y[idx])
        loss = s.objective.loss(out, y[idx])
        s.opt.zero_grad(set_to_none=True)
        s.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            s.scaler.unscale_(s.opt)
            nn.utils.clip_grad_norm_(s.net.parameters(), cfg.optim.grad_clip)
        s.scaler.step(s.opt)
        s.scaler.update()
        loss_sum += loss.detach()
        loss_steps += 1
        state["step_in_epoch"] += 1
        state["global_step"] += 1
        state["spectra_seen"] += len(idx) * s.ddp.world
        if s.status is not None and s.status.due():
            s.status.print(s)
        if cfg.checkpoint_every and state["global_step"] % cfg.checkpoint_every == 0:
            flush()
            _checkpoint(s, "last.pt")
    flush()
    return False


def _end_epoch(s: _Session) -> None:
    """Validate on the whole split, step the schedule, keep the best model, count towards early stopping."""
    cfg, state, epoch = s.cfg, s.state, s.state["epoch"]
    val = evaluate_split(
        s.model, s.val_data, device=s.device, precision=s.precision, batch_size=cfg.eval_batch_size
    )
    value = val[s.metric]
    row = {
        "epoch": epoch,
        "train_loss": state["loss_sum"] / max(state["loss_steps"], 1),
        f"val_{s.metric}": value,
        "lr": s.opt.param_groups[0]["lr"],  # the rate this epoch trained with
        **s.objective.epoch_logs(s.model, s.val_data, epoch),
    }
    s.sched.step()
    state["history"].append(row)
    state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_steps=0)
    if _improved(value, state["best"], cfg.optim.min_delta):
        state.update(best=value, best_epoch=epoch, bad_epochs=0)
        _checkpoint(s, "best.pt", {"val": val})
    else:
        state["bad_epochs"] += 1
    _checkpoint(s, "last.pt")
    if s.ddp.main and cfg.progress:
        extra = "".join(f"  {k} {v:.4f}" for k, v in row.items() if k.startswith("val_pred_"))
        print(
            f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  val {s.metric} {value:.4f}  "
            f"lr {row['lr']:.2e}{extra}",
            flush=True,
        )
        if state["bad_epochs"] >= cfg.optim.patience:
            print(
                f"early stop after epoch {epoch}: no validation improvement for {cfg.optim.patience} epochs; "
                f"the best model is epoch {state['best_epoch']} ({s.metric} {state['best']:.4f})",
                flush=True,
            )
    if s.status is not None and s.status.due():
        s.status.print(s)


def _summary(s: _Session, stopped: bool) -> dict[str, Any]:
    state, cfg = s.state, s.cfg
    if stopped:
        ended_by = "max_steps"
    elif state["bad_epochs"] >= cfg.optim.patience:
        ended_by = "early_stop"
    else:
        ended_by = "epoch_cap"
    return {
        "model": describe(s.model.spec),
        "model_spec": s.model.spec,
        "task": s.task,
        "metric": s.metric,
        "best_epoch": state["best_epoch"],
        "best_val": state["best"],
        "epochs_run": state["epoch"],
        "global_step": state["global_step"],
        "train_seconds": state["train_seconds"],
        "spectra_per_second": state["spectra_seen"] / max(state["train_seconds"], 1e-9),
        "device": str(s.device),
        "precision": s.precision,
        "world_size": s.ddp.world,
        "seed": cfg.seed,
        "data_hash": s.data_hash,
        "config_id": s.config_id,
        "init_id": s.init_id,
        "ended_by": ended_by,
        **machine(),
        "git_sha": git_sha(),
        "history": state["history"],
        **{k: profile_model(s.model)[k] for k in ("params", "macs")},
    }


# Where and when a run was made: a finished run that is only evaluated again (a sweep reusing it) keeps them.
_MADE = ("git_sha", "finished_at", "cpu", "cpu_kernels", "gpu", "torch", "threads")


def _finish(s: _Session, stopped: bool, trained: bool = True) -> dict[str, Any]:
    """The best model's metrics on validation and test (and its IP pathways), into ``metrics.json``; when
    this call `trained` nothing, the run's own provenance (`_MADE`) is kept from its ``metrics.json``."""
    summary = _summary(s, stopped)
    summary["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    made = s.out / "metrics.json"
    before = json.loads(made.read_text()) if not trained and made.exists() else {}
    if before.get("config_id") == s.config_id:  # this run's own record, not another run's in the folder
        summary |= {k: before[k] for k in _MADE if k in before}
        if "finished_at" not in before:  # a record older than the key: the file was written as the run ended
            summary["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(made.stat().st_mtime))
        if "cpu_kernels" not in before:  # older than the key: this CPU's sets would not be the run's
            summary["cpu_kernels"] = ""
    if stopped:
        summary["stopped"] = True
        return summary
    if s.ddp.main:
        best = load_checkpoint(s.out / "best.pt", map_location=s.device)
        s.model.load_state_dict(best["model"])
        ev = {"device": s.device, "precision": s.precision, "batch_size": s.cfg.eval_batch_size}
        summary["val"] = evaluate_split(s.model, s.val_data, **ev)
        if s.cfg.data.test_split in s.dataset.splits:
            test = prepare_split(s.dataset, s.cfg.data.test_split, s.cfg)
            summary["test"] = evaluate_split(s.model, test, **ev)
            if isinstance(s.model, IPModel):
                summary["test"]["pathways"] = pathway_metrics(s.model, test.X, test.y, task=s.task, seed=0)
        write_text(s.out / "metrics.json", json.dumps(summary, indent=1))  # read back to reuse runs
    if s.ddp.world > 1:
        dist.barrier()
    return summary


def train(cfg: TrainConfig, *, resume: bool = False, dataset: SpectraDataset | None = None) -> dict[str, Any]:
    """Train `cfg`, writing ``config.yaml``, ``last.pt``, ``best.pt`` and ``metrics.json`` to `cfg.out_dir`.

    `resume=True` continues from ``last.pt`` when it exists (and starts fresh otherwise). `dataset` may be
    passed in memory instead of `cfg.data.path`. Returns the ``metrics.json`` content; a run stopped by
    `max_steps` returns ``{"stopped": True, ...}`` without test metrics.
    """
    s = _start(cfg, dataset)
    threads = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(s, resume)
    finally:
        torch.set_num_threads(threads)  # `_resume` may have set the run's own count


def _train(s: _Session, resume: bool) -> dict[str, Any]:
    cfg = s.cfg
    if resume:
        _resume(s)
    if s.ddp.main:
        s.out.mkdir(parents=True, exist_ok=True)
        write_text(s.out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    sampler = DistributedSampler(
        range(len(s.train_data.X)),
        num_replicas=s.ddp.world,
        rank=s.ddp.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=s.ddp.world > 1,  # no padding with repeated spectra; drops < world spectra per epoch
    )
    X, y = s.train_data.X.to(s.device), s.train_data.y.to(s.device)
    if s.ddp.main and cfg.progress_every > 0:
        s.status = StatusLine(s, cfg.progress_every, len(_epoch_batches(s, sampler)))
    stopped, steps = False, s.state["global_step"]
    # The patience test is part of the loop condition, so resuming an early-stopped run trains no further.
    while s.state["epoch"] < cfg.optim.epochs and s.state["bad_epochs"] < cfg.optim.patience:
        stopped = _train_epoch(s, sampler, X, y)
        if stopped:
            break
        _end_epoch(s)
        if cfg.max_steps and s.state["global_step"] >= cfg.max_steps:
            stopped = s.state["epoch"] < cfg.optim.epochs and s.state["bad_epochs"] < cfg.optim.patience
            break
    return _finish(s, stopped, trained=s.state["global_step"] > steps)
