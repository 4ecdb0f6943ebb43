"""NumPy ``.npy`` spectra matrices, as distributed by Ho et al. 2019 (csho33/bacteria-ID).

A matrix file holds (N, L) spectra, one per row, without an axis; the axis comes from a 1-D
``wavenumbers.npy`` beside it (or an explicit ``axis_file``). The Ho et al. axis is stored descending
(1792.4 -> 381.98 cm-1); like any descending axis it is flipped, together with the columns. Their layout
pairs each ``X_<split>.npy`` with ``y_<split>.npy``, the class ids of its rows: where that file is beside
it, the rows carry those ids as their own labels (``00``, ``01``, …: zero-padded so that the classes keep
Ho et al.'s numeric order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from peakmixer.data.io.base import Item, ReadError, Spectra, ascending

AXIS_FILE = "wavenumbers.npy"
MAGIC = b"\x93NUMPY"


def load_array(path: Path, name: str) -> np.ndarray:
    """`np.load` without pickles, with the failure turned into a `ReadError`."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle; a corrupt header also lands here
        raise ReadError(name, f"cannot read .npy ({e})") from None


def read_npy(path: str | Path, axis_file: str | Path | None = None) -> list[Item]:
    """Rows of an (N, L) matrix as ``file#row`` spectra, on `axis_file` or the ``wavenumbers.npy`` beside."""
    path = Path(path)
    name = path.name
    X = load_array(path, name)
    if X.ndim == 1:
        raise ReadError(name, f"1-D array of {X.size} values (labels or an axis?), not a spectra matrix")
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ReadError(name, f"expected a numeric (N, L) matrix, got {X.dtype} with shape {X.shape}")
    axis_path = Path(axis_file) if axis_file is not None else path.with_name(AXIS_FILE)
    if not axis_path.exists():
        raise ReadError(name, f"no wavenumber axis: put {AXIS_FILE} beside the file or give --npy-axis FILE")
    x = load_array(axis_path, axis_path.name)
    if x.ndim != 1 or x.size != X.shape[1]:
        raise ReadError(
            name, f"axis {axis_path.name} has shape {x.shape}, the matrix has {X.shape[1]} columns"
        )
    x, Y = ascending(name, x, X)
    ids = [f"{name}#{i}" for i in range(len(Y))]
    labels = _ho_labels(path, len(Y))
    meta = {"format": "npy", "axis_file": axis_path.name} | (
        {"labels_file": f"y_{name[2:]}"} if labels else {}
    )
    return [Spectra(x=x, Y=Y, ids=ids, labels=labels, meta=meta)]


def _ho_labels(path: Path, n: int) -> list[str] | None:
    """The class ids in ``y_<split>.npy`` beside ``X_<split>.npy`` (Ho et al.'s layout), else None."""
    if not path.name.startswith("X_") or not (labels := path.with_name("y_" + path.name[2:])).exists():
        return None
    y = load_array(labels, labels.name)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.number) or not np.all(np.mod(y, 1) == 0):
        raise ReadError(path.name, f"{labels.name}: expected {n} integer class ids, got {y.dtype} {y.shape}")
    return [f"{int(v):02d}" for v in y]
