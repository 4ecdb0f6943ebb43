"""How a synthetic-trained model is scored on real spectra: thresholds fitted on the synthetic validation
split, the oracle-threshold ceiling, metrics per label, per-label ROC-AUC, and the two trivial scorers that
know the real set's label shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from peakmixer.metrics import multilabel_metrics

SCORERS = ("model", "majority", "prevalence")
METRICS = ("micro_f1", "macro_f1", "emr", "hamming_accuracy")
# the README table's columns before the synthetic score
SHOWN_METRICS = ("micro_f1", "macro_f1", "emr", "mean_auc", "ceiling_micro_f1")
MIN_CLASS = 5  # a label's ROC-AUC on a real set needs this many spectra with it and as many without
_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def fit_thresholds(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per label, the grid threshold with the best F1 on (y, probs); 0.5 for a label without positives."""
    y = np.asarray(y).astype(bool)
    out = np.full(y.shape[1], 0.5)
    for k in range(y.shape[1]):
        if not y[:, k].any():
            continue
        pred = probs[:, k, None] >= _GRID
        tp = (pred & y[:, k, None]).sum(0)
        f1 = 2 * tp / np.maximum(2 * tp + (pred & ~y[:, k, None]).sum(0) + (~pred & y[:, k, None]).sum(0), 1)
        out[k] = _GRID[int(np.argmax(f1))]
    return out


def threshold_ceiling(y: np.ndarray, probs: np.ndarray) -> float:
    """The highest micro-F1 that per-label thresholds reach on (y, probs) themselves: on a real set, a ceiling
    for any threshold rule that does not see its labels (ours, `fit_thresholds` on synthetic validation
    spectra, included). Exact: micro-F1 = N / D with N = sum of 2 tp and D = sum of (2 tp + fp + fn) over the
    labels, so Dinkelbach's iteration (maximise N - lambda D, which each label does on its own, then set
    lambda to the new ratio) reaches the global best over every label's candidate cuts (its scores, and
    "never")."""
    y = np.asarray(y).astype(bool)
    terms = []  # per label and cut: (2 tp, 2 tp + fp + fn = predicted + positives) when predicted >= the cut
    for k in range(y.shape[1]):
        pred = probs[:, k, None] >= np.append(np.unique(probs[:, k]), np.inf)
        tp = (pred & y[:, k, None]).sum(0)
        terms.append(np.stack([2 * tp, pred.sum(0) + y[:, k].sum()], axis=1).astype(float))
    best = 0.0
    while True:
        picked = sum(t[np.argmax(t[:, 0] - best * t[:, 1])] for t in terms)
        ratio = picked[0] / max(picked[1], 1.0)
        if ratio <= best + 1e-12:
            return best
        best = ratio


def score(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Micro- / macro-F1, EMR, Hamming accuracy and per-label precision / recall / support of 0/1 `pred`."""
    m = multilabel_metrics(y, np.asarray(pred, dtype=float), logits=False, label_names=list(names))
    return {k: m[k] for k in METRICS} | {"per_label": m["per_label"]}


def ranking(y: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per label, the ROC-AUC of `probs` against `y` (ties count one half), or NaN where `y` has fewer than
    `MIN_CLASS` positives or negatives (module docstring)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(bool)
    out = {}
    for k, name in enumerate(names):
        positives = int(y[:, k].sum())
        enough = min(positives, len(y) - positives) >= MIN_CLASS
        out[name] = float(roc_auc_score(y[:, k], probs[:, k])) if enough else float("nan")
    return out


def baselines(y: np.ndarray, names: Sequence[str], draws: int = 200, seed: int = 0) -> dict[str, dict]:
    """``majority`` and ``prevalence`` (module docstring), scored on the set whose shares they use."""
    y = np.asarray(y).astype(bool)
    share = y.mean(0)
    majority = score(y, np.tile(share >= 0.5, (len(y), 1)), names)
    rng = np.random.default_rng(seed)
    runs = [score(y, rng.random(y.shape) < share, names) for _ in range(draws)]
    prevalence = {k: float(np.mean([r[k] for r in runs])) for k in METRICS}
    prevalence["per_label"] = {
        n: {m: float(np.mean([r["per_label"][n][m] for r in runs])) for m in ("precision", "recall", "f1")}
        | {"support": int(y[:, j].sum())}
        for j, n in enumerate(names)
    }
    return {"majority": majority, "prevalence": prevalence}
