"""`python -m peakmixer data synth | import | split | info | download | modes`: the data commands, thin
over their modules."""

from __future__ import annotations

import argparse
from pathlib import Path


def _synth(args: argparse.Namespace) -> int:
    from peakmixer.synth.benchmarks import run_synth

    run_synth(args)
    return 0


def _import(args: argparse.Namespace) -> int:
    from peakmixer.data.io import run_import

    return run_import(args)


def _split(args: argparse.Namespace) -> int:
    from peakmixer.config import ConfigError
    from peakmixer.data.dataset import DatasetError, describe_dataset, load, refuse_to_replace
    from peakmixer.data.splits import split_dataset

    try:
        fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        raise ConfigError(f"--fractions {args.fractions!r}: three numbers, e.g. 0.7,0.15,0.15") from None
    source = load(args.dataset)
    out = Path(args.out or args.dataset)
    # Splitting a file in place that has no splits yet loses nothing; replacing splits or a file does.
    if out != Path(args.dataset):
        refuse_to_replace(out, args.overwrite)
    elif source.splits and not args.overwrite:
        raise DatasetError(
            f"{out}: holds splits already ({', '.join(sorted(source.splits))}); --overwrite replaces them "
            "(runs trained on them will refuse to be scored on the new ones), or --out writes another file"
        )
    ds = split_dataset(source, fractions, seed=args.seed, stratify=args.stratify, group=args.group)
    out = ds.save(out)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in ds.splits.items())
    print(f"{out}: splits {sizes}")
    if args.verbose:
        print(describe_dataset(ds))
    return 0


def _info(args: argparse.Namespace) -> int:
    from peakmixer.data.dataset import describe_dataset, load

    ds = load(args.dataset)
    print(describe_dataset(ds))
    if args.plot:
        import matplotlib

        matplotlib.use("agg")
        from peakmixer.report.dataset_figures import plot_class_means

        plot_class_means(ds, str(args.dataset)).savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"mean ± sd per class: {args.plot}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from peakmixer.data.prepare import run_download

    return run_download(args)


def _modes(args: argparse.Namespace) -> int:
    from peakmixer.synth.ir17_realistic import molecule_pool
    from peakmixer.synth.normalmodes import build_table, resource_path, save_table

    smiles = molecule_pool().smiles[: args.first or None]  # --first 0: all
    table = build_table(smiles, workers=args.workers)
    out = args.out or resource_path()
    save_table(table, out)
    print(f"{out}: {len(table.wavenumber)} modes of {table.treated.sum()} of {len(smiles)} molecules")
    return 0


def add_arguments(data: argparse.ArgumentParser) -> None:
    from peakmixer.data.io import add_import_arguments
    from peakmixer.data.prepare import add_download_arguments
    from peakmixer.synth.benchmarks import add_synth_arguments

    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("synth", help="write a synthetic benchmark (synth-ir17 | synth-bac30)")
    add_synth_arguments(p)
    p.set_defaults(func=_synth)
    p = data_sub.add_parser(
        "import", help="import spectrum files (JCAMP-DX, SPC, npy, parquet, csv) into one dataset"
    )
    add_import_arguments(p)
    p.set_defaults(func=_import)
    p = data_sub.add_parser("split", help="named train / val / test splits (random, stratified, by group)")
    p.add_argument("dataset", help="a dataset file (written in place unless --out)")
    p.add_argument(
        "--fractions", default="0.7,0.15,0.15", help="train,val,test shares (default 0.7,0.15,0.15)"
    )
    p.add_argument("--stratify", action="store_true", help="the same class shares in every split")
    p.add_argument("--group", help="keep groups on one side: an extra's name, or a regex on the ids")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write here instead of in place")
    p.add_argument("--overwrite", action="store_true", help="replace existing splits, or an existing --out")
    p.add_argument("--verbose", action="store_true", help="print the dataset summary after")
    p.set_defaults(func=_split)
    p = data_sub.add_parser("info", help="what a dataset holds: task, size, axis, labels per split")
    p.add_argument("dataset")
    p.add_argument("--plot", help="also draw the mean ± sd spectrum per class into this file")
    p.set_defaults(func=_info)
    p = data_sub.add_parser("download", help="download / prepare a real dataset (network; never in CI)")
    add_download_arguments(p)
    p.set_defaults(func=_download)
    p = data_sub.add_parser(
        "modes", help="the force-field normal-mode table under synth-ir17 v6 to v9 (normalmodes)"
    )
    p.add_argument("--out", help="write here (default: the shipped resource of this checkout)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--first", type=int, default=0, help="only the first N molecules (0: all)")
    p.set_defaults(func=_modes)
