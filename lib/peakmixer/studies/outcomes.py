"""Each test spectrum's outcome under a run's best model, kept beside a study's rows (the ``_spectra`` detail
table, keyed by run and config id) so that two models can be compared by resampling the test spectra as well
as the seeds: a paired bootstrap over the spectra both were tested on.

An outcome row holds what the run's main metric is made of: ``correct`` (multiclass: accuracy is its mean)
or ``tp``, ``fp``, ``fn`` over the labels (multilabel: micro-F1 = 2 TP / (2 TP + FP + FN) of the sums), with
the same decision rules as `metrics` (argmax; a logit of at least 0, i.e. a probability of at least 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.data.dataset import SpectraDataset
from peakmixer.studies.ip_pairs import N_BOOTSTRAP, spectrum_draws
from peakmixer.train.checkpoint import load_checkpoint, model_from_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.device import resolve_device
from peakmixer.train.prepare import predict, prepare_split

COUNTS = {"multiclass": ("correct",), "multilabel": ("tp", "fp", "fn")}


def spectrum_outcomes(task: str, y: np.ndarray, logits: np.ndarray) -> pd.DataFrame:
    """Per spectrum (its index in the split): the counts its task's main metric is made of."""
    s = np.asarray(logits, dtype=np.float64)
    if task == "multiclass":
        correct = (s.argmax(1) == np.asarray(y, dtype=np.int64)).astype(int)
        return pd.DataFrame({"spectrum": np.arange(len(s)), "correct": correct})
    truth, pred = np.asarray(y).astype(bool), s >= 0.0
    return pd.DataFrame(
        {
            "spectrum": np.arange(len(s)),
            "tp": (pred & truth).sum(1),
            "fp": (pred & ~truth).sum(1),
            "fn": (~pred & truth).sum(1),
        }
    )


def run_outcomes(tc: TrainConfig, dataset: SpectraDataset, precision: str) -> pd.DataFrame:
    """The outcomes of a finished run's best model (``best.pt`` in its folder) on its test split, predicted as
    training evaluated it (`precision`: the one the run computed in)."""
    model = model_from_checkpoint(load_checkpoint(Path(tc.out_dir) / "best.pt"))
    test = prepare_split(dataset, tc.data.test_split, tc)
    device = resolve_device(tc.device)
    batch = tc.eval_batch_size
    logits = predict(model.to(device), test.X, device=device, precision=precision, batch_size=batch)
    return spectrum_outcomes(test.task, test.y.numpy(), logits)


def metric_of(outcomes: pd.DataFrame, task: str, weights: np.ndarray | None = None) -> np.ndarray:
    """The main metric of `outcomes` (rows in spectrum order), once per row of `weights` (draws x spectra:
    how often each spectrum is drawn; one unweighted value without)."""
    w = np.ones((1, len(outcomes))) if weights is None else np.asarray(weights, dtype=np.float64)
    if task == "multiclass":
        return (w @ outcomes["correct"].to_numpy(float)) / w.sum(1)
    tp, fp, fn = (w @ outcomes[c].to_numpy(float) for c in COUNTS["multilabel"])
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def paired_bootstrap(
    a: Sequence[pd.DataFrame], b: Sequence[pd.DataFrame], task: str, *, n: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float, float, float, int]:
    """Arm `a` minus arm `b` (each: its runs' outcomes, one frame per seed) in the main metric averaged over
    each arm's seeds, with a 95% percentile interval when the test spectra are drawn again with replacement,
    the same draw for every run (paired: the arms were tested on the same spectra); and the number of
    spectra. Runs must cover the same spectra."""
    frames = [f.sort_values("spectrum").reset_index(drop=True) for f in (*a, *b)]
    spectra = frames[0]["spectrum"].to_numpy()
    if any(not np.array_equal(f["spectrum"].to_numpy(), spectra) for f in frames):
        raise ValueError("the runs were tested on different spectra: no paired bootstrap")
    draws = spectrum_draws(len(spectra), n=n, seed=seed)
    arm = [frames[: len(a)], frames[len(a) :]]
    point = [np.mean([metric_of(f, task)[0] for f in side]) for side in arm]
    boot = [np.mean([metric_of(f, task, draws) for f in side], axis=0) for side in arm]
    lo, hi = np.percentile(boot[0] - boot[1], [2.5, 97.5])
    return float(point[0] - point[1]), float(lo), float(hi), len(spectra)


__all__ = ["metric_of", "paired_bootstrap", "run_outcomes", "spectrum_outcomes"]
