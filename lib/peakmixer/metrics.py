"""Split-level metrics, computed over the whole split (never averaged over batches).

Multilabel (the paper's Fig. 1): micro / macro / samples F1, Hamming accuracy ("Accuracy"), exact-match
ratio (EMR), a per-label report, and the all-negative baseline that puts Hamming accuracy in context.
Multiclass (bacteria): accuracy, macro F1 and the confusion matrix.

Macro-F1, one rule for both tasks: the mean F1 over the labels (classes) that occur in the truth or in the
predictions of the split; a label absent from both says nothing about the model and is not counted (it
would count as F1 = 0 otherwise). This is scikit-learn's rule for multiclass and, for multilabel, its rule
restricted to the labels present.
"""

from __future__ import annotations

import numpy as np


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN), 0 where the denominator is 0 (sklearn's zero_division=0)."""
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(np.shape(tp), dtype=float), where=denom > 0)


def _macro(f1: np.ndarray, present: np.ndarray) -> float:
    """Macro-F1 over the labels present in the truth or the predictions (the module's one rule)."""
    return float(f1[present].mean()) if present.any() else 0.0


def multilabel_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    logits: bool = True,
    label_names: list[str] | None = None,
) -> dict:
    """Metrics for multi-hot `y_true` (N, K) and `scores` (N, K).

    `scores` are logits (thresholded at logit(threshold)) when `logits` is true, probabilities otherwise.
    Returns floats plus ``per_label`` (precision, recall, f1, support per label) and ``all_negative``
    (Hamming accuracy and EMR of predicting no label at all).
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 2:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} must both be (N, K)")
    cut = np.log(threshold / (1 - threshold)) if logits else threshold
    pred = s >= cut
    tp = (pred & y).sum(0).astype(float)
    fp = (pred & ~y).sum(0).astype(float)
    fn = (~pred & y).sum(0).astype(float)
    sample_tp = (pred & y).sum(1).astype(float)
    sample_f1 = _f1(sample_tp, (pred & ~y).sum(1), (~pred & y).sum(1))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    names = label_names or [str(i) for i in range(y.shape[1])]
    return {
        "n": int(y.shape[0]),
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": _macro(_f1(tp, fp, fn), (tp + fp + fn) > 0),
        "samples_f1": float(sample_f1.mean()),
        "hamming_accuracy": float((pred == y).mean()),
        "emr": float((pred == y).all(1).mean()),
        "all_negative": {"hamming_accuracy": float((~y).mean()), "emr": float((~y).all(1).mean())},
        "per_label": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for name, p, r, f, n in zip(names, precision, recall, _f1(tp, fp, fn), y.sum(0), strict=True)
        },
    }


def multiclass_metrics(
    y_true: np.ndarray, scores: np.ndarray, *, label_names: list[str] | None = None
) -> dict:
    """Accuracy, macro F1 and confusion matrix (rows = truth, columns = prediction) for class ids
    `y_true` (N,) and `scores` (N, K) (logits or probabilities; argmax is taken)."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(scores)
    if s.ndim != 2 or y.shape != (s.shape[0],):
        raise ValueError(f"y_true must be (N,) and scores (N, K); got {y.shape} and {s.shape}")
    k = s.shape[1]
    pred = s.argmax(1)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    f1 = _f1(tp, cm.sum(0) - tp, cm.sum(1) - tp)
    present = cm.sum(1) + cm.sum(0) > 0
    return {
        "n": int(y.shape[0]),
        "accuracy": float((pred == y).mean()),
        "macro_f1": _macro(f1, present),
        "confusion": cm.tolist(),
        "label_names": label_names or [str(i) for i in range(k)],
    }


def compute_metrics(task: str, y_true: np.ndarray, scores: np.ndarray, **kwargs) -> dict:
    """Dispatch on the task: ``multilabel`` or ``multiclass``."""
    if task == "multilabel":
        return multilabel_metrics(y_true, scores, **kwargs)
    if task == "multiclass":
        return multiclass_metrics(y_true, scores, **kwargs)
    raise ValueError(f"unknown task {task!r}")


def within(delta: float, allowed: float) -> bool:
    """|`delta`| <= `allowed`, up to rounding: metrics are means of counts (3 of 150 spectra is
    0.020000000000000018 as a difference of two accuracies and 0.019999999999999962 as three sds over
    seeds 120, 121 and 122 of 150), so an equal count must not read as a larger one."""
    return abs(delta) <= allowed + 1e-9


def main_metric(task: str) -> str:
    """The model-selection metric: micro-F1 for multilabel, accuracy for multiclass."""
    return "micro_f1" if task == "multilabel" else "accuracy"
