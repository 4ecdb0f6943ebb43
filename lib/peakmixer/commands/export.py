"""`python -m peakmixer export`: a trained model for shipping (``.pt``) or for deployment (``.onnx``).

    python -m peakmixer export --checkpoint runs/x/best.pt --out models/x.pt
    python -m peakmixer export --checkpoint runs/x/best.pt --format onnx --out x.onnx
    python -m peakmixer export --checkpoint runs/x/best.pt --format onnx --int8 --calibrate data/x.npz \
        --out x.int8.onnx

An ONNX export is checked when written (fp32: logits within 1e-4 of torch's on the test split; int8: the
main metric within ``--bound`` of fp32's), and refused, writing nothing, when the check fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from peakmixer.config import ConfigError
from peakmixer.deploy.onnx_export import (
    INT8_BOUND,
    ExportCheck,
    describe_allowed,
    export_onnx,
    quantize_int8,
)
from peakmixer.synth.benchmarks import model_data
from peakmixer.train.checkpoint import export_model


def describe_check(check: ExportCheck) -> str:
    """One line for a terminal."""
    if check.metric is None:
        diff = check.max_abs_logit_diff
        return f"largest |logit - torch's| {diff:.2g} on {check.n_spectra} {check.split} spectra"
    return (
        f"{check.metric} on {check.n_spectra} {check.split} spectra: fp32 {check.fp32:.4f}, int8 "
        f"{check.int8:.4f} ({check.change:+.4f}; allowed "
        f"{describe_allowed(check.metric, check.n_spectra, check.bound)}); same prediction for "
        f"{check.agreement:.1%} of spectra"
    )


def _cli(args: argparse.Namespace) -> int:
    if args.calibrate and not args.int8:
        raise ConfigError("--calibrate DATASET goes with --int8 (the fp32 export is checked on --data)")
    if args.format == "pt":
        if args.int8:
            raise ConfigError("--int8 needs --format onnx")
        path = export_model(args.checkpoint, args.out)
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
        return 0
    if args.int8:
        data = model_data(args.checkpoint, args.calibrate or args.data)
        check = quantize_int8(args.checkpoint, args.out, data, bound=args.bound)
    else:
        check = export_onnx(args.checkpoint, args.out, model_data(args.checkpoint, args.data))
    size = Path(args.out).stat().st_size / 1e6
    print(f"{args.out}: {size:.2f} MB; {describe_check(check)}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a run's best.pt or a models/*.pt")
    p.add_argument("--out", required=True, help="output file, e.g. models/NAME.pt or NAME.onnx")
    p.add_argument("--format", choices=["pt", "onnx"], default="pt", help="pt (fp16 weights) or onnx")
    p.add_argument("--int8", action="store_true", help="with --format onnx: static int8 (QDQ)")
    p.add_argument(
        "--calibrate",
        default=None,
        metavar="DATASET",
        help="with --int8: the dataset file whose training split calibrates (its test split checks); "
        "default: the model's own",
    )
    p.add_argument(
        "--data", default=None, help="dataset file the fp32 export is checked on (default: the model's own)"
    )
    p.add_argument(
        "--bound",
        type=float,
        default=INT8_BOUND,
        help=f"largest |change| of the main metric int8 may make (default {INT8_BOUND})",
    )
    p.set_defaults(func=_cli)
