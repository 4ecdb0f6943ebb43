"""Command-line options shared by the commands that read spectrum files (``data import``, ``explain``,
``evaluate --data``) and the ``data import`` run itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peakmixer.data import labels as labelsets
from peakmixer.data.dataset import (
    DatasetError,
)
from peakmixer.data.io.batch import ImportReport, import_files
from peakmixer.data.io.csv import CsvOptions
from peakmixer.data.io.labelsource import LabelSource
from peakmixer.data.preprocess import Pipeline, load_pipeline


def add_source_arguments(parser: argparse.ArgumentParser, *, split: bool = True) -> None:
    """How spectra are read, the same in every command that reads them (``data import``, ``explain``,
    ``evaluate``): files, folders, dataset files with ``--split``, ``.npy`` with an axis file, delimited
    text options. `split`: add ``--split`` (a command with its own leaves it out)."""
    if split:
        parser.add_argument(
            "--split",
            help="of a peakmixer dataset file (.npz) among the sources: only this split (default: all)",
        )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=0.8,
        help="least fraction of the target axis a spectrum must cover",
    )
    parser.add_argument(
        "--npy-axis", type=Path, help="axis file for .npy matrices (default: wavenumbers.npy beside them)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    text = parser.add_argument_group("delimited text files (csv)")
    text.add_argument("--x-start", type=float, help="with --x-end: the axis of a header of column indices")
    text.add_argument("--x-end", type=float)
    text.add_argument("--csv-axis", type=Path, help="or: the axis in a file, one value per line")
    text.add_argument("--delimiter", help="column separator (default: sniffed from , ; tab)")
    text.add_argument("--decimal", default=".", help="decimal mark, e.g. ',' (default '.')")
    text.add_argument("--layout", default="auto", choices=["auto", "rows", "columns"], help="spectra in")
    text.add_argument("--id-column", help="the column of spectrum ids (default: one named id/sample/name)")
    text.add_argument("--label-column", help="a csv's own label column (with --labels-csv: that table's)")


def csv_options(args: argparse.Namespace, own_labels: bool = True) -> CsvOptions:
    """The `CsvOptions` of `add_source_arguments`' options; `own_labels`: ``--label-column`` names a csv's
    own label column (else a labels table's)."""
    return CsvOptions(
        delimiter=args.delimiter,
        decimal=args.decimal,
        layout=args.layout,
        x_start=args.x_start,
        x_end=args.x_end,
        axis_file=str(args.csv_axis) if args.csv_axis else None,
        id_column=args.id_column,
        label_column=args.label_column if own_labels else None,
    )


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``python -m peakmixer data import``."""
    parser.add_argument(
        "sources",
        nargs="+",
        type=Path,
        help="spectrum files or folders (JCAMP-DX, SPC, npy, parquet, csv) or dataset files (.npz)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="dataset file to write; a report goes to OUT.report.json"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    parser.add_argument(
        "--axis",
        default="ir",
        help="target axis: ir (1024 points, 400-4000 cm-1; the default), ho (Ho et al.), or START:END:POINTS",
    )
    parser.add_argument(
        "--normalize",
        default="minmax",
        choices=["minmax", "none"],
        help="per-spectrum scaling (default: minmax; with --preprocess the pipeline's own)",
    )
    parser.add_argument(
        "--preprocess",
        metavar="PRESET_OR_FILE",
        help="a preprocessing pipeline applied to each spectrum first (`data preprocess --list`)",
    )
    add_source_arguments(parser)
    add_label_arguments(parser)


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the labels of imported spectra come from (``data import``, and ``evaluate`` of files)."""
    labels = parser.add_argument_group("labels")
    labels.add_argument("--smiles", type=Path, help="CSV with 'file' (or 'id') and 'smiles' columns")
    labels.add_argument(
        "--labels", help="label set: nist17, qm9s957 (after 'data download qm9s'), or a SMARTS list file"
    )
    labels.add_argument(
        "--labels-csv", type=Path, help="class labels: a table keyed by 'file' or 'id' (or in spectrum order)"
    )
    labels.add_argument("--label-from-name", metavar="REGEX", help="the class is the regex's first group")
    labels.add_argument("--task", choices=["multiclass", "multilabel"], help="what the labels must give")


def import_from_args(
    args: argparse.Namespace,
    out: Path,
    *,
    axis: str,
    overwrite: bool = False,
    preprocess: Pipeline | None = None,
) -> ImportReport:
    """`import_files` with the options of `add_source_arguments` and `add_label_arguments`; `preprocess`
    (else ``--preprocess``, where the command has it): the pipeline each spectrum goes through first."""
    if preprocess is None and getattr(args, "preprocess", None):
        preprocess = load_pipeline(args.preprocess)
    return import_files(
        args.sources,
        out=out,
        smiles_csv=args.smiles,
        labels=args.labels,
        axis=axis,
        normalize=None if getattr(args, "normalize", "minmax") == "none" else "minmax",
        min_coverage=args.min_coverage,
        npy_axis=args.npy_axis,
        progress=not args.no_progress,
        label_source=LabelSource(args.labels_csv, args.label_column, args.label_from_name, args.task),
        overwrite=overwrite,
        split=getattr(args, "split", None),
        preprocess=preprocess,
        # --label-column names the table's column when there is a table, else the csv's own
        csv=csv_options(args, own_labels=not args.labels_csv),
    )


def run_import(args: argparse.Namespace) -> int:
    """Run ``data import``: 0 when a dataset was written, 1 when nothing was kept, 2 for bad arguments."""
    try:
        report = import_from_args(args, args.out, axis=args.axis, overwrite=args.overwrite)
    except (DatasetError, labelsets.LabelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.out else 1
