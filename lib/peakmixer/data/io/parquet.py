"""Parquet tables with one spectrum per row: the Alberts et al. 2024 multimodal spectroscopic dataset.

That dataset stores IR spectra in the list column ``ir_spectra`` (1800 values on an ascending
400-4000 cm-1 grid, per its ``meta_data/spectrum_dimensions.json``) next to a ``smiles`` column, which
is carried along for labelling. Only the needed columns are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from peakmixer.data.io.base import Item, ReadError, Spectra, ascending

MAGIC = b"PAR1"
# Spectrum column -> (first, last) wavenumber of its evenly spaced ascending axis.
KNOWN_COLUMNS: dict[str, tuple[float, float]] = {"ir_spectra": (400.0, 4000.0)}


def read_parquet(path: str | Path) -> list[Item]:
    """Rows of a known spectrum column as ``file#row`` spectra; rows that are null or ragged are refused."""
    path = Path(path)
    name = path.name
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ReadError(name, f"cannot read parquet ({e})") from None
    column = next((c for c in KNOWN_COLUMNS if c in schema.names), None)
    if column is None:
        raise ReadError(name, f"no known spectrum column (expected one of {sorted(KNOWN_COLUMNS)})")
    columns = [column] + (["smiles"] if "smiles" in schema.names else [])
    table = pq.read_table(path, columns=columns)
    lists = table.column(column).combine_chunks()
    if not pa.types.is_list(lists.type) and not pa.types.is_large_list(lists.type):
        raise ReadError(name, f"column {column!r} is {lists.type}, not a list of values")
    lengths = lists.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    good = valid & (lengths > 0)
    if not good.any():
        raise ReadError(name, f"column {column!r} holds no spectra")
    length = int(np.bincount(lengths[good]).argmax())  # the common length; others are ragged rows
    keep = good & (lengths == length)
    values = lists.filter(pa.array(keep)).flatten().to_numpy(zero_copy_only=False)
    Y = np.asarray(values, dtype=np.float64).reshape(-1, length)
    x, Y = ascending(name, np.linspace(*KNOWN_COLUMNS[column], length), Y)
    rows = np.flatnonzero(keep)
    smiles = None
    if "smiles" in columns:
        column_smiles = table.column("smiles").to_pylist()
        smiles = [column_smiles[i] for i in rows]
    items: list[Item] = [
        Spectra(x=x, Y=Y, ids=[f"{name}#{i}" for i in rows], smiles=smiles, meta={"format": "parquet"})
    ]
    for i in np.flatnonzero(~keep):
        why = "null spectrum" if not valid[i] else f"{lengths[i]} values instead of {length}"
        items.append(ReadError(f"{name}#{i}", why))
    return items
