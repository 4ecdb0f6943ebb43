"""Delimited text spectra (the delimiter is sniffed: comma, semicolon, tab; `CsvOptions` can say otherwise).

Layouts:

- rows (wide): the header row holds the wavenumbers and every following row is one spectrum (``file#row``);
  a column headed ``id`` (or `CsvOptions.id_column`) gives the spectrum ids, a column headed ``label`` (or
  `CsvOptions.label_column`) its labels; any other non-numeric column is named in the import's notes;
- columns: the first column holds the wavenumbers and every other column is one spectrum (header = ids);
- two columns: one spectrum as ``x, y`` lines, with or without a header line.

A header of column indices 0, 1, 2… carries no wavenumbers: give the axis with `x_start` / `x_end` (evenly
spaced) or `axis_file` (one number per line), else it is refused. Decimal commas: `decimal=","`.
"""

from __future__ import annotations

import csv as stdcsv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.data.io.base import Item, ReadError, Spectra, ascending

ID_NAMES = ("id", "sample", "name", "file")
LABEL_NAMES = ("label", "labels", "class")


@dataclass(frozen=True)
class CsvOptions:
    """How to read a delimited text file when sniffing is not enough."""

    delimiter: str | None = None  # None: sniffed
    decimal: str = "."
    layout: str = "auto"  # auto | rows | columns
    x_start: float | None = None  # with x_end: the axis of a header of column indices
    x_end: float | None = None
    axis_file: str | None = None  # or: the axis, one value per line
    id_column: str | None = None
    label_column: str | None = None


def _float(cell: str, decimal: str = ".") -> float | None:
    try:
        return float(cell.strip().replace(decimal, ".") if decimal != "." else cell)
    except ValueError:
        return None


def read_csv(path: str | Path, options: CsvOptions | None = None) -> list[Item]:
    """Spectra of a delimited text file in one of the layouts above; `ReadError` for any other."""
    options = options or CsvOptions()
    path = Path(path)
    name = path.name
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ReadError(name, "empty file")
    delimiter = options.delimiter or _sniff(lines[0], options.decimal)
    header = next(stdcsv.reader([lines[0]], delimiter=delimiter))
    if options.layout == "columns":
        return _columns(path, name, delimiter, options)
    numeric = [(j, v) for j, cell in enumerate(header) if (v := _float(cell, options.decimal)) is not None]
    if options.layout == "rows" or len(numeric) > 2:
        return _wide(path, name, delimiter, header, numeric, options)
    return _two_columns(path, name, delimiter, header_row=len(numeric) < 2, decimal=options.decimal)


def _sniff(line: str, decimal: str) -> str:
    try:
        found = stdcsv.Sniffer().sniff(line, delimiters=",;\t").delimiter
    except stdcsv.Error:
        found = ","
    return ";" if found == "," and decimal == "," else found


def _axis(name: str, x: np.ndarray, options: CsvOptions) -> np.ndarray:
    """The wavenumbers of the spectrum columns: the header's, or those the options give."""
    given = options.axis_file is not None or options.x_start is not None
    if options.axis_file is not None:
        axis = np.loadtxt(options.axis_file, dtype=np.float64).ravel()
        if axis.size != x.size:
            raise ReadError(
                name, f"axis file {options.axis_file} has {axis.size} values for {x.size} columns"
            )
        return axis
    if options.x_start is not None:
        if options.x_end is None:
            raise ReadError(name, "x_start needs x_end")
        return np.linspace(options.x_start, options.x_end, x.size)
    if not given and np.array_equal(x, np.arange(x.size)):
        raise ReadError(
            name,
            "header holds column indices 0..N-1, not wavenumbers: give the axis (--x-start/--x-end or "
            "--csv-axis FILE)",
        )
    return x


