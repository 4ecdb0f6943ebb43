"""`python -m peakmixer sweep`: run a sweep (resumable; `--workers` processes) and print its summary and
verdict."""

from __future__ import annotations

import argparse

from peakmixer.config import add_threads_argument
from peakmixer.data.dataset import load
from peakmixer.studies.claims import claims, summarize, verdict_text
from peakmixer.studies.sweep import dataset_path, load_sweep, run_sweep
from peakmixer.studies.workers import run_workers


def _cli(args: argparse.Namespace) -> int:
    cfg = load_sweep(args.config, args.set)
    options = {
        "retrain_missing": args.retrain_missing,
        "replace_changed": args.replace_changed,
        "datasets": args.dataset,
    }
    if args.workers > 1:  # each worker gets `--threads` (default: the free cores divided among them)
        table = run_workers(cfg, args.workers, threads=args.threads, **options)
    else:
        table = run_sweep(cfg, **options)
    print(f"{len(table)} runs in {cfg.results_path}")
    print(summarize(table).round(4).to_string(index=False))
    chosen = [ds for ds in cfg.datasets if not args.dataset or ds.name in args.dataset]
    classes = {ds.name: len(load(dataset_path(cfg, ds)).label_names) for ds in chosen}
    print(verdict_text(claims(table, classes)))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="sweep YAML (see params/sweeps/)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. seeds=[0,1]"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel runs, each with the free cores / N threads (BENCHMARKS.md: which pays here)",
    )
    p.add_argument(
        "--dataset", action="append", default=[], metavar="NAME", help="only this dataset's runs (repeatable)"
    )
    p.add_argument(
        "--retrain-missing",
        action="store_true",
        help="train again (and replace) a stored run with out-of-date scores whose model is not here",
    )
    p.add_argument(
        "--replace-changed",
        action="store_true",
        help="train again (and replace) a stored run made with other settings, code or data; its old row "
        "stays until then",
    )
    add_threads_argument(p, "each worker's CPU threads")
    p.set_defaults(func=_cli)
