"""Splits by group (no group in two splits) and `split_dataset`, which writes a dataset's splits, random or
by group, stratified or not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from peakmixer.data.dataset import DatasetError, SpectraDataset, random_splits


def group_splits(
    groups: np.ndarray, fractions: dict[str, float], seed: int, stratify: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Splits that keep every group (replicate, patient, measurement day) on one side: the groups are
    shuffled and dealt to the splits in proportion to their spectra; with `stratify`, the groups of each
    (majority) class are dealt separately, so every class reaches every split it can."""
    rng = np.random.default_rng(seed)
    names = list(fractions)
    total = sum(fractions.values())
    uniq, inverse = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(uniq))
    if stratify is None:
        strata = np.zeros(len(uniq), dtype=int)
    else:
        strata = np.array([np.bincount(stratify[inverse == g]).argmax() for g in range(len(uniq))])
    out: dict[str, list[int]] = {k: [] for k in names}
    for c in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == c))
        done = 0.0
        share = sizes[members].sum()
        cuts = np.cumsum([fractions[k] / total for k in names])
        for g in members:  # each group to the split its cumulative share falls in
            where = min(int(np.searchsorted(cuts, (done + sizes[g] / 2) / share)), len(names) - 1)
            out[names[where]].append(g)
            done += sizes[g]
    return {k: np.sort(np.flatnonzero(np.isin(inverse, v))) for k, v in out.items()}


def split_dataset(
    ds: SpectraDataset,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    stratify: bool = False,
    group: str | None = None,
) -> SpectraDataset:
    r"""`ds` with named ``train`` / ``val`` / ``test`` splits (replacing those), random with `seed`.

    `stratify` keeps the class proportions (multiclass); `group` keeps groups on one side: the name of an
    extra (a per-spectrum array, e.g. ``patient``) or a regex whose first capture group, found in each
    spectrum's id, names its group (``_(rep\d)_`` for replicates).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise DatasetError(
            f"fractions must be three shares (train, val, test) adding to 1, got {list(fractions)}"
        )
    shares = dict(zip(("train", "val", "test"), fractions, strict=True))
    strata = None
    if stratify:
        if ds.task != "multiclass":
            raise DatasetError("--stratify needs class labels (a multiclass dataset)")
        strata = np.asarray(ds.y)
    if group is None:
        splits = random_splits(len(ds), shares, seed, strata)
    else:
        splits = group_splits(_groups(ds, group), shares, seed, strata)
    empty = [k for k, v in splits.items() if len(v) == 0 and shares[k] > 0]
    if empty:
        raise DatasetError(
            f"{ds.source or 'dataset'}: the {empty} split would be empty; give more spectra or groups"
        )
    return replace(
        ds,
        splits=splits,
        provenance={
            **ds.provenance,
            "splits": {"fractions": list(fractions), "seed": seed, "stratify": stratify, "group": group},
        },
    )


def _groups(ds: SpectraDataset, group: str) -> np.ndarray:
    if group in ds.extras:
        return np.asarray(ds.extras[group])
    try:
        pattern = re.compile(group)
    except re.error as e:
        raise DatasetError(f"--group {group!r}: neither an extra of the dataset nor a regex ({e})") from None
    found = [pattern.search(i) for i in ds.ids]
    missing = [i for i, m in zip(ds.ids, found, strict=True) if m is None]
    if missing:
        raise DatasetError(f"--group {group!r} does not match {len(missing)} ids, e.g. {missing[:3]}")
    return np.array([m.group(1) if m.groups() else m.group(0) for m in found])
