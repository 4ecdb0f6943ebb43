"""`python -m peakmixer predict FILE… --model MODEL --out predictions.csv`: a trained model's predictions for
unlabelled spectra, one CSV row per spectrum (`deploy.predict_files`).

    python -m peakmixer predict spectra/ --model models/synth-ir17_ip.int8.onnx --out predictions.csv
    python -m peakmixer predict my.spc --model runs/x/best.pt --engine onnxruntime

Exit status: 0 when every spectrum was scored, 1 when some file or spectrum was refused (the others are
written), 2 when nothing could be scored or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import sys

from peakmixer.config import add_threads_argument
from peakmixer.data.io.arguments import add_source_arguments, csv_options
from peakmixer.deploy.engines import ENGINES, open_model
from peakmixer.deploy.predict import predict_files


def _cli(args: argparse.Namespace) -> int:
    model = open_model(args.model, args.engine)
    if args.threshold is not None:
        model.threshold = args.threshold
    done = predict_files(
        args.files,
        model,
        args.out,
        min_coverage=args.min_coverage,
        npy_axis=args.npy_axis,
        csv=csv_options(args),
        split=args.split,
        progress=not args.no_progress,
    )
    for w in done.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for n in done.notes:
        print(f"note: {n}", file=sys.stderr)
    for r in done.rejected:
        print(f"refused {r.source}: {r.reason}", file=sys.stderr)
    how = f"{model.engine}, {model.precision}"
    print(f"{len(done.table)} spectra scored ({how}), {len(done.rejected)} refused -> {done.out}")
    return done.exit_code


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", help="spectrum files or folders (JCAMP-DX, SPC, csv, parquet, npy, npz)"
    )
    p.add_argument("--model", required=True, help="a .pt (run or shipped model) or an .onnx from `export`")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="torch or onnxruntime (default: torch for .pt, onnxruntime for .onnx)",
    )
    p.add_argument("--out", default="predictions.csv", help="the CSV to write (default: predictions.csv)")
    p.add_argument(
        "--threshold", type=float, default=None, help="multilabel: probability that predicts a label (0.5)"
    )
    add_source_arguments(p)
    add_threads_argument(p)
    p.set_defaults(func=_cli)
