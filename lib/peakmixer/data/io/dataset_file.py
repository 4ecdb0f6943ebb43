"""A peakmixer dataset file (``.npz``, written by `SpectraDataset.save`) as a source of spectra, like any
spectrum file: all its rows, or one named split (``--split``). Its ids become ``file#id``; a multiclass
dataset's class names travel as the spectra's own labels and its SMILES as theirs, so ``data import`` of a
split keeps them (a multilabel dataset's labels can be remade from its SMILES with ``--labels``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from peakmixer.data.dataset import DatasetError, load, spectrum_kind
from peakmixer.data.io.base import Item, ReadError, Spectra

MAGIC = b"PK\x03\x04"


def is_dataset_file(path: Path, head: bytes) -> bool:
    """A zip holding a dataset header (an ``.npz`` of plain arrays is not one)."""
    if not head.startswith(MAGIC):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return "header.json" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def is_dataset_path(path: str | Path, *, by_name: bool = True) -> bool:
    """A peakmixer dataset file: a zip with a dataset header (`is_dataset_file`) or, with `by_name`, any
    file named ``.npz`` (a missing or damaged one too: `load` then names what is wrong)."""
    path = Path(path)
    if by_name and path.suffix.lower() == ".npz":
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return is_dataset_file(path, f.read(8))


def read_dataset(path: str | Path, split: str | None = None) -> list[Item]:
    """The spectra of `path` (of its split `split` when given) as one `Spectra` block."""
    path = Path(path)
    try:
        ds = load(path)
        part = ds.split(split) if split else ds
    except DatasetError as e:
        raise ReadError(path.name, str(e).removeprefix(f"{path}: ")) from None
    labels = (
        [part.label_names[int(k)] for k in part.y] if part.task == "multiclass" and part.n_classes else None
    )
    smiles = part.extras.get("smiles")
    return [
        Spectra(
            x=part.axis,
            Y=np.asarray(part.X, dtype=np.float64),
            ids=[f"{path.name}#{i}" for i in part.ids],
            smiles=[str(s) or None for s in smiles] if smiles is not None else None,
            labels=labels,
            meta={"format": "peakmixer dataset", "split": split or "all", "task": part.task}
            | ({"kind": kind} if (kind := spectrum_kind(ds)) else {})
            | ({"preprocess": done} if (done := ds.provenance.get("preprocess")) else {})
            | ({"scaled": "minmax"} if ds.provenance.get("normalize") == "minmax" else {}),
        )
    ]
