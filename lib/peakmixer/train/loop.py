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
import pickle
import platform
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from peakmixer.architecture import DEFAULTS
from peakmixer.config import (
    BadInput,
    ConfigError,
    MissingFile,
    apply_overrides,
    from_dict,
    load_yaml,
    to_dict,
)
from peakmixer.data.dataset import (
    SpectraDataset,
    data_identity,
    file_sha256,
    input_grid,
    load,
    minmax,
    random_splits,
    spectrum_kind,
)
from peakmixer.data.split_record import check_scored_split, record_splits
from peakmixer.files import atomic, write_csv, write_text
from peakmixer.ip import IPModel, IPOutput, attach_ip, ip_loss, pathway_metrics
from peakmixer.metrics import compute_metrics, main_metric
from peakmixer.models import PeakModel, build_model, code_fingerprint, describe, profile_model
from peakmixer.provenance import git_sha

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
class IPConfig:
    mode: Literal["off", "trainable", "frozen"] = "off"  # the interpretable path (peakmixer.ip)
    weight: float = 1.0  # λ: weight of the class-specific (pred_2) term of the loss
    channels: int = 0  # C_ip, channels of the IP map and matrix (0: the extractor's width)


@dataclass
class ModelConfig:
    """The model section of a config: the architecture (defaults: `models.DEFAULTS`) and its IP."""

    extractor: str = DEFAULTS.extractor
    mixer: str = DEFAULTS.mixer
    width: int = DEFAULTS.width
    blocks: int | None = DEFAULTS.blocks
    mixer_layers: int = DEFAULTS.mixer_layers
    mlp_layers: int = DEFAULTS.mlp_layers
    input_length: int = DEFAULTS.input_length
    hidden: int = DEFAULTS.hidden
    mlp_hidden: int = DEFAULTS.mlp_hidden
    dropout: float = DEFAULTS.dropout
    shared_norm: bool = DEFAULTS.shared_norm
    heads: int = DEFAULTS.heads
    ip: IPConfig = field(default_factory=IPConfig)


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
    progress: bool = True  # a bar and a line per epoch
    # seconds: a status line at least this often while training, also with progress off (0: none)
    progress_every: float = 20.0
    threads: int = 0  # CPU threads for this run (0: as the process has them; see `default_threads`)


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
        raise ConfigError(f"device {name!r} requested but CUDA is not available here (use auto or cpu)")
    return device


def cpu_fields(cpuinfo: str | None = None) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (`cpuinfo`: its text, read when not given; {} where
    there is none): the others repeat them."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    first = cpuinfo.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, sep, v in (line.partition(":") for line in first.splitlines()) if sep}


# oneDNN runs bf16 convolutions and matmuls natively only where the CPU has bf16 instructions and oneDNN is
# allowed to use them: ONEDNN_MAX_CPU_ISA (or its old name DNNL_MAX_CPU_ISA) below these names emulates bf16.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL")


