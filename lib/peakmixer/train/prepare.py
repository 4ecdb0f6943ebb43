"""From a dataset split to tensors the model takes: normalisation, label space, the train/val rows, checks
that a split can be trained on, the loss, batched prediction and a split's metrics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from peakmixer.config import (
    ConfigError,
)
from peakmixer.data.dataset import SpectraDataset, minmax, random_splits
from peakmixer.metrics import compute_metrics
from peakmixer.train.config import TrainConfig
from peakmixer.train.device import autocast


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
