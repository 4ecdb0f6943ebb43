"""Helpers the synthetic generators share: independent random streams and in-place min-max scaling."""

from __future__ import annotations

import numpy as np


def child_seed(seed: int, i: int) -> int:
    """An independent stream's seed: the generator's and the split permutation's (one seed in both would
    correlate them)."""
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def minmax_rows(X: np.ndarray, comp: np.ndarray | None) -> None:
    """Scale each row of X to [0, 1] in place; components by the same factor (the offset is not theirs)."""
    lo = X.min(axis=1, keepdims=True)
    scale = 1.0 / np.maximum(X.max(axis=1, keepdims=True) - lo, np.float32(1e-12))
    X -= lo
    X *= scale
    if comp is not None:
        comp *= scale[:, :, None]