def onednn_isa_cap() -> str:
    """oneDNN's instruction-set cap for this process (``ONEDNN_MAX_CPU_ISA``, or its old name
    ``DNNL_MAX_CPU_ISA``); empty where none is set."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_has_native_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """True where bf16 arithmetic runs in hardware: the CPU has AVX512-BF16 or AMX-BF16 and oneDNN's ISA is
    not capped below them (`isa_cap`: that cap, read from ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``
    when not given). Elsewhere torch emulates bf16: measured 8x slower than fp32 on an AVX2-only path, 20x
    on a 2-core AMD EPYC without AVX512-BF16 (BENCHMARKS.md)."""
    flags = set(cpu_fields(cpuinfo).get("flags", "").split())
    cap = (onednn_isa_cap() if isa_cap is None else isa_cap).strip().upper()
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and (not cap or cap.startswith(_BF16_ISAS))


def cpu_supports_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """True on CPUs where bf16 autocast pays off: those with AMX tiles, and AMD CPUs with AVX512-BF16, both
    used natively (`cpu_has_native_bf16`). On an Intel CPU, AVX512-BF16 alone does not: measured on a 2-core
    Xeon without AMX, bf16 autocast trained at 0.8x and inferred at 0.7x fp32's speed, while on a 2-core AMD
    EPYC with AVX512-BF16 it trained at 2.1x and inferred at 1.8x (BENCHMARKS.md, each in its time).
    `cpuinfo`: the text of /proc/cpuinfo (read when not given)."""
    fields = cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    pays = "amx_bf16" in flags or ("avx512_bf16" in flags and fields.get("vendor_id") == "AuthenticAMD")
    return pays and cpu_has_native_bf16(cpuinfo, isa_cap)


def default_threads(workers: int = 1) -> int:
    """The CPU threads each of `workers` processes side by side computes with when none are asked for
    (``--threads``, the ``threads`` config key): ``OMP_NUM_THREADS`` where set, else the cores this process
    may use less those already busy (the 1-minute load average, rounded down, leaving at least one), divided
    among the workers; at least 1. Why: threads that wait for a core another process holds stall each other
    (measured on a loaded 2-core machine: one training step 5.9 s at 2 threads, 0.034 s at 1), while on an
    idle machine every core helps."""
    workers = max(workers, 1)
    asked = os.environ.get("OMP_NUM_THREADS", "")
    if asked.isdigit() and int(asked) > 0:
        return max(1, int(asked) // workers)
    cores = usable_cores()
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # no load average here
        busy = 0
    return max(1, (cores - min(busy, cores - 1)) // workers)


_TOLD: set[str] = set()  # notices already printed by this process


def _notice_once(text: str) -> None:
    if text not in _TOLD:
        _TOLD.add(text)
        print(text, file=sys.stderr, flush=True)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run computes in. ``auto``: bf16 on CUDA and on CPUs where it pays off
    (`cpu_supports_bf16`), fp16 (+ GradScaler) on older CUDA, else fp32.

    An explicit ``bf16`` on a CPU without native bf16 (`cpu_has_native_bf16`) runs in fp32 with a one-line
    notice on stderr (once per process), never silently in emulated bf16 at a tenth of the speed; the run
    then records fp32 as its precision, so its identity and its row say what it computed."""
    if name != "auto":
        if name == "fp16" and device.type != "cuda":
            raise ConfigError("precision fp16 needs CUDA (use bf16 or fp32 on CPU)")
        if name == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            _notice_once(
                "[precision] bf16 asked for, but this CPU has no native bf16 (no avx512_bf16 or amx_bf16 in "
                "use): emulated bf16 is 8-20x slower, so this runs in fp32 (precision: fp32 silences this)"
            )
            return "fp32"
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
        return minmax(X)[0]
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


def check_trainable(ds: SpectraDataset, train_data: Prepared, val_data: Prepared, cfg: TrainConfig) -> None:
    """Refuse what would train into nonsense — no labels, one class, an empty split — and warn when a
    class is missing from the validation or test split (its scores there mean nothing)."""
    where = ds.source or cfg.data.path or "dataset"
    names = train_data.label_names
    if not names:
        raise ConfigError(
            f"{where}: no labels to learn; import with --labels (SMILES), --labels-csv or --label-from-name"
        )
    for what, data in (("training", train_data), ("validation", val_data)):
        if len(data.X) == 0:
            raise ConfigError(f"{where}: the {what} split is empty; make splits with `peakmixer data split`")
    if train_data.task != "multiclass":
        if float(train_data.y.sum()) == 0:
            raise ConfigError(f"{where}: no spectrum in the training split carries any label")
        unseen = [n for n, c in zip(names, train_data.y.sum(0).tolist(), strict=True) if c == 0]
        if unseen:
            more = ", ..." if len(unseen) > 8 else ""
            warnings.warn(
                f"{where}: {len(unseen)} of {len(names)} labels have no example in the training split "
                f"({', '.join(unseen[:8])}{more}): the model cannot learn them and never predicts them",
                stacklevel=2,
            )
        return
    seen = np.unique(train_data.y.numpy())
    if len(names) < 2 or len(seen) < 2:
        raise ConfigError(f"{where}: one class only ({[names[int(k)] for k in seen]}): nothing to tell apart")
    target = ds.y if cfg.data.target == "y" else ds.extras[cfg.data.target]
    present = {"validation": set(np.unique(val_data.y.numpy()).tolist())}
    if cfg.data.test_split in ds.splits:
        present["test"] = set(np.unique(target[ds.splits[cfg.data.test_split]]).tolist())
    for split, got in present.items():
        lacking = [names[k] for k in range(len(names)) if k not in got]
        if lacking:
            warnings.warn(f"{where}: the {split} split has no spectrum of {lacking}", stacklevel=2)


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
    with atomic(path) as tmp:
        torch.save(state, tmp)


class CheckpointError(BadInput, ValueError):
    """A file that is not a readable peakmixer checkpoint (truncated, corrupt, foreign)."""


