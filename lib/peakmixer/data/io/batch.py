"""Batch import: many spectrum files -> one `SpectraDataset` file plus a report of what was refused.

Pipeline per file: detect the format (by content, then extension) -> read (IR ordinates become
absorbance-like, x becomes ascending cm-1) -> check coverage of the target axis -> resample -> optional
min-max normalisation -> labels from SMILES. Every spectrum that fails a step is reported with its
reason and the rest are kept; a traceback is never the answer to bad input.

Decisions (documented in `import_files`):

- Coverage rule: a spectrum must cover at least `min_coverage` (default 80%) of the target axis range;
  the uncovered ends are edge-padded (the first/last value is held). NIST gas-phase spectra start near
  450-600 cm-1 and stop near 3800-3975 cm-1: the 50 fixtures cover 91-100% of 400-4000 cm-1.
- Resampling: when the source is at least twice as dense as the target, each target point is the mean
  of the (linearly interpolated) source over its bin (bins end halfway between target points): an
  anti-aliasing average, close to the paper's adaptive average pooling. Otherwise linear interpolation.
- Normalisation: ``minmax`` (default) scales each spectrum to [0, 1] after resampling, as FCG-Former
  does; ``None`` keeps absorbance (IR) or raw intensity (Raman). A constant spectrum cannot be min-max
  scaled and is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import peakmixer
from peakmixer.data import labels as labelsets
from peakmixer.data.cache import smarts_957_path
from peakmixer.data.dataset import (
    SPECTRUM_KINDS,
    DatasetError,
    SpectraDataset,
    named_axis,
    refuse_to_replace,
)
from peakmixer.data.dataset import axis_coverage as coverage
from peakmixer.data.io.base import Item, ReadError, Rejection, Spectra, file_kind_error
from peakmixer.data.io.conform import Normalize, conform, coverage_reason, preprocessed
from peakmixer.data.io.csv import CsvOptions, read_csv
from peakmixer.data.io.dataset_file import is_dataset_file, read_dataset
from peakmixer.data.io.jcamp import read_jcamp
from peakmixer.data.io.labelsource import LabelSource, resolve_labels
from peakmixer.data.io.npy import AXIS_FILE, read_npy
from peakmixer.data.io.npy import MAGIC as NPY_MAGIC
from peakmixer.data.io.parquet import MAGIC as PARQUET_MAGIC
from peakmixer.data.io.parquet import read_parquet
from peakmixer.data.io.spc import read_spc
from peakmixer.data.preprocess import Pipeline
from peakmixer.files import write_text

LABEL_SETS = ("nist17", "qm9s957")
TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}


@dataclass
class ImportReport:
    """What `import_files` did: the dataset written (None if nothing was kept) and every refusal."""

    out: Path | None
    report_path: Path
    n_files: int
    kept: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    padded: list[tuple[str, float]] = field(default_factory=list)  # (id, coverage < 1): edge-held ends
    notes: list[str] = field(default_factory=list)
    task: str = ""
    classes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for a terminal: counts, labels, padding, notes, then each rejection with its reason."""
        head = f"kept {len(self.kept)} spectra from {self.n_files} files"
        head += f" -> {self.out}" if self.out else " (nothing written)"
        lines = [head]
        if self.classes:
            more = ", ..." if len(self.classes) > 8 else ""
            lines.append(f"{self.task}: {len(self.classes)} labels ({', '.join(self.classes[:8])}{more})")
        elif self.kept:
            lines.append(
                "no labels (an unlabelled dataset: give --labels, --labels-csv or --label-from-name)"
            )
        if self.padded:
            least = min(c for _, c in self.padded)
            lines.append(
                f"padded {len(self.padded)} spectra that cover only part of the axis (least {least:.0%}; "
                "their ends hold the nearest value)"
            )
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"rejected {len(self.rejected)}:" if self.rejected else "rejected none")
        lines += [f"  {r.source}: {r.reason}" for r in self.rejected]
        lines.append(f"report: {self.report_path}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "out": str(self.out) if self.out else None,
            "n_files": self.n_files,
            "kept": self.kept,
            "task": self.task,
            "classes": self.classes,
            "padded": [{"id": i, "coverage": c} for i, c in self.padded],
            "notes": self.notes,
            "rejected": [{"source": r.source, "reason": r.reason} for r in self.rejected],
        }


