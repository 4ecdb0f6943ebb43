"""What a run was trained, validated and tested on, and whether a split it is later scored on is that one.

A checkpoint records a 64-bit fingerprint of every spectrum of its training and validation rows and of
each named split of its dataset (`record_splits`). Before a run is scored on a split, `check_scored_split`
compares:

- the same spectra as the run's split of that name: scored, nothing said;
- another set of spectra of which none was trained or validated on (another dataset's test split): scored,
  with a one-line note;
- a set holding spectra the run trained or validated on (a dataset re-split after training): refused with
  `SplitChanged`, unless the caller allows it (``--allow-changed-splits``), and then said in the output.
  Scoring the training split itself is never refused.

A spectrum's fingerprint is its id and its values as stored. A benchmark made by `synth.benchmarks` counts by
its ids alone: they follow from its recipe, while its values may differ in the last bit between CPU
instruction sets (as in `data.data_identity`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from peakmixer.config import BadInput
from peakmixer.data.dataset import SYNTH_GENERATOR, SpectraDataset


class SplitChanged(BadInput, ValueError):
    """The split a run is scored on holds spectra it was trained or validated on."""


def row_digests(ds: SpectraDataset, rows: np.ndarray | None = None) -> np.ndarray:
    """The fingerprints (uint64) of `rows` of `ds` (all rows when None), in row order."""
    rows = np.arange(len(ds)) if rows is None else np.asarray(rows, dtype=np.int64)
    by_id = ds.provenance.get("synthetic") and ds.provenance.get("generator") == SYNTH_GENERATOR
    out = np.empty(len(rows), dtype=np.uint64)
    for j, i in enumerate(rows):
        h = hashlib.blake2b(ds.ids[i].encode(), digest_size=8)
        if not by_id:
            h.update(np.ascontiguousarray(ds.X[i]).tobytes())
        out[j] = int.from_bytes(h.digest(), "little")
    return out


def _tensor(digests: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.unique(digests).view(np.int64))


def record_splits(
    ds: SpectraDataset, train_rows: str | np.ndarray, val_rows: str | np.ndarray
) -> dict[str, Any]:
    """What a checkpoint keeps as ``split_record``: ``trained_on`` (the training and validation rows'
    fingerprints) and ``splits`` (each named split's), as sorted int64 tensors, which
    `torch.load(weights_only=True)` reads back."""
    digests = row_digests(ds)

    def rows_of(part: str | np.ndarray) -> np.ndarray:
        return ds.splits[part] if isinstance(part, str) else np.asarray(part)

    return {
        "trained_on": {
            "train": _tensor(digests[rows_of(train_rows)]),
            "val": _tensor(digests[rows_of(val_rows)]),
        },
        "splits": {name: _tensor(digests[rows]) for name, rows in sorted(ds.splits.items())},
    }


def check_scored_split(
    ckpt: dict[str, Any],
    ds: SpectraDataset,
    split: str,
    *,
    run: str,
    train_split: str = "train",
    allow_changed: bool = False,
) -> str:
    """Whether scoring the run of `ckpt` (named `run` in messages) on `split` of `ds` is honest (module doc).

    Returns a one-line note for the output ("" when the split is the run's own); raises `SplitChanged`."""
    record = ckpt.get("split_record")
    if record is None:
        return (
            f"{run} was saved before runs recorded their splits: split {split!r} is not checked against them"
        )
    scored = np.unique(row_digests(ds, ds.split_rows(split)))
    own = record["splits"].get(split)
    if own is not None and np.array_equal(scored, own.numpy().view(np.uint64)):
        return ""
    seen = np.union1d(*(record["trained_on"][k].numpy().view(np.uint64) for k in ("train", "val")))
    shared = int(np.isin(scored, seen).sum())
    where = ds.source or "the dataset"
    if shared == 0:
        return (
            f"{where}: split {split!r} is not the one {run} was made with ({len(scored)} spectra, none of "
            "them trained or validated on)"
        )
    if split == train_split:
        return f"{where}: split {split!r} differs from the one {run} was trained on"
    said = (
        f"{where}: split {split!r} holds {shared} of its {len(scored)} spectra that {run} was trained or "
        "validated on (re-split after training?)"
    )
    if not allow_changed:
        raise SplitChanged(
            f"{said}; score it on the split it was made with, or pass --allow-changed-splits to score anyway"
        )
    return f"{said}; scored anyway (--allow-changed-splits): its scores are not a held-out estimate"