def _wide(
    path: Path, name: str, delimiter: str, header: list[str], numeric: list[tuple[int, float]], o: CsvOptions
) -> list[Item]:
    cols = [j for j, _ in numeric]
    if len(cols) < 3:
        raise ReadError(name, "too few numeric header cells for spectra in rows")
    x = _axis(name, np.array([v for _, v in numeric]), o)
    others = {header[j].strip(): j for j in range(len(header)) if j not in cols}
    lower = {k.lower(): k for k in others}
    id_col = o.id_column or next((lower[k] for k in ID_NAMES if k in lower), None)
    label_col = o.label_column or next((lower[k] for k in LABEL_NAMES if k in lower), None)
    for wanted, what in ((o.id_column, "id"), (o.label_column, "label")):
        if wanted and wanted not in others:
            raise ReadError(name, f"no {what} column {wanted!r} (non-numeric columns: {sorted(others)})")
    unused = sorted(set(others) - {id_col, label_col} - {""})
    try:
        table = pd.read_csv(path, sep=delimiter, decimal=o.decimal, dtype=str, keep_default_na=False)
        Y = table.iloc[:, cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    except ValueError as e:
        raise ReadError(name, f"unreadable table ({e})") from None
    x, Y = ascending(name, x, Y)
    ids = [f"{name}#{i}" for i in range(len(Y))]
    if id_col:
        ids = [str(v).strip() or f"{name}#{i}" for i, v in enumerate(table.iloc[:, others[id_col]])]
    labels = [str(v).strip() or None for v in table.iloc[:, others[label_col]]] if label_col else None
    finite = np.isfinite(Y).all(axis=1)
    meta = {"format": "csv", "ignored_columns": unused} if unused else {"format": "csv"}
    meta["order"] = list(ids)  # every row's id, refused ones included: a keyless labels table follows it
    items: list[Item] = []
    if finite.any():
        rows = np.flatnonzero(finite)
        items.append(
            Spectra(
                x=x,
                Y=Y[finite],
                ids=[ids[i] for i in rows],
                labels=[labels[i] for i in rows] if labels else None,
                meta=meta,
            )
        )
    items += [ReadError(ids[i], "NaN, Inf, missing or non-numeric values") for i in np.flatnonzero(~finite)]
    return items


def _columns(path: Path, name: str, delimiter: str, o: CsvOptions) -> list[Item]:
    """Spectra in columns: the first column is the axis, every other column one spectrum (header = id)."""
    try:
        table = pd.read_csv(path, sep=delimiter, decimal=o.decimal)
        values = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    except ValueError as e:
        raise ReadError(name, f"unreadable table ({e})") from None
    if values.shape[1] < 2:
        raise ReadError(name, "spectra in columns need an axis column and at least one spectrum column")
    x = _axis(name, values[:, 0], o) if o.axis_file or o.x_start is not None else values[:, 0]
    if not np.isfinite(x).all():
        raise ReadError(name, "the first column (the axis) has non-numeric values")
    Y = values[:, 1:].T
    ids = [str(c).strip() for c in table.columns[1:]]
    x, Y = ascending(name, x, Y)
    finite = np.isfinite(Y).all(axis=1)
    items: list[Item] = []
    if finite.any():
        rows = np.flatnonzero(finite)
        items.append(Spectra(x=x, Y=Y[finite], ids=[ids[i] for i in rows], meta={"format": "csv"}))
    items += [ReadError(ids[i], "NaN, Inf or missing values") for i in np.flatnonzero(~finite)]
    return items


def _two_columns(path: Path, name: str, delimiter: str, header_row: bool, decimal: str = ".") -> list[Item]:
    try:
        table = pd.read_csv(
            path, sep=delimiter, header=0 if header_row else None, dtype=np.float64, decimal=decimal
        )
    except ValueError:
        table = None  # non-numeric cells: not a spectrum table
    if table is None or table.shape[1] != 2:
        raise ReadError(
            name,
            "unrecognised CSV layout: expected wavenumbers in the header row, two columns x, y, or spectra "
            "in columns (--layout columns); a semicolon file with decimal commas needs --decimal ,",
        )
    xy = table.to_numpy()
    if not np.isfinite(xy).all():
        raise ReadError(name, f"{int((~np.isfinite(xy)).sum())} NaN, Inf or missing values")
    x, Y = ascending(name, xy[:, 0], xy[None, :, 1])
    return [Spectra(x=x, Y=Y, ids=[name], meta={"format": "csv"})]
