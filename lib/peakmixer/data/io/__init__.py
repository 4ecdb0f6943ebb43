"""Spectrum file readers (one module per format) and the batch importer.

Every reader returns `Spectra` blocks (ascending cm-1 axis, absorbance-like IR ordinates) and raises
or returns `ReadError` (a `ValueError` carrying ``source`` and ``reason``) for what it cannot use.
`import_files` turns many files into one `peakmixer.data.dataset.SpectraDataset`.
"""

from peakmixer.data.io.arguments import add_import_arguments, run_import
from peakmixer.data.io.base import ReadError, Spectra
from peakmixer.data.io.batch import (
    ImportReport,
    ReadSpectra,
    Rejection,
    import_files,
    read_file,
    read_spectra,
)
from peakmixer.data.io.conform import resample
from peakmixer.data.io.csv import read_csv
from peakmixer.data.io.jcamp import read_jcamp
from peakmixer.data.io.npy import read_npy
from peakmixer.data.io.parquet import read_parquet
from peakmixer.data.io.spc import read_spc

__all__ = [
    "ImportReport",
    "ReadError",
    "ReadSpectra",
    "Rejection",
    "Spectra",
    "add_import_arguments",
    "import_files",
    "read_csv",
    "read_file",
    "read_jcamp",
    "read_npy",
    "read_parquet",
    "read_spc",
    "read_spectra",
    "resample",
    "run_import",
]