def read_file(
    path: str | os.PathLike,
    *,
    npy_axis: str | os.PathLike | None = None,
    csv: CsvOptions | None = None,
    split: str | None = None,
) -> list[Item]:
    """Read any supported file: format by content (JCAMP ``##``, npy, parquet and dataset magic), else
    extension. `split`: of a peakmixer dataset file, only that split's spectra.

    Returns the file's items (`Spectra` or per-spectrum `ReadError`); raises `ReadError` when the whole
    file is unusable, including unknown formats and unreadable files.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise ReadError(path.name, f"cannot open ({e.strerror})") from None
    suffix = path.suffix.lower()
    if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"##"):
        return read_jcamp(path)
    if head.startswith(NPY_MAGIC):
        return read_npy(path, axis_file=npy_axis)
    if head.startswith(PARQUET_MAGIC):
        return read_parquet(path)
    if is_dataset_file(path, head):
        return read_dataset(path, split)
    if suffix == ".spc":
        return read_spc(path)
    if suffix in TEXT_SUFFIXES:
        return read_csv(path, csv)
    raise file_kind_error(path, head)


def _label_set(name: str) -> tuple[list[str], list[str]]:
    """(names, smarts) for ``nist17``, ``qm9s957`` (built by ``data download qm9s``) or a SMARTS file."""
    if name == "nist17":
        return list(labelsets.NIST17_NAMES), list(labelsets.NIST17_SMARTS)
    if name == "qm9s957":
        return labelsets.load_smarts_file(smarts_957_path())
    if Path(name).is_file():
        return labelsets.load_smarts_file(name)
    raise DatasetError(f"--labels {name!r}: expected one of {', '.join(LABEL_SETS)} or a SMARTS list file")


def _smiles_table(path: Path) -> dict[str, str]:
    """Map file name (or id) -> SMILES from a CSV with a ``file`` or ``id`` column and a ``smiles`` column."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as e:
        raise DatasetError(f"--smiles {path}: cannot read ({e})") from None
    cols = {c.lower(): c for c in table.columns}
    key = cols.get("file") or cols.get("id")
    if key is None or "smiles" not in cols:
        raise DatasetError(f"--smiles {path}: needs a 'file' (or 'id') column and a 'smiles' column")
    return dict(zip(table[key].str.strip(), table[cols["smiles"]].str.strip(), strict=True))


@dataclass
class Sources:
    """The files named by a command's sources: ``files`` in order, and which of them a folder listed
    (``listed``: there a table that holds no spectra, e.g. a molecules table, is skipped, not refused)."""

    files: list[Path]
    listed: set[Path] = field(default_factory=set)


def expand_sources(sources: Sequence[str | os.PathLike], skip: set[Path] | None = None) -> Sources:
    """Files named by `sources`, folders replaced by their (non-hidden) files, in order; `skip` (resolved
    paths) left out. A source that does not exist, or an empty folder, is refused (`DatasetError`)."""
    skip = skip or set()
    out = Sources([])
    for s in map(Path, sources):
        if not s.exists():
            raise DatasetError(f"{s}: no such file or folder")
        if s.is_dir():
            entries = sorted(p for p in s.iterdir() if p.is_file() and not p.name.startswith("."))
            if not entries:
                raise DatasetError(f"{s}: empty folder (no spectrum files in it)")
            out.listed |= set(entries)
        else:
            entries = [s]
        out.files += [p for p in entries if p.resolve() not in skip]
    # An axis file is not a spectrum: it is used by the .npy matrices beside it; nor is a y_<split>.npy of
    # class ids beside its X_<split>.npy (Ho et al.'s layout: `read_npy` reads it as their labels).
    paired = {
        p.with_name("y_" + p.name[2:]) for p in out.files if p.name.startswith("X_") and p.suffix == ".npy"
    }
    out.files = [p for p in out.files if p.name != AXIS_FILE and p not in paired]
    return out


def _display_names(files: list[Path]) -> list[str]:
    """File names as ids; paths relative to the common folder when two files share a name."""
    names = [p.name for p in files]
    if len(set(names)) == len(names):
        return names
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in files]))
    return [p.resolve().relative_to(root).as_posix() for p in files]


def _renamed(item: Item, old: str, new: str) -> Item:
    if old == new:
        return item
    if isinstance(item, ReadError):
        return ReadError(new + item.source[len(old) :], item.reason)
    item.ids = [new + i[len(old) :] for i in item.ids]
    if "order" in item.meta:
        item.meta["order"] = [new + i[len(old) :] for i in item.meta["order"]]
    return item


