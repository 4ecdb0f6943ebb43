"""The training loop: one loop for CPU and CUDA, mixed precision, DDP, checkpoints and exact resume.

    cfg = load_config("params/train/synth_ir17.yaml", ["optim.lr=1e-3"])
    summary = train(cfg)                # writes cfg.out_dir/{config.yaml, last.pt, best.pt, metrics.json}
    train(cfg, resume=True)             # continues a killed run from last.pt

Model selection uses a dataset-level validation metric (micro-F1 or accuracy), never a batch average.
Data order depends only on (seed, epoch), and checkpoints carry the RNG state, so a run resumed from a
mid-epoch checkpoint reproduces the uninterrupted run exactly on CPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from .config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from .data import SpectraDataset, data_identity, file_sha256, load, random_splits
from .metrics import compute_metrics, main_metric
from .models import PeakModel, build_model, code_fingerprint, describe, profile_model
from .provenance import git_sha

# --- configuration ---------------------------------------------------------------------------------


@dataclass
class DataConfig:
    path: str = ""  # a SpectraDataset file
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.0  # > 0: validate on a random (stratified, seeded) share of train_split instead
    target: str = "y"  # "y", or an integer extra such as "y_group" (a multiclass target)
    normalize: Literal["none", "minmax", "standard"] = "none"  # per spectrum


@dataclass
class ModelConfig:
    extractor: str = "respeak"
    mixer: str = "mlpmixer"
    width: int = 160
    blocks: int | None = None
    mixer_layers: int = 4
    mlp_layers: int = 3
    input_length: int = 1024
    hidden: int = 768
    mlp_hidden: int = 1024
    dropout: float = 0.0
    shared_norm: bool = False
    heads: int = 8


@dataclass
class OptimConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"  # AdamW as upstream; SGD (+momentum) as an alternative
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.01  # AdamW's default, as upstream
    batch_size: int = 64  # global: split over DDP processes
    epochs: int = 50
    scheduler: Literal["none", "cosine", "cosine_restarts"] = "cosine"
    t_max: int = 0  # cosine period in epochs; 0 = the whole run (upstream used 10: an unintended sawtooth)
    t_0: int = 40  # warm restarts (NIST-IR recipe): first period, then x t_mult
    t_mult: int = 2
    eta_min: float = 1e-6
    patience: int = 20  # early stopping, in epochs without a validation improvement > min_delta
    min_delta: float = 1e-4
    grad_clip: float = 0.0  # max gradient norm; 0 = off


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | cuda:1 | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    init_from: str = ""  # checkpoint to start from (pre-train -> fine-tune)
    new_head: bool = False  # with init_from: a fresh final layer (e.g. another number of classes)
    checkpoint_every: int = 0  # also write last.pt every N optimizer steps (0 = at epoch ends only)
    max_steps: int = 0  # stop after N optimizer steps in total (0 = no limit); resume continues
    eval_batch_size: int = 256
    progress: bool = True


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A `TrainConfig` from YAML plus ``key=value`` overrides; unknown keys raise `ConfigError`."""
    data = load_yaml(path) if path else {}
    return from_dict(TrainConfig, apply_overrides(data, overrides or []))


# --- devices, precision, distributed ---------------------------------------------------------------


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return device


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 matmul (AMX or AVX512-BF16), where bf16 autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA and bf16-capable CPUs, fp16 (+ GradScaler) on older CUDA, else fp32."""
    if name != "auto":
        if name == "fp16" and device.type != "cuda":
            raise ConfigError("precision fp16 needs CUDA (use bf16 or fp32 on CPU)")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group that torchrun set up (nccl on CUDA, gloo on CPU); a no-op without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto",) or device_name.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return Dist(rank, world, local_rank)


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward is again a sum (each rank's loss depends on the shared sum)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CrossProcessBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are pooled over all DDP processes.

    torch's SyncBatchNorm is GPU-only; this is its CPU (gloo) counterpart, so that N processes with
    batch B/N train exactly like one process with batch B. The all-reduce is differentiable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        dims = [0, 2] if x.dim() == 3 else [0]
        c = x.shape[1]
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), xf.new_tensor([xf.numel() / c])])
        total = _AllReduceSum.apply(local)
        n = total[-1]
        mean = total[:c] / n
        var = total[c : 2 * c] / n - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)
        shape = (1, c, 1) if x.dim() == 3 else (1, c)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Pool BatchNorm statistics across processes: torch's SyncBatchNorm on CUDA, ours elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm1d:
            bn = CrossProcessBatchNorm1d(child.num_features, child.eps, child.momentum).to(device)
            bn.load_state_dict(child.state_dict())
            setattr(model, name, bn)
        else:
            sync_batchnorm(child, device)
    return model


# --- data preparation ------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A split as tensors ready for the model: X (N, 1, L) float32 and targets."""

    X: torch.Tensor
    y: torch.Tensor
    task: str
    label_names: list[str]


