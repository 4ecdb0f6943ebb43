"""A saved model scored on a split (`evaluate_checkpoint`), the warnings a reader of its metrics needs, and
the per-spectrum predictions CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from peakmixer.config import (
    ConfigError,
    from_dict,
)
from peakmixer.data.dataset import load
from peakmixer.data.preprocess import conform_dataset
from peakmixer.data.split_record import check_scored_split
from peakmixer.files import write_csv
from peakmixer.metrics import compute_metrics
from peakmixer.models import describe
from peakmixer.train.checkpoint import checkpoint_axis, load_checkpoint, model_from_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.device import resolve_device, resolve_precision
from peakmixer.train.prepare import Prepared, label_space, predict, prepare_split


def evaluate_checkpoint(
    checkpoint: str | Path,
    split: str = "test",
    *,
    data_path: str | None = None,
    device: str = "auto",
    allow_changed_splits: bool = False,
    predictions: str | Path | None = None,
    logits_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics of a saved model on a split of its dataset (or of `data_path`), preprocessed as in training.

    A split holding spectra the run trained or validated on is refused (`split_record.SplitChanged`) unless
    `allow_changed_splits`; ``split_check`` in the result says how the split relates to the run's own, and
    ``warnings`` what a reader must know (`metric_warnings`). `predictions`: a CSV to write per spectrum.
    `logits_of`: what computes the logits of (N, 1, L) float32 inputs instead of the torch model (``evaluate
    --engine onnxruntime`` passes `deploy.open_model(checkpoint, "onnxruntime").logits`)."""
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
    ds = conform_dataset(raw, ckpt.get("preprocess")).onto(checkpoint_axis(ckpt), name=str(path))
    names = label_space(ds, cfg)[1]
    if names != list(ckpt["label_names"]):
        raise ConfigError(
            f"{path}: its classes ({len(names)}: {', '.join(names[:4])}...) are not the checkpoint's "
            f"({len(ckpt['label_names'])}: {', '.join(ckpt['label_names'][:4])}...)"
        )
    data = prepare_split(ds, split, cfg)
    precision = "auto" if cfg.precision == "fp16" and dev.type != "cuda" else cfg.precision
    if logits_of is None:
        logits = predict(model, data.X, device=dev, precision=resolve_precision(precision, dev))
    else:
        logits = logits_of(data.X.numpy())
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
