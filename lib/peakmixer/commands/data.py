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


def _preprocess(args: argparse.Namespace) -> int:
    from peakmixer.config import ConfigError
    from peakmixer.data.dataset import load, refuse_to_replace
    from peakmixer.data.preprocess import PRESETS, load_pipeline, preprocess_dataset, step_parameters

    if args.list:
        for name, preset in PRESETS.items():
            print(f"{name}: {preset['about']}\n    {load_pipeline(name).describe()}")
        print("steps, with their parameters' defaults:")
        for name, params in step_parameters().items():
            print(f"    {name}: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
        return 0
    if not (args.dataset and args.pipeline and args.out):
        raise ConfigError("data preprocess needs IN.npz --pipeline PRESET_OR_FILE --out OUT.npz (or --list)")
    if Path(args.out).resolve() == Path(args.dataset).resolve():
        raise ConfigError(f"{args.out}: the input is never changed; write the processed data to another file")
    pipeline = load_pipeline(args.pipeline)
    refuse_to_replace(Path(args.out), args.overwrite)
    ds = load(args.dataset)
    out = preprocess_dataset(ds, pipeline, keep_raw=args.keep_raw).save(args.out)
    print(
        f"{out}: {len(ds.ids)} spectra through {pipeline.describe()}"
        + (" (raw kept as raw_X)" if args.keep_raw else "")
    )
    if args.plot:
        import matplotlib

        matplotlib.use("agg")
        from peakmixer.report.figures import save_figure
        from peakmixer.report.preprocess_figure import plot_preprocessing

        i = args.plot_spectrum
        fig = plot_preprocessing(pipeline, ds.axis, ds.X[i], title=ds.ids[i])
        plot = Path(args.plot)
        saved = save_figure(
            fig,
            plot.parent,
            plot.stem,
            params={"dataset": str(args.dataset), "pipeline": pipeline.record(), "spectrum": ds.ids[i]},
            synthetic=bool(ds.provenance.get("synthetic")),
            formats=(plot.suffix.lstrip(".") or "png",),
        )
        print(f"figure: {saved[0]}")
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
    p = data_sub.add_parser(
        "preprocess", help="crop, despike, smooth, baseline, normalise, resample: a pipeline over a dataset"
    )
    p.add_argument("dataset", nargs="?", help="a dataset file (.npz); never changed")
    p.add_argument("--pipeline", metavar="PRESET_OR_FILE", help="a preset (--list) or a YAML / JSON file")
    p.add_argument("--out", help="the processed dataset file")
    p.add_argument("--keep-raw", action="store_true", help="keep the raw spectra beside them (extra raw_X)")
    p.add_argument("--plot", help="draw raw, fitted baseline and spikes, and the result (e.g. fig.png)")
    p.add_argument("--plot-spectrum", type=int, default=0, help="which spectrum --plot draws (index)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--list", action="store_true", help="the presets and the steps with their parameters")
    p.set_defaults(func=_preprocess)
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