def normalize(X: np.ndarray, how: str) -> np.ndarray:
    """Per-spectrum scaling: ``minmax`` to [0, 1], ``standard`` to zero mean / unit sd, or ``none``."""
    if how == "none":
        return X
    if how == "minmax":
        lo, hi = X.min(1, keepdims=True), X.max(1, keepdims=True)
        return (X - lo) / np.maximum(hi - lo, 1e-12)
    if how == "standard":
        return (X - X.mean(1, keepdims=True)) / np.maximum(X.std(1, keepdims=True), 1e-12)
    raise ConfigError(f"data.normalize: unknown method {how!r}")


def label_space(ds: SpectraDataset, cfg: TrainConfig) -> tuple[str, list[str]]:
    """(task, class names) of the training target: the dataset's labels, or a multiclass extra."""
    if cfg.data.target == "y":
        return ds.task, list(ds.label_names)
    if cfg.data.target not in ds.extras:
        raise ConfigError(f"data.target: the dataset has no extra {cfg.data.target!r} ({sorted(ds.extras)})")
    # The class count comes from the whole dataset: a split may lack the last class.
    n_classes = int(ds.extras[cfg.data.target].max()) + 1
    names = list(ds.provenance.get(f"{cfg.data.target}_names", [str(i) for i in range(n_classes)]))
    return "multiclass", names


def prepare_split(ds: SpectraDataset, split: str | np.ndarray, cfg: TrainConfig) -> Prepared:
    """Rows of a split (a name or indices), resampled to the model input, normalised, with their target."""
    task, names = label_space(ds, cfg)
    part = (ds.split(split) if isinstance(split, str) else ds.subset(split)).to_length(cfg.model.input_length)
    X = normalize(part.X, cfg.data.normalize).astype(np.float32)
    y = part.y if cfg.data.target == "y" else part.extras[cfg.data.target].astype(np.int64)
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float32 if task == "multilabel" else np.int64))
    return Prepared(torch.from_numpy(X).unsqueeze(1), y_t, task, names)


def train_val_rows(ds: SpectraDataset, cfg: TrainConfig) -> tuple[str | np.ndarray, str | np.ndarray]:
    """The training and validation rows: two named splits, or with `data.val_fraction` a seeded random
    (class-stratified for multiclass) share of the training split, as Ho et al. did for fine-tuning."""
    d = cfg.data
    if d.val_fraction <= 0:
        return d.train_split, d.val_split
    if not 0 < d.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must lie in (0, 1), got {d.val_fraction}")
    rows = (
        ds.splits[d.train_split] if d.train_split in ds.splits else ds.split(d.train_split)
    )  # names the error
    target = ds.y if d.target == "y" else ds.extras.get(d.target)
    strata = target[rows] if target is not None and np.ndim(target) == 1 else None
    parts = random_splits(len(rows), {"train": 1 - d.val_fraction, "val": d.val_fraction}, cfg.seed, strata)
    return rows[parts["train"]], rows[parts["val"]]


