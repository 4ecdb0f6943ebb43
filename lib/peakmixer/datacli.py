"""`python -m peakmixer data synth | import | download`: the data commands, each thin over its module."""

from __future__ import annotations

import argparse


def _synth(args: argparse.Namespace) -> int:
    from .synth import run_synth

    run_synth(args)
    return 0


def _import(args: argparse.Namespace) -> int:
    from .io import run_import

    return run_import(args)


def _download(args: argparse.Namespace) -> int:
    from .download import run_download

    return run_download(args)


def register(sub: argparse._SubParsersAction) -> None:
    from .download import add_download_arguments
    from .io import add_import_arguments
    from .synth import add_synth_arguments

    data = sub.add_parser("data", help="make, import or download datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("synth", help="write a synthetic benchmark (synth-ir17 | synth-bac30)")
    add_synth_arguments(p)
    p.set_defaults(func=_synth)
    p = data_sub.add_parser(
        "import", help="import spectrum files (JCAMP-DX, SPC, npy, parquet, csv) into one dataset"
    )
    add_import_arguments(p)
    p.set_defaults(func=_import)
    p = data_sub.add_parser("download", help="download / prepare a real dataset (network; never in CI)")
    add_download_arguments(p)
    p.set_defaults(func=_download)