# What torch's zip reader says of a truncated or foreign archive (measured on torch 2.13).
_NOT_A_CHECKPOINT = ("PytorchStreamReader", "inline_container", "zip archive", "central directory")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only); a file that is
    not one (truncated, corrupt, another format, missing our keys) is a `CheckpointError` naming it."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: checkpoint not found")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        raise CheckpointError(f"{path}: not a readable checkpoint (not a torch file: it starts {head!r})")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    except RuntimeError as e:
        # torch's zip reader says a damaged or foreign archive this way; any other RuntimeError is a bug
        if not any(sign in str(e) for sign in _NOT_A_CHECKPOINT):
            raise
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})") from None
    missing = [k for k in ("model", "model_spec", "config") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a peakmixer checkpoint (no {', '.join(missing)})")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> PeakModel | IPModel:
    """Rebuild a model (with its interpretable path, if it has one) from a checkpoint's spec and weights."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    spec = dict(ckpt["model_spec"])
    extractor, mixer, ip = spec.pop("extractor"), spec.pop("mixer"), spec.pop("ip", None)
    model = build_model(extractor, mixer, **spec)
    if ip is not None:
        model = attach_ip(model, mode=ip["mode"], task=ip["task"], channels=ip["channels"])
    model.load_state_dict(ckpt["model"])
    return model


# What a shipped model keeps of its checkpoint: enough to rebuild, identify and evaluate it.
EXPORT_KEYS = (
    "model",
    "model_spec",
    "config",
    "config_id",
    "task",
    "label_names",
    "metrics",
    "data_hash",
    "input_axis",
    "synthetic_data",
)


def shipped_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors rounded to fp16, as `export_model` ships them (half the size; a model loads
    them back into fp32). Attribution scores in the store are made on weights rounded the same way, so
    that re-scoring a shipped model reproduces them exactly."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def export_model(checkpoint: str | Path, out: str | Path) -> Path:
    """A slim copy of a trained model for shipping (``models/``): fp16 weights (`shipped_weights`), spec,
    config, run identity, labels and validation metrics; no optimiser state or RNG. Written atomically;
    loads like a checkpoint (`model_from_checkpoint`)."""
    ckpt = load_checkpoint(checkpoint)
    ckpt.setdefault("input_axis", torch.from_numpy(checkpoint_axis(ckpt)))
    if "synthetic_data" not in ckpt:  # made before checkpoints said so: ask the training data, if here
        path = from_dict(TrainConfig, ckpt["config"]).data.path
        known = bool(path) and Path(path).exists()
        ckpt["synthetic_data"] = bool(load(path).provenance.get("synthetic")) if known else None
    missing = [k for k in EXPORT_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{checkpoint}: not a peakmixer checkpoint (missing {missing})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # runs saved before checkpoints kept these have none
    kept = {k: ckpt[k] for k in (*EXPORT_KEYS, "split_record", "spectrum_kind") if k in ckpt}
    save_checkpoint(out, kept | {"model": shipped_weights(ckpt["model"])})
    return out


def checkpoint_axis(ckpt: dict[str, Any]) -> np.ndarray:
    """The wavenumber axis a model's inputs lie on. Checkpoints carry it; for one made before they did,
    it is derived from the training data named in its config."""
    if "input_axis" in ckpt:
        return np.asarray(ckpt["input_axis"], dtype=np.float64)
    cfg = from_dict(TrainConfig, ckpt["config"])
    if not cfg.data.path or not Path(cfg.data.path).exists():
        raise ConfigError("the checkpoint has no input axis and its training data are not here to derive it")
    return input_grid(load(cfg.data.path).axis, cfg.model.input_length)


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


def build_from_config(cfg: TrainConfig, n_classes: int, task: str = "multilabel") -> PeakModel | IPModel:
    """The model a config describes, for `n_classes` outputs; `task` decides the IP's sampling."""
    m = cfg.model
    model = build_model(
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
    return attach_ip(model, mode=m.ip.mode, task=task, channels=m.ip.channels)


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
_VOLATILE = (
    "out_dir",
    "progress",
    "progress_every",
    "threads",  # recorded with the run (a row's `threads`), as where it ran
    "checkpoint_every",
    "max_steps",
    "eval_batch_size",
    "device",
)


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
    """The identity of a checkpoint a run starts from, so that another start is another run: its run's
    config id and which of its weights — ``ID:best`` (a run's best model is fixed by its config),
    ``ID:last:STEP`` (a resume point), ``ID:export`` (fp16-rounded, shipped) — or, for a checkpoint made
    elsewhere, the file's sha256."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    run = ckpt.get("config_id")
    if not run:
        return "sha256:" + file_sha256(path)
    if "optimizer" not in ckpt:
        return f"{run}:export"
    if path.name == "last.pt":
        return f"{run}:last:{ckpt['state']['global_step']}"
    return f"{run}:best" if path.name == "best.pt" else "sha256:" + file_sha256(path)


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
    task, names = label_space(dataset, cfg)
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = build_from_config(cfg, len(names), task)
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
    cpu = cpu_fields().get("model name") or platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return {"cpu": cpu, "gpu": gpu, "torch": torch.__version__, "threads": torch.get_num_threads()}


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
    config_id = config_fingerprint(
        cfg,
        data_identity(dataset, cfg.data.path),
        model_code=code_fingerprint(model),
        device_type=device.type,
        precision=precision,
        init_id=init_id,
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
    _set_rng_state(ckpt["rng"], s.device)
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
            "rng": _rng_state(s.device),
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
        with autocast(s.device, s.precision):
            out = s.objective.forward(s.net, X[idx], y[idx])
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
_MADE = ("git_sha", "finished_at", "cpu", "gpu", "torch", "threads")


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


def evaluate_checkpoint(
    checkpoint: str | Path,
    split: str = "test",
    *,
    data_path: str | None = None,
    device: str = "auto",
    allow_changed_splits: bool = False,
    predictions: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics of a saved model on a split of its dataset (or of `data_path`), preprocessed as in training.

    A split holding spectra the run trained or validated on is refused (`split_record.SplitChanged`) unless
    `allow_changed_splits`; ``split_check`` in the result says how the split relates to the run's own, and
    ``warnings`` what a reader must know (`metric_warnings`). `predictions`: a CSV to write per spectrum."""
    ckpt = load_checkpoint(checkpoint)
    cfg = from_dict(TrainConfig, ckpt["config"])
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt).to(dev)
    path = data_path or cfg.data.path
    raw = load(path)
    said = check_scored_split(
        ckpt,
        raw,
        split,
        run=str(checkpoint),
        train_split=cfg.data.train_split,
        allow_changed=allow_changed_splits,
    )
    ds = raw.onto(checkpoint_axis(ckpt), name=str(path))
    names = label_space(ds, cfg)[1]
    if names != list(ckpt["label_names"]):
        raise ConfigError(
            f"{path}: its classes ({len(names)}: {', '.join(names[:4])}...) are not the checkpoint's "
            f"({len(ckpt['label_names'])}: {', '.join(ckpt['label_names'][:4])}...)"
        )
    data = prepare_split(ds, split, cfg)
    precision = "auto" if cfg.precision == "fp16" and dev.type != "cuda" else cfg.precision
    logits = predict(model, data.X, device=dev, precision=resolve_precision(precision, dev))
    metrics = compute_metrics(data.task, data.y.numpy(), logits, label_names=data.label_names)
    if predictions is not None:
        ids = [ds.ids[i] for i in ds.split_rows(split)]
        write_predictions(Path(predictions), ids, data, logits)
    check = {"split_check": said or "the split the run was made with"}
    return {
        "checkpoint": str(checkpoint),
        "split": split,
        "model": describe(model.spec),
        **check,
        **metrics,
        "warnings": metric_warnings(data.task, metrics),
    }


def metric_warnings(task: str, metrics: dict[str, Any]) -> list[str]:
    """What a reader of these metrics must know: a multilabel model no better than predicting no label at
    all (its Hamming accuracy, per label and spectrum), labels never seen in this split."""
    said = []
    if task == "multilabel":
        baseline = metrics["all_negative"]["hamming_accuracy"]
        if metrics["hamming_accuracy"] <= baseline:
            said.append(
                f"Hamming accuracy {metrics['hamming_accuracy']:.3f} is no better than predicting no label "
                f"at all ({baseline:.3f}), a baseline that scores micro-F1 0"
            )
        absent = [n for n, m in metrics["per_label"].items() if m["support"] == 0]
        if absent:
            said.append(
                f"{len(absent)} labels have no positive spectrum in this split; their F1 means nothing"
            )
    elif metrics["accuracy"] <= 1 / max(len(metrics["label_names"]), 1):
        said.append(
            f"accuracy {metrics['accuracy']:.3f} is at or below chance (1/{len(metrics['label_names'])})"
        )
    return said


def class_probabilities(task: str, logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class probabilities from logits (..., K): a sigmoid per label (multilabel), else a softmax."""
    z = torch.as_tensor(logits).float()
    return (torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=-1)).numpy()


def write_predictions(path: Path, ids: list[str], data: Prepared, logits: np.ndarray) -> Path:
    """Per spectrum: its id, true and predicted labels, and each class's probability, as CSV."""
    names = data.label_names
    y = data.y.numpy()
    probs = class_probabilities(data.task, logits)
    if data.task == "multilabel":
        truth = ["; ".join(names[k] for k in np.flatnonzero(row)) for row in y]
        predicted = ["; ".join(names[k] for k in np.flatnonzero(row >= 0.5)) for row in probs]
    else:
        truth = [names[int(k)] for k in y]
        predicted = [names[int(k)] for k in probs.argmax(1)]
    table = pd.DataFrame({"spectrum": ids, "true": truth, "predicted": predicted})
    table = pd.concat([table, pd.DataFrame(probs.round(6), columns=[f"p({n})" for n in names])], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_csv(path, table)
