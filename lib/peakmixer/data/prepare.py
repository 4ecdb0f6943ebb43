"""From downloaded files to a `SpectraDataset`, one recipe per dataset (`prepare`), and the ``data download``
command's arguments and run.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from peakmixer.data import labels as labelsets
from peakmixer.data.cache import ENV_CACHE, SMARTS_957, cache_root
from peakmixer.data.dataset import DatasetError, SpectraDataset, load, minmax, random_splits
from peakmixer.data.download import (
    ENV_BASE_URL,
    HO_ANTIBIOTICS,
    HO_CLINICAL_PER_PATIENT,
    HO_GROUP_OF_STRAIN,
    HO_STRAINS,
    DownloadError,
    download,
    fcgformer_root,
    fetch_nist_webbook,
    list_datasets,
    registry,
)
from peakmixer.data.io import import_files


def prepare(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    **options: Any,
) -> SpectraDataset:
    """Turn the downloaded files of `name` into a `SpectraDataset` (saved to `out` when given).

    - ``bacteria``: 30-isolate multiclass set, splits reference/finetune/test, ``extras["y_group"]`` the
      antibiotic group (names in ``provenance["y_group_names"]``); ``clinical=True`` gives instead the
      2018/2019 clinical sets, labelled by treatment group, with ``extras["patient"]``.
    - ``nist-ir``: the FCG-Former layout (train/valid/test) on an assumed ascending 400-4000 cm-1 grid.
    - ``multimodal-ir``: every parquet through `data.io.import_files` (``ir`` axis, min-max,
      ``nist17`` labels), random 80/10/10 splits (seed 0).
    - ``qm9s``: Raman spectra (500-4000 cm-1) joined to the molecules' SMILES, 957 substructure
      labels, random 80/10/10 splits (seed 0).
    """
    folder = cache_root(cache_dir) / name
    makers = recipes()
    if name not in makers:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(makers))}")
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist: run `python -m peakmixer data download {name}` first")
    dataset = makers[name](folder, **options)
    if out is not None:
        dataset.save(out)
    return dataset


def recipes() -> dict[str, Any]:
    """The datasets `prepare` turns into a `SpectraDataset`, and the function that does it."""
    return {"bacteria": _bacteria, "nist-ir": _fcgformer, "multimodal-ir": _multimodal, "qm9s": _qm9s}


def _need(folder: Path, *names: str) -> list[Path]:
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise DatasetError(f"{folder}: missing {missing}; run `python -m peakmixer data download` first")
    return paths


def _bacteria(folder: Path, clinical: bool = False) -> SpectraDataset:
    (axis_file,) = _need(folder, "wavenumbers.npy")
    axis = np.load(axis_file, allow_pickle=False)
    order = np.argsort(axis)  # stored descending (1792.4 -> 381.98 cm-1)
    parts = list(HO_CLINICAL_PER_PATIENT) if clinical else ["reference", "finetune", "test"]
    X, y, splits, start = [], [], {}, 0
    for part in parts:
        x_path, y_path = _need(folder, f"X_{part}.npy", f"y_{part}.npy")
        X.append(np.load(x_path, mmap_mode="r", allow_pickle=False)[:, order].astype(np.float32))
        y.append(np.load(y_path, allow_pickle=False).astype(np.int64))
        splits[part] = np.arange(start, start + len(y[-1]))
        start += len(y[-1])
    labels = np.concatenate(y)
    prov = {
        "source": "Ho et al. 2019 (csho33/bacteria-ID)",
        "labels_from": "csho33/bacteria-ID config.py (MIT)",
    }
    if clinical:
        patient, first = [], 0
        for part, v in zip(parts, y, strict=True):  # patients numbered across both years
            patient.append(first + np.arange(len(v)) // HO_CLINICAL_PER_PATIENT[part])
            first = patient[-1][-1] + 1
        extras, names = {"patient": np.concatenate(patient)}, list(HO_ANTIBIOTICS)
    else:
        extras, names = {"y_group": np.asarray(HO_GROUP_OF_STRAIN)[labels]}, list(HO_STRAINS)
        prov["y_group_names"] = list(HO_ANTIBIOTICS)
    return SpectraDataset(
        X=np.concatenate(X),
        axis=axis[order],
        y=labels,
        task="multiclass",
        label_names=names,
        ids=[f"{p}#{i}" for p, v in zip(parts, y, strict=True) for i in range(len(v))],
        splits=splits,
        provenance=prov,
        extras=extras,
    )


def _fcgformer(folder: Path) -> SpectraDataset:
    root = fcgformer_root(folder)
    rows, y, ids, splits = [], [], [], {}
    for split, sub in (("train", "train"), ("val", "valid"), ("test", "test")):
        files = sorted((root / sub).glob("*.npy"))
        if not files:
            raise DatasetError(f"{root / sub}: no .npy spectra (expected the FCG-Former layout)")
        splits[split] = np.arange(len(rows), len(rows) + len(files))
        for f in files:
            rows.append(np.load(f, allow_pickle=False).astype(np.float64).ravel())
            words = f.with_suffix(".txt").read_text().split()
            if len(words) != len(labelsets.NIST17_NAMES):
                raise DatasetError(f"{f.with_suffix('.txt')}: expected 17 labels, found {len(words)}")
            y.append([int(float(w)) for w in words])
            ids.append(f"{sub}/{f.name}")
    if len({r.size for r in rows}) != 1:
        raise DatasetError(f"{root}: spectra of different lengths {sorted({r.size for r in rows})}")
    X = np.stack(rows)
    return SpectraDataset(
        X=minmax(X)[0],
        axis=np.linspace(400.0, 4000.0, X.shape[1]),
        y=np.asarray(y),
        task="multilabel",
        label_names=list(labelsets.NIST17_NAMES),
        ids=ids,
        splits=splits,
        provenance={
            "source": "FCG-Former FTIR (NIST WebBook)",
            "axis": "assumed ascending 400-4000 cm-1",
            "normalize": "minmax",
        },
    )


def _multimodal(folder: Path) -> SpectraDataset:
    parquets = sorted(folder.rglob("*.parquet"))
    if not parquets:
        raise DatasetError(
            f"{folder}: no parquet files; run `python -m peakmixer data download multimodal-ir`"
        )
    staging = folder / "multimodal-ir.import.npz"
    report = import_files(parquets, out=staging, labels="nist17", axis="ir", progress=True)
    if report.out is None:
        raise DatasetError(f"no usable spectrum in {folder}; see {report.report_path}")
    ds = load(staging)
    staging.unlink()
    ds.splits = random_splits(len(ds), {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    ds.provenance |= {
        "source": "Alberts et al. 2024 multimodal spectroscopic dataset",
        "splits": "random 80/10/10 seed 0",
    }
    return ds


def _qm9s(folder: Path, chunksize: int = 10_000) -> SpectraDataset:
    spectra_csv, molecules_zip, smarts_txt = _need(folder, "raman_boraden.csv", "qm9s_csv.zip", SMARTS_957)
    # qm9s_csv.zip: one CSV per molecule; per the QM9S README its first line is
    # "QM9S number, QM9 number, SMILES, number of atoms" (a leading empty index cell is tolerated).
    smiles_of: dict[int, str] = {}
    with zipfile.ZipFile(molecules_zip) as zf:
        for info in tqdm(zf.infolist(), desc="QM9S molecules", unit="mol"):
            if info.is_dir() or not info.filename.endswith(".csv"):
                continue
            with zf.open(info) as f:
                cells = f.readline().decode("utf-8").strip().split(",")
            cells = cells[1:] if cells and cells[0] == "" else cells
            try:
                smiles_of[int(float(cells[0]))] = cells[2].strip()
            except (ValueError, IndexError):
                raise DatasetError(
                    f"{molecules_zip.name}/{info.filename}: unexpected first line {cells}"
                ) from None
    # raman_boraden.csv: a header row, then per molecule its number and the broadened spectrum.
    numbers, blocks = [], []
    for chunk in tqdm(pd.read_csv(spectra_csv, chunksize=chunksize), desc="QM9S spectra", unit="chunk"):
        numbers.append(chunk.iloc[:, 0].to_numpy(dtype=np.int64))
        blocks.append(chunk.iloc[:, 1:].to_numpy(dtype=np.float32))
    number, X = np.concatenate(numbers), np.concatenate(blocks)
    found = np.array([n in smiles_of for n in number])
    if found.mean() < 0.99:
        raise DatasetError(
            f"only {found.mean():.0%} of the {spectra_csv.name} rows match a molecule of "
            f"{molecules_zip.name}: the files do not have the documented layout; please report this"
        )
    names, smarts = labelsets.load_smarts_file(smarts_txt)
    patterns = labelsets.compile_smarts(smarts)
    keep, y = [], []
    for i in tqdm(np.flatnonzero(found), desc="QM9S labels", unit="mol"):
        try:
            mol = labelsets.parse_smiles(smiles_of[int(number[i])])
        except labelsets.LabelError:
            continue  # counted in provenance["n_dropped"]
        y.append(labelsets.match_matrix([mol], patterns)[0])
        keep.append(i)
    keep = np.asarray(keep)
    n = len(keep)
    return SpectraDataset(
        X=X[keep],
        axis=np.linspace(500.0, 4000.0, X.shape[1]),
        y=np.stack(y),
        task="multilabel",
        label_names=names,
        ids=[f"qm9s#{int(k)}" for k in number[keep]],
        splits=random_splits(n, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0),
        provenance={
            "source": "QM9S (Zou et al. 2023) Raman, figshare 24235333",
            "axis": "500-4000 cm-1 (documented)",
            "n_dropped": int(len(number) - n),
            "splits": "random 80/10/10 seed 0",
        },
        extras={"smiles": np.asarray([smiles_of[int(k)] for k in number[keep]], dtype=str)},
    )


# -- command line -------------------------------------------------------------------------------------
def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``python -m peakmixer data download``."""
    parser.add_argument("name", nargs="?", help=f"dataset: {', '.join(list_datasets())}")
    parser.add_argument(
        "--list", action="store_true", help="list the datasets, their licences and cache state"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help=f"cache folder (default: ${ENV_CACHE} or the user cache)"
    )
    parser.add_argument(
        "--base-url", help=f"mirror serving <dataset>/<file> (default: ${ENV_BASE_URL} or the sources)"
    )
    parser.add_argument(
        "--prepare",
        nargs="?",
        const="",
        metavar="OUT",
        help="also convert to a SpectraDataset file (default OUT: <cache>/<name>/<name>.npz)",
    )
    parser.add_argument("--clinical", action="store_true", help="bacteria: prepare the clinical sets instead")
    parser.add_argument(
        "--cas-file", type=Path, help="nist-ir: fetch NIST WebBook IR JCAMP files for these CAS numbers"
    )
    parser.add_argument(
        "--accept-nist-terms", action="store_true", help="nist-ir: confirm the NIST WebBook terms"
    )
    parser.add_argument(
        "--delay", type=float, default=2.0, help="nist-ir: seconds between WebBook requests (>= 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_download(args: argparse.Namespace) -> int:
    """Run ``data download``: 0 on success, 1 on a failure (message on stderr), 2 for bad arguments."""
    if args.list:
        for name, entry in sorted(registry().items()):
            folder = cache_root(args.cache_dir) / name
            state = "downloaded" if folder.is_dir() and any(folder.iterdir()) else "not downloaded"
            print(f"{name:14s} {state:15s} {entry['title']}\n{'':30s} licence: {entry['licence']}")
        return 0
    if args.name not in list_datasets():
        print(f"error: choose a dataset: {', '.join(list_datasets())} (or --list)", file=sys.stderr)
        return 2
    progress = not args.no_progress
    try:
        if args.cas_file:
            if args.name != "nist-ir" or args.delay < 1.0:
                print("error: --cas-file needs the nist-ir dataset and --delay >= 1", file=sys.stderr)
                return 2
            cas = [c for c in re.split(r"[\s,;]+", args.cas_file.read_text()) if c]
            files = fetch_nist_webbook(
                cas,
                accept_terms=args.accept_nist_terms,
                cache_dir=args.cache_dir,
                delay_s=args.delay,
                base_url=args.base_url,
                progress=progress,
            )
            print(f"{len(files)} JCAMP-DX files in {cache_root(args.cache_dir) / 'nist-ir' / 'webbook'}")
            return 0
        folder = download(args.name, cache_dir=args.cache_dir, base_url=args.base_url, progress=progress)
        print(f"{args.name}: files in {folder}")
        if args.prepare is not None:
            out = Path(args.prepare) if args.prepare else folder / f"{args.name}.npz"
            options = {"clinical": True} if args.clinical else {}
            ds = prepare(args.name, cache_dir=args.cache_dir, out=out, **options)
            print(f"{args.name}: {len(ds)} spectra, {ds.n_classes} labels -> {out}")
    except (DownloadError, DatasetError, labelsets.LabelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