def loss_fn(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE with logits (multilabel) or cross-entropy (multiclass), in fp32 whatever the autocast."""
    logits = logits.float()
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y)


@torch.no_grad()
def predict(
    model: nn.Module, X: torch.Tensor, *, device: torch.device, precision: str = "fp32", batch_size: int = 256
) -> np.ndarray:
    """Logits (N, K) as float32 numpy, in eval mode and batches."""
    model.eval()
    out = []
    for i in range(0, len(X), batch_size):
        with autocast(device, precision):
            out.append(model(X[i : i + batch_size].to(device, non_blocking=True)).float().cpu())
    return torch.cat(out).numpy()


def evaluate_split(
    model: nn.Module, data: Prepared, *, device: torch.device, precision: str = "fp32", batch_size: int = 256
) -> dict:
    """Dataset-level metrics of `model` on a prepared split."""
    logits = predict(model, data.X, device=device, precision=precision, batch_size=batch_size)
    return compute_metrics(data.task, data.y.numpy(), logits, label_names=data.label_names)


# --- checkpoints -----------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then an atomic rename: a kill never leaves a torn checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return torch.load(path, map_location=map_location, weights_only=True)


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> PeakModel:
    """Rebuild a model from the spec stored in a checkpoint and load its weights."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    spec = dict(ckpt["model_spec"])
    extractor, mixer = spec.pop("extractor"), spec.pop("mixer")
    model = build_model(extractor, mixer, **spec)
    model.load_state_dict(ckpt["model"])
    return model


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# --- the loop --------------------------------------------------------------------------------------


def build_from_config(cfg: TrainConfig, n_classes: int) -> PeakModel:
    m = cfg.model
    return build_model(
        m.extractor,
        m.mixer,
        n_classes=n_classes,
        width=m.width,
        blocks=m.blocks,
        mixer_layers=m.mixer_layers,
        mlp_layers=m.mlp_layers,
        input_length=m.input_length,
        hidden=m.hidden,
        mlp_hidden=m.mlp_hidden,
        dropout=m.dropout,
        shared_norm=m.shared_norm,
        heads=m.heads,
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


# What a run computes beyond its config and data: the training loop, loss, optimiser and schedule set-up,
# data preparation and metrics. Bump it when a change there changes results (not for a refactor);
# tests/test_identity.py replays a short reference run and fails until the version is bumped.
TRAINING_PATH_VERSION = 1

# Settings that change where or how a run is observed, not what it computes. `device` and `precision` are
# replaced by the device type and the resolved precision ("auto" means bf16 on one machine, fp32 on another).
_VOLATILE = ("out_dir", "progress", "checkpoint_every", "max_steps", "eval_batch_size", "device")


def config_fingerprint(
    cfg: TrainConfig,
    data_id: str,
    *,
    model_code: str,
    device_type: str,
    precision: str,
    init_id: str = "",
) -> str:
    """The run identity: a short id of everything that decides what a run computes.

    That is the config (less `_VOLATILE` keys and the data's path), the data (`data.data_identity`), the
    device type and resolved precision, the model's `code_fingerprint`, `TRAINING_PATH_VERSION` and, for a
    run that starts from a checkpoint, that checkpoint's own identity (`init_id`) instead of its path. Two
    runs with one id compute the same thing; the results store and `train(resume=True)` rely on it.
    """
    d = {k: v for k, v in to_dict(cfg).items() if k not in _VOLATILE}
    d |= {"precision": precision, "init_from": init_id}
    d["data"] = {k: v for k, v in d["data"].items() if k != "path"}  # the data count by data_id
    if d["model"].get("ip", {}).get("mode", "off") == "off":
        d["model"].pop("ip", None)  # settings of an interpretable path that is not there change nothing
    blob = [d, data_id, device_type, model_code, TRAINING_PATH_VERSION]
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]


def init_identity(path: str | Path) -> str:
    """The identity of a checkpoint a run starts from: its run's config id (or, for a checkpoint made
    elsewhere, the file's sha256), so that a changed pre-training changes every fine-tuned run's id."""
    ckpt = load_checkpoint(path)
    return str(ckpt.get("config_id") or "sha256:" + file_sha256(path))


def planned_config_id(
    cfg: TrainConfig,
    dataset: SpectraDataset,
    *,
    device_type: str | None = None,
    precision: str | None = None,
    init_id: str | None = None,
) -> str:
    """The id `train(cfg)` will give its run, without training; device type and precision default to
    what this machine resolves, `init_id` to the identity of `cfg.init_from` (which must then exist)."""
    device = resolve_device(cfg.device) if device_type is None else torch.device(device_type)
    precision = precision or resolve_precision(cfg.precision, device)
    if init_id is None:
        init_id = init_identity(cfg.init_from) if cfg.init_from else ""
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = build_from_config(cfg, len(label_space(dataset, cfg)[1]))
    return config_fingerprint(
        cfg,
        data_identity(dataset, cfg.data.path),
        model_code=code_fingerprint(model),
        device_type=device.type,
        precision=precision,
        init_id=init_id,
    )


def machine() -> dict[str, Any]:
    """Where a run was made: CPU or GPU model, torch version and intra-op threads."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return {"cpu": cpu, "gpu": gpu, "torch": torch.__version__, "threads": torch.get_num_threads()}


def _improved(value: float, best: float, min_delta: float) -> bool:
    return math.isnan(best) or value > best + min_delta


def train(cfg: TrainConfig, *, resume: bool = False, dataset: SpectraDataset | None = None) -> dict[str, Any]:
    """Train `cfg`, writing ``config.yaml``, ``last.pt``, ``best.pt`` and ``metrics.json`` to `cfg.out_dir`.

    `resume=True` continues from ``last.pt`` when it exists (and starts fresh otherwise). `dataset` may be
    passed in memory instead of `cfg.data.path`. Returns the ``metrics.json`` content; a run stopped by
    `max_steps` returns ``{"stopped": True, ...}`` without test metrics.
    """
    ddp = init_distributed(cfg.device)
    device = resolve_device(cfg.device, ddp.local_rank)
    precision = resolve_precision(cfg.precision, device)
    out = Path(cfg.out_dir)
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
    task, n_classes = train_data.task, len(train_data.label_names)
    metric_name = main_metric(task)

    model = build_from_config(cfg, n_classes)
    data_hash = file_sha256(cfg.data.path) if cfg.data.path else "in-memory"
    init_id = init_identity(cfg.init_from) if cfg.init_from else ""
    config_id = config_fingerprint(
        cfg,
        data_identity(dataset, cfg.data.path),
        model_code=code_fingerprint(model),
        device_type=device.type,
        precision=precision,
        init_id=init_id,
    )
    if cfg.init_from:
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
    model.to(device)
    if ddp.world > 1:
        model = sync_batchnorm(model, device)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model

    opt = make_optimizer(net, cfg.optim)
    sched = make_scheduler(opt, cfg.optim)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if cfg.optim.batch_size % ddp.world:
        raise ConfigError(
            f"optim.batch_size {cfg.optim.batch_size} is not divisible by {ddp.world} processes"
        )
    local_batch = cfg.optim.batch_size // ddp.world

    state = {
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
    }
    if resume and (out / "last.pt").exists():
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the model's device.
        ckpt = load_checkpoint(out / "last.pt", map_location="cpu")
        if ckpt.get("config_id") != config_id:
            raise ConfigError(
                f"{out / 'last.pt'} was made with other settings, code, data, device type or precision than "
                f"this run (id {ckpt.get('config_id')} vs {config_id}); resume only the same run (or choose "
                "another out_dir)"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        state = ckpt["state"]
        _set_rng_state(ckpt["rng"], device)
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))

    def checkpoint(name: str, metrics: dict | None = None) -> None:
        if not ddp.main:
            return
        save_checkpoint(
            out / name,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "state": state,
                "rng": _rng_state(device),
                "config": to_dict(cfg),
                "model_spec": model.spec,
                "task": task,
                "label_names": train_data.label_names,
                "metrics": metrics or {},
                "data_hash": data_hash,
                "config_id": config_id,
            },
        )

    sampler = DistributedSampler(
        range(len(train_data.X)),
        num_replicas=ddp.world,
        rank=ddp.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=ddp.world > 1,  # no padding with repeated spectra; drops < world spectra per epoch
    )
    X_train, y_train = train_data.X.to(device), train_data.y.to(device)
    stopped = False
    # The patience test is part of the loop condition, so resuming an early-stopped run trains no further.
    while state["epoch"] < cfg.optim.epochs and state["bad_epochs"] < cfg.optim.patience and not stopped:
        epoch = state["epoch"]
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        batches = list(order.split(local_batch))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()  # BatchNorm cannot train on a batch of one
        net.train()
        t0 = time.perf_counter()
        loss_sum, loss_steps = torch.zeros((), device=device), 0  # summed on the device: no sync per step

        def flush_loss() -> None:
            nonlocal loss_sum, loss_steps
            state["loss_sum"] += float(loss_sum)
            state["loss_steps"] += loss_steps
            loss_sum, loss_steps = torch.zeros((), device=device), 0

        bar = tqdm(
            batches[state["step_in_epoch"] :],
            desc=f"epoch {epoch}",
            leave=False,
            disable=not (cfg.progress and ddp.main),
        )
        for idx in bar:
            idx = idx.to(device)
            with autocast(device, precision):
                logits = net(X_train[idx])
            loss = loss_fn(task, logits, y_train[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
            scaler.step(opt)
            scaler.update()
            loss_sum += loss.detach()
            loss_steps += 1
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            state["spectra_seen"] += len(idx) * ddp.world
            if cfg.checkpoint_every and state["global_step"] % cfg.checkpoint_every == 0:
                state["train_seconds"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                flush_loss()
                checkpoint("last.pt")
            if cfg.max_steps and state["global_step"] >= cfg.max_steps:
                stopped = True
                break
        state["train_seconds"] += time.perf_counter() - t0
        flush_loss()
        if stopped and state["step_in_epoch"] < len(batches):
            checkpoint("last.pt")
            break

        val = evaluate_split(
            model, val_data, device=device, precision=precision, batch_size=cfg.eval_batch_size
        )
        value = val[metric_name]
        row = {
            "epoch": epoch,
            "train_loss": state["loss_sum"] / max(state["loss_steps"], 1),
            f"val_{metric_name}": value,
            "lr": opt.param_groups[0]["lr"],  # the rate this epoch trained with
        }
        sched.step()
        state["history"].append(row)
        state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_steps=0)
        if _improved(value, state["best"], cfg.optim.min_delta):
            state.update(best=value, best_epoch=epoch, bad_epochs=0)
            checkpoint("best.pt", {"val": val})
        else:
            state["bad_epochs"] += 1
        checkpoint("last.pt")
        if ddp.main and cfg.progress:
            print(
                f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  val {metric_name} {value:.4f}  "
                f"lr {row['lr']:.2e}",
                flush=True,
            )

    summary: dict[str, Any] = {
        "model": describe(model.spec),
        "model_spec": model.spec,
        "task": task,
        "metric": metric_name,
        "best_epoch": state["best_epoch"],
        "best_val": state["best"],
        "epochs_run": state["epoch"],
        "global_step": state["global_step"],
        "train_seconds": state["train_seconds"],
        "spectra_per_second": state["spectra_seen"] / max(state["train_seconds"], 1e-9),
        "device": str(device),
        "precision": precision,
        "world_size": ddp.world,
        "seed": cfg.seed,
        "data_hash": data_hash,
        "config_id": config_id,
        "init_id": init_id,
        "ended_by": "max_steps"
        if stopped
        else "early_stop"
        if state["bad_epochs"] >= cfg.optim.patience
        else "epoch_cap",
        **machine(),
        "git_sha": git_sha(),
        "history": state["history"],
        **{k: profile_model(model)[k] for k in ("params", "macs")},
    }
    if stopped:
        summary["stopped"] = True
        return summary
    if ddp.main:
        best = load_checkpoint(out / "best.pt", map_location=device)
        model.load_state_dict(best["model"])
        ev = {"device": device, "precision": precision, "batch_size": cfg.eval_batch_size}
        summary["val"] = evaluate_split(model, val_data, **ev)
        if cfg.data.test_split in dataset.splits:
            summary["test"] = evaluate_split(model, prepare_split(dataset, cfg.data.test_split, cfg), **ev)
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    if ddp.world > 1:
        dist.barrier()
    return summary


def evaluate_checkpoint(
    checkpoint: str | Path, split: str = "test", *, data_path: str | None = None, device: str = "auto"
) -> dict[str, Any]:
    """Metrics of a saved model on a split of its dataset (or of `data_path`), preprocessed as in training."""
    ckpt = load_checkpoint(checkpoint)
    cfg = from_dict(TrainConfig, ckpt["config"])
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt).to(dev)
    ds = load(data_path or cfg.data.path)
    data = prepare_split(ds, split, cfg)
    precision = "auto" if cfg.precision == "fp16" and dev.type != "cuda" else cfg.precision
    metrics = evaluate_split(model, data, device=dev, precision=resolve_precision(precision, dev))
    return {"checkpoint": str(checkpoint), "split": split, "model": describe(model.spec), **metrics}
