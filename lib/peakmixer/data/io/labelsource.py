"""Class labels for imported spectra: a labels table, the file names, or a label column of the files.

    --labels-csv labels.csv          a table keyed by `file` (matched on the base name) or `id`, with one
                                     label column (multiclass; `--label-column NAME` for another name) or
                                     several 0/1 columns (multilabel); without a key column, a table of
                                     exactly one row per spectrum gives them in order
    --label-from-name '_(lag|log|stat)_'   the first capture group of a regex on each spectrum's id
    (a csv with a `label` column carries its own)

The task follows from the labels, or `--task` says it. A spectrum without a label is refused by name with the
reason; it is never dropped silently.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.data.dataset import DatasetError
from peakmixer.data.io.base import Rejection


@dataclass(frozen=True)
class LabelSource:
    """Where class labels come from (at most one of table and from_name)."""

    table: str | Path | None = None
    column: str | None = None
    from_name: str | None = None
    task: str | None = None  # multilabel | multiclass: what the labels must give

    @property
    def given(self) -> bool:
        return self.table is not None or self.from_name is not None


@dataclass
class Labels:
    y: np.ndarray  # (n_kept,) class ids or (n_kept, K) 0/1
    names: list[str]
    task: str
    keep: list[int]  # rows of the spectra that got a label


def _file_of(sid: str) -> str:
    return Path(sid.split("#", 1)[0]).name


def _from_table(ids: list[str], source: LabelSource, rejected: list[Rejection], order: list[str]) -> Labels:
    path = Path(source.table)
    try:
        first = path.read_text(encoding="utf-8", errors="replace").splitlines()[:1] or [""]
        try:
            sep = csv.Sniffer().sniff(first[0], delimiters=",;\t").delimiter
        except csv.Error:
            sep = ","  # one column: no delimiter to find
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DatasetError(f"--labels-csv {path}: cannot read ({e})") from None
    table.columns = [c.strip() for c in table.columns]
    lower = {c.lower(): c for c in table.columns}
    key = lower.get("file") or lower.get("id")
    columns = [c for c in table.columns if c != key]
    if source.column:
        if source.column not in table.columns:
            raise DatasetError(
                f"--labels-csv {path}: no column {source.column!r} (it has {list(table.columns)})"
            )
        columns = [source.column]
    elif "label" in lower:
        columns = [lower["label"]]
    if not columns:
        raise DatasetError(f"--labels-csv {path}: no label column")
    if key is None:  # no key: the rows are the spectra as read, refused ones included, in order
        if len(table) != len(order):
            refused = len(order) - len(ids)
            said = f" ({len(ids)} kept, {refused} refused: see below)" if refused else ""
            raise DatasetError(
                f"--labels-csv {path}: no 'file' or 'id' column, and {len(table)} rows for {len(order)} "
                f"spectra read{said} (a table without a key has one row per spectrum, in order)"
            )
        position = {sid: r for r, sid in enumerate(order)}
        rows = {i: position[sid] for i, sid in enumerate(ids)}
    else:
        keys = [str(k).strip() for k in table[key]]
        at = {k: r for r, k in enumerate(keys)}
        rows = {}
        for i, sid in enumerate(ids):
            r = at.get(sid) if key == lower.get("id") else at.get(_file_of(sid), at.get(sid))
            if r is None:
                rejected.append(
                    Rejection(
                        sid,
                        f"no label: {_file_of(sid) if key != lower.get('id') else sid} is not in {path.name}",
                    )
                )
            else:
                rows[i] = r
    values = table[columns]
    binary = len(columns) > 1 and values.isin(["0", "1"]).all().all()
    task = source.task or ("multilabel" if binary else "multiclass")
    keep = sorted(rows)
    if task == "multilabel":
        if not values.isin(["0", "1"]).all().all():
            raise DatasetError(f"--labels-csv {path}: multilabel needs 0/1 columns, {columns} are not")
        y = values.iloc[[rows[i] for i in keep]].to_numpy(dtype=np.uint8)
        return Labels(y, list(columns), task, keep)
    if len(columns) != 1:
        raise DatasetError(f"--labels-csv {path}: multiclass needs one label column, got {columns}")
    labels = {i: str(values.iloc[rows[i], 0]).strip() for i in keep}
    for i in [i for i in keep if not labels[i]]:
        rejected.append(Rejection(ids[i], f"no label: empty cell in {path.name}"))
    return _classes(ids, labels, rejected)


def _classes(ids: list[str], labels: dict[int, str], rejected: list[Rejection]) -> Labels:
    keep = sorted(i for i, v in labels.items() if v)
    names = sorted({labels[i] for i in keep})
    index = {n: k for k, n in enumerate(names)}
    return Labels(np.array([index[labels[i]] for i in keep], dtype=np.int64), names, "multiclass", keep)


def resolve_labels(
    ids: list[str],
    own: list[str | None],
    source: LabelSource,
    rejected: list[Rejection],
    order: list[str] | None = None,
) -> Labels | None:
    """The labels of spectra `ids` (their own `own` labels from a csv column, or `source`); spectra left
    without one are appended to `rejected`. None when there are no labels at all (an unlabelled dataset).
    `order`: every spectrum read, refused ones included, in order (default `ids`): the rows of a table
    without a key column follow it, so a refused spectrum does not shift the labels of the next ones."""
    if source.table is not None and source.from_name is not None:
        raise DatasetError("give --labels-csv or --label-from-name, not both")
    if source.table is not None:
        return _from_table(ids, source, rejected, order if order is not None else ids)
    if source.from_name is not None:
        try:
            pattern = re.compile(source.from_name)
        except re.error as e:
            raise DatasetError(
                f"--label-from-name {source.from_name!r}: not a regular expression ({e})"
            ) from None
        labels = {}
        for i, sid in enumerate(ids):
            m = pattern.search(sid)
            if m is None:
                rejected.append(Rejection(sid, f"no label: the name does not match {source.from_name!r}"))
            else:
                labels[i] = m.group(1) if m.groups() else m.group(0)
        return _classes(ids, labels, rejected)
    if any(v for v in own):  # a label column in the files themselves
        labels = {i: v for i, v in enumerate(own) if v}
        rejected += [Rejection(ids[i], "no label: empty label cell") for i, v in enumerate(own) if not v]
        return _classes(ids, labels, rejected)
    return None