def import_files(
    sources: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike,
    smiles_csv: str | os.PathLike | None = None,
    labels: str | None = None,
    axis: str = "ir",
    normalize: Normalize = "minmax",
    min_coverage: float = 0.8,
    npy_axis: str | os.PathLike | None = None,
    progress: bool = False,
    label_source: LabelSource | None = None,
    csv: CsvOptions | None = None,
    overwrite: bool = False,
    split: str | None = None,
    preprocess: Pipeline | None = None,
) -> ImportReport:
    """Import spectrum files into one `SpectraDataset` at `out`, with a JSON report beside it.

    Args:
        sources: files or folders (their files, not recursively); ``wavenumbers.npy`` is taken as the
            axis of the ``.npy`` matrices beside it, never as spectra.
        out: the dataset file to write (atomically; an existing file is replaced only on success).
        smiles_csv: CSV with a ``file`` (or ``id``) and a ``smiles`` column; a spectrum's SMILES is
            looked up by its id, then by its file name. Parquet files may carry their own ``smiles``.
        labels: ``nist17``, ``qm9s957`` or a SMARTS list file; needs SMILES for every kept spectrum
            (spectra without a usable SMILES are refused). None: an unlabelled dataset (K = 0).
        axis: the `named_axis` to resample onto (``ir``: 1024 points 400-4000 cm-1; ``ho``: Ho et al.;
            ``START:END:POINTS`` an evenly spaced axis of your own, e.g. ``600:1800:1000`` for Raman).
        normalize: ``minmax`` per spectrum after resampling, or None to keep absorbance/intensity.
        min_coverage: the least fraction of the target axis range a spectrum must cover (module doc).
        npy_axis: an explicit axis file for ``.npy`` matrices.
        progress: show a progress bar over files.
        label_source: class labels from a table, the file names, or the files' own label column
            (`data.io.labelsource`); the task follows from them. Not with `labels`.
        csv: how to read delimited text files (`CsvOptions`: axis, delimiter, decimal, layout, columns).
        split: of a peakmixer dataset file among the sources, only that split.
        preprocess: a pipeline every spectrum goes through on its own axis before it is resampled onto
            `axis`; it decides the scaling (`normalize` is not applied after it) and is recorded in the
            dataset's provenance.
        overwrite: replace an existing `out` (else refused before any file is read: runs trained on it
            would be scored on other data).

    Returns:
        An `ImportReport`. The dataset holds X (N, L) float32 on the target axis, ids naming the source
        files, extras ``coverage`` (N,) and, when known, ``smiles`` (N,). Nothing is written when no
        spectrum is kept; the report file (``<out>.report.json``) is always written.

    Raises:
        DatasetError: for arguments that make the whole import meaningless (unknown label set or axis,
            unreadable SMILES table), before any file is read.
    """
    out = Path(out)
    report_path = out.with_name(out.name + ".report.json")
    refuse_to_replace(out, overwrite)
    try:
        target = named_axis(axis)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    if normalize not in ("minmax", None):
        raise DatasetError(f"normalize must be 'minmax' or None, not {normalize!r}")
    label_source = label_source or LabelSource()
    if labels and label_source.given:
        raise DatasetError("give SMILES labels (--labels) or class labels (--labels-csv, --label-from-name)")
    label_names, smarts = _label_set(labels) if labels else ([], [])
    patterns = labelsets.compile_smarts(smarts)
    lookup = _smiles_table(Path(smiles_csv)) if smiles_csv else {}
    skip = {Path(smiles_csv).resolve()} if smiles_csv else set()
    found = expand_sources(sources, skip)
    files = found.files
    if preprocess is not None:
        normalize = None  # the pipeline's own normalisation stands
    read = read_spectra(
        files,
        target,
        normalize=normalize,
        min_coverage=min_coverage,
        npy_axis=npy_axis,
        progress=progress,
        smiles=lookup,
        csv=csv,
        split=split,
        listed=found.listed,
        preprocess=preprocess,
    )
    rows, ids, smiles, covered, rejected = read.rows, read.ids, read.smiles, read.coverage, read.rejected
    if unused := sorted(set(lookup) - set(read.order) - {p.name for p in files}):
        more = ", ..." if len(unused) > 5 else ""
        read.notes.append(
            f"{Path(smiles_csv).name} names {len(unused)} spectra that are not among the sources: "
            f"{', '.join(unused[:5])}{more}"
        )
    task = "multilabel"
    if labels:
        y, keep = _labels(ids, smiles, patterns, rejected)
    elif found := resolve_labels(ids, read.labels, label_source, rejected, read.order):
        y, keep, label_names, task = found.y, found.keep, found.names, found.task
    else:
        y, keep = None, list(range(len(ids)))
    kept = [ids[i] for i in keep]
    padded = [(ids[i], covered[i]) for i in keep if covered[i] < 1.0]
    written = None
    if kept:
        extras = {"coverage": np.asarray([covered[i] for i in keep], dtype=np.float32)}
        if any(smiles[i] for i in keep):
            extras["smiles"] = np.asarray([smiles[i] or "" for i in keep], dtype=str)
        dataset = SpectraDataset(
            X=np.stack([rows[i] for i in keep]),
            axis=target,
            y=y if y is not None else np.zeros((len(keep), 0), dtype=np.uint8),
            task=task,
            label_names=label_names,
            ids=kept,
            provenance={
                "synthetic": False,
                "source": "peakmixer.io.import_files",  # a name in the data format (0.1)
                "peakmixer_version": peakmixer.__version__,
                "axis": axis,
                "normalize": normalize,
                "resample": "bin mean if the source is >= 2x denser, else linear; ends edge-held",
                "min_coverage": min_coverage,
                "labels": labels or _describe(label_source),
                "n_files": len(files),
                "n_rejected": len(rejected),
                "spectrum_kind": _kind_of([read.kinds[i] for i in keep]),
            }
            | ({"preprocess": preprocess.record()} if preprocess is not None else {}),
            extras=extras,
        )
        written = dataset.save(out)
    report = ImportReport(
        out=written,
        report_path=report_path,
        n_files=len(files),
        kept=kept,
        rejected=rejected,
        padded=padded,
        notes=read.notes,
        task=task if kept else "",
        classes=label_names if kept else [],
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(report_path, json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n")
    return report


@dataclass
class ReadSpectra:
    """Spectra read from files onto one axis: rows, ids (``file`` or ``file#k``), SMILES where known, the
    fraction of the axis each covered, and what was refused (file and reason)."""

    rows: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    smiles: list[str | None] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)  # a file's own label column, where it has one
    notes: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # every spectrum's id as read, kept or refused
    kinds: list[str | None] = field(default_factory=list)  # ir / raman where the file says it, else None
    sources: list[str] = field(default_factory=list)  # the file each kept spectrum came from


# The per-spectrum lists of `ReadSpectra`, kept in step.
_PER_SPECTRUM = ("rows", "ids", "smiles", "coverage", "labels", "kinds", "sources")


def refuse_other_kinds(read: ReadSpectra, kind: str | None) -> None:
    """Move the spectra whose files say they are of another kind than the model's into ``read.rejected``
    (the stated rule: a kind a file states and a model's known kind must agree; unknown passes)."""
    if kind is None:
        return
    other = {i for i, k in enumerate(read.kinds) if k and k != kind}
    for i in sorted(other):
        said = SPECTRUM_KINDS[read.kinds[i]]
        reason = (
            f"a {said} spectrum (so its file says); this model was trained on {SPECTRUM_KINDS[kind]} spectra"
        )
        read.rejected.append(Rejection(read.ids[i], reason))
    for name in _PER_SPECTRUM:
        values = getattr(read, name)
        setattr(read, name, [v for i, v in enumerate(values) if i not in other])


def read_spectra(
    files: Sequence[Path],
    target: np.ndarray,
    *,
    normalize: Normalize = "minmax",
    min_coverage: float = 0.8,
    npy_axis: str | os.PathLike | None = None,
    progress: bool = False,
    smiles: dict[str, str] | None = None,
    csv: CsvOptions | None = None,
    split: str | None = None,
    listed: set[Path] | None = None,
    preprocess: Pipeline | None = None,
    refuse_preprocessed: bool = False,
) -> ReadSpectra:
    """Read every file onto `target` (resampled, checked for coverage, normalised); a broken file or
    spectrum is recorded with its reason and the others are kept. `smiles` maps ids or file names to
    SMILES (parquet files may carry their own); `split`: of dataset files, that split only. A text table
    that a folder listed (`listed`) and that holds no spectra is skipped with a note. `preprocess`: a
    pipeline each file's spectra go through first (`conform.preprocessed`); coverage is always that of
    the file's own axis. `refuse_preprocessed`: refuse dataset files that went through a pipeline (for a model
    trained without one), and, with `normalize` None, dataset files min-max scaled at import."""
    out = ReadSpectra()
    lookup = smiles or {}
    listed = listed or set()
    pairs = list(zip(files, _display_names(list(files)), strict=True))
    for path, name in tqdm(pairs, disable=not progress, desc="reading", unit="file"):
        try:
            read = read_file(path, npy_axis=npy_axis, csv=csv, split=split)
            items = [_renamed(it, path.name, name) for it in read]
        except ReadError as e:
            if path in listed and path.suffix.lower() in TEXT_SUFFIXES:
                out.notes.append(f"skipped {name}: not a spectrum table ({e.reason.split(':')[0]})")
                continue
            items = [_renamed(e, path.name, name)]
        except Exception as e:  # a broken file must not end the batch: report what happened and go on
            items = [ReadError(name, f"unexpected error while reading ({type(e).__name__}: {e})")]
        # The file's spectra in its own order, refused ones included (a reader that splits a file into kept
        # and refused items says the order in meta["order"])
        given = [it.meta["order"] for it in items if isinstance(it, Spectra) and "order" in it.meta]
        out.order += given[0] if given else [i for it in items for i in _ids(it)]
        for item in items:
            if isinstance(item, ReadError):
                out.rejected.append(Rejection(item.source, item.reason))
                continue
            if item.meta.get("ignored_columns"):
                out.notes.append(f"{name}: ignored non-numeric columns {item.meta['ignored_columns']}")
            own = dict(zip(item.ids, item.labels, strict=True)) if item.labels else {}
            frac = coverage(item.x, target)  # of the file's own axis, before any pipeline resamples it
            if refuse_preprocessed and (done := item.meta.get("preprocess")):
                reason = (
                    f"preprocessed ({done.get('name') or done.get('digest')}), but the model was trained on "
                    "data without a preprocessing pipeline: give the raw spectra"
                )
                out.rejected += [Rejection(i, reason) for i in item.ids]
                continue
            if refuse_preprocessed and normalize is None and item.meta.get("scaled") == "minmax":
                reason = (
                    "min-max scaled at import, but the model was trained on spectra as measured "
                    "(--normalize none): give the raw spectra"
                )
                out.rejected += [Rejection(i, reason) for i in item.ids]
                continue
            if preprocess is not None:
                if frac < min_coverage:
                    out.rejected += [
                        Rejection(i, coverage_reason(item.x, target, min_coverage)) for i in item.ids
                    ]
                    continue
                if (item := preprocessed(item, preprocess, out.rejected)) is None:
                    continue
            block = conform(item, target, normalize, 0.0 if preprocess else min_coverage, out.rejected)
            if block is None:
                continue
            for k, (sid, row) in enumerate(zip(block.ids, block.Y, strict=True)):
                out.rows.append(row)
                out.ids.append(sid)
                own_smiles = block.smiles[k] if block.smiles else None
                out.smiles.append(lookup.get(sid) or lookup.get(name) or own_smiles)
                out.coverage.append(frac)
                out.labels.append(own.get(sid))
                out.kinds.append(item.meta.get("kind"))
                out.sources.append(name)
    return out


def _kind_of(kinds: list[str | None]) -> str | None:
    """The dataset's spectrum kind: the one its files state (ir or raman), ``mixed`` if they state both,
    None if none does."""
    said = {k for k in kinds if k}
    return said.pop() if len(said) == 1 else "mixed" if said else None


def _ids(item: Item) -> list[str]:
    return [item.source] if isinstance(item, ReadError) else item.ids


def _describe(source: LabelSource) -> str | None:
    if source.table is not None:
        column = f" (column {source.column})" if source.column else ""
        return f"labels table {Path(source.table).name}{column}"
    if source.from_name is not None:
        return f"labels from file names: {source.from_name}"
    return None


def _labels(
    ids: list[str], smiles: list[str | None], patterns: list, rejected: list[Rejection]
) -> tuple[np.ndarray, list[int]]:
    """(N_kept, K) labels and the kept row indices; spectra without a usable SMILES are refused."""
    keep, mols = [], []
    for i, (sid, smi) in enumerate(zip(ids, smiles, strict=True)):
        if not smi:
            rejected.append(
                Rejection(sid, "no SMILES for this spectrum (not in the SMILES table or the file)")
            )
            continue
        try:
            mols.append(labelsets.parse_smiles(smi))
        except labelsets.LabelError as e:
            rejected.append(Rejection(sid, str(e)))
            continue
        keep.append(i)
    return labelsets.match_matrix(mols, patterns), keep
