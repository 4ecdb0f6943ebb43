"""Delimited text spectra, in either of two layouts (the delimiter is sniffed: comma, semicolon, tab).

- wide: the header row holds the wavenumbers and every following row is one spectrum (``file#row``);
  header cells that are not numbers (a sample-name column, say) and their columns are ignored;
- two columns: one spectrum as ``x, y`` lines, with or without a header line.

A header of column indices 0, 1, 2... is refused: it carries no wavenumbers.
"""

from __future__ import annotations

import csv as stdcsv
from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.io.base import Item, ReadError, Spectra, ascending


def _float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv(path: str | Path) -> list[Item]:
    """Spectra of a wide or two-column CSV file; `ReadError` for any other layout."""
    path = Path(path)
    name = path.name
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ReadError(name, "empty file")
    try:
        delimiter = stdcsv.Sniffer().sniff(lines[0], delimiters=",;\t").delimiter
    except stdcsv.Error:
        delimiter = ","
    header = next(stdcsv.reader([lines[0]], delimiter=delimiter))
    numeric = [(j, v) for j, cell in enumerate(header) if (v := _float(cell)) is not None]
    if len(numeric) > 2:
        return _wide(path, name, delimiter, numeric)
    return _two_columns(path, name, delimiter, header_row=len(numeric) < 2)


def _wide(path: Path, name: str, delimiter: str, numeric: list[tuple[int, float]]) -> list[Item]:
    cols = [j for j, _ in numeric]
    x = np.array([v for _, v in numeric])
    if np.array_equal(x, np.arange(x.size)):
        raise ReadError(name, "header holds column indices 0..N-1, not wavenumbers")
    try:
        Y = pd.read_csv(path, sep=delimiter, usecols=cols, dtype=np.float64).to_numpy()
    except ValueError as e:
        raise ReadError(name, f"non-numeric value in a spectrum column ({e})") from None
    x, Y = ascending(name, x, Y)
    finite = np.isfinite(Y).all(axis=1)
    items: list[Item] = []
    if finite.any():
        rows = np.flatnonzero(finite)
        items.append(Spectra(x=x, Y=Y[finite], ids=[f"{name}#{i}" for i in rows], meta={"format": "csv"}))
    items += [ReadError(f"{name}#{i}", "NaN, Inf or missing values") for i in np.flatnonzero(~finite)]
    return items


def _two_columns(path: Path, name: str, delimiter: str, header_row: bool) -> list[Item]:
    try:
        table = pd.read_csv(path, sep=delimiter, header=0 if header_row else None, dtype=np.float64)
    except ValueError:
        table = None  # non-numeric cells: not a spectrum table
    if table is None or table.shape[1] != 2:
        raise ReadError(
            name, "unrecognised CSV layout: expected wavenumbers in the header row or two columns x, y"
        )
    xy = table.to_numpy()
    if not np.isfinite(xy).all():
        raise ReadError(name, f"{int((~np.isfinite(xy)).sum())} NaN, Inf or missing values")
    x, Y = ascending(name, xy[:, 0], xy[None, :, 1])
    return [Spectra(x=x, Y=Y, ids=[name], meta={"format": "csv"})]
