"""`python -m peakmixer sim2real` and what it writes: the sim-to-real tables and figure with their sidecars
(`write_outputs`), and with ``--store`` the results store's tables (`sim2real.store_result`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from peakmixer.config import add_threads_argument
from peakmixer.paths import FIGURES_DIR
from peakmixer.report.figures import save_figure, save_table
from peakmixer.report.sim2real_figure import plot_sim2real
from peakmixer.studies import sim2real
from peakmixer.studies.sim2real import (
    DEFAULT_N,
    RealSet,
    Sim2RealConfig,
    Sim2RealResult,
    run_sim2real,
    store_result,
)
from peakmixer.studies.sim2real_summary import summary


def write_outputs(result: Sim2RealResult, out_dir: Path, *, store: bool = False) -> list[Path]:
    """Tables and the figure with sidecars into `out_dir`; with `store`, also the tables into ``results/``."""
    params = {
        "versions": sorted(result.synthetic),
        "seeds": sorted(result.table["seed"].unique().tolist()),
        "real_sets": list(result.real),
    }
    common = {"params": params, "data": result.hashes, "synthetic": True}
    paths = save_table(
        result.table,
        out_dir,
        "sim2real",
        caption="Trained on synthetic IR only, scored on real labelled IR spectra (with trivial baselines)",
        **common,
    )
    paths += save_table(
        result.labels,
        out_dir,
        "sim2real_labels",
        caption="Per-label precision and recall on real spectra of models trained on synthetic IR only",
        **common,
    )
    paths += save_table(
        result.predictions,
        out_dir,
        "sim2real_predictions",
        caption="Per model and real spectrum: its true and its predicted functional groups",
        **common,
    )
    paths += save_table(
        result.bands,
        out_dir,
        "sim2real_bands",
        caption="A textbook rule (no training): per label, ROC-AUC of the height where tables put its bands",
        **common,
    )
    paths += save_figure(
        plot_sim2real(result),
        out_dir,
        "sim2real_figure",
        caption="A real spectrum beside the nearest synthetic one of its label set; per-label recall on it",
        **common,
    )
    if store:
        paths += store_result(result)
    return paths


def _cli(args: argparse.Namespace) -> int:
    cfg = Sim2RealConfig(
        real=[RealSet.parse(r) for r in args.real],
        versions=args.versions,
        seeds=args.seeds,
        n=args.n,
        overrides=args.set,
    )
    result = run_sim2real(cfg)
    for p in write_outputs(result, args.out, store=args.store):
        print(p)
    print(summary(result.table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = sim2real.__doc__.split("\n\n")[0]
    p.add_argument(
        "--real",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="real spectra: a JCAMP folder with molecules.csv, or a parquet file with SMILES",
    )
    versions = Sim2RealConfig().versions
    p.add_argument("--versions", nargs="+", default=versions, help="synth-ir17 generator versions")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="synthetic spectra (same model and epochs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training config override")
    p.add_argument("--out", type=Path, default=FIGURES_DIR / "sim2real", help="output folder")
    p.add_argument(
        "--store",
        action="store_true",
        help="also write sim2real.csv and its _labels, _predictions and _bands tables into results/",
    )
    add_threads_argument(p)
    p.set_defaults(func=_cli)
