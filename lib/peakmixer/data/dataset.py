"""`SpectraDataset`: the one currency between importers, generators, training and notebooks.

A dataset is a matrix of spectra on one ascending wavenumber axis, with labels, named splits and
provenance. It is saved as one self-describing zip of `.npy` members plus a JSON header (no pickle),
written byte-for-byte deterministically and atomically.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from peakmixer.config import BadInput, MissingFile
from peakmixer.files import atomic

FORMAT = "peakmixer.SpectraDataset/1"
Task = Literal["multilabel", "multiclass"]

# The Ho et al. 2019 axis (1000 points, 381.98 -> 1792.4 cm-1) is a cubic in the point index; this fit
# reproduces ho2019_meta/wavenumbers.npy within 0.07 cm-1 (tested), so we never ship the real file.
_HO_CUBIC = (1.32912e-08, -1.58129e-04, 1.55658e00, 3.81999e02)


def named_axis(name: str) -> np.ndarray:
    """The project's named target axes, ascending cm-1.

    - ``ir``: 1024 points, uniform on 400-4000 cm-1 (the model input of the substructure tasks).
    - ``ho``: the 1000-point Ho et al. 2019 bacteria axis, 381.98-1792.4 cm-1, non-uniform.
    - ``START:END:POINTS``: your own, evenly spaced (``600:1800:1000`` for a Raman fingerprint region).
    """
    if name == "ir":
        return np.linspace(400.0, 4000.0, 1024)
    if name == "ho":
        return np.polyval(_HO_CUBIC, np.arange(1000.0))
    parts = name.split(":")
    if len(parts) == 3:
        try:
            start, end, points = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            points = 0
        if points >= 2 and end > start:
            return np.linspace(start, end, points)
    raise DatasetError(f"unknown axis {name!r}: expected 'ir', 'ho' or START:END:POINTS (e.g. 600:1800:1000)")


class DatasetError(BadInput, ValueError):
    """A dataset file or array that cannot be used, with the reason."""


@dataclass
class SpectraDataset:
    """Spectra with labels, splits and provenance.

    Attributes:
        X: (N, L) float32 spectra, finite.
        axis: (L,) float64 wavenumbers in cm-1, strictly ascending.
        y: multi-hot (N, K) uint8 for ``multilabel``; class ids (N,) int64 for ``multiclass``.
        task: ``multilabel`` or ``multiclass``.
        label_names: K names, in label order.
        ids: N sample identifiers (file names, SMILES, generator indices).
        splits: name -> int64 row indices (e.g. train/val/test, reference/finetune/test).
        provenance: JSON-able facts on where the data came from; ``synthetic`` is always present.
        masks: optional (K, L) bool ground-truth relevance: where each class's signal lies on ``axis``.
        extras: optional per-sample arrays with leading dimension N (e.g. ``y_group``, ``smiles``).
    """

    X: np.ndarray
    axis: np.ndarray
    y: np.ndarray
    task: Task
    label_names: list[str]
    ids: list[str]
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    masks: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = field(default="", compare=False)  # the file it was loaded from (for messages; not saved)

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.axis = np.asarray(self.axis, dtype=np.float64)
        self.label_names = [str(s) for s in self.label_names]
        self.ids = [str(s) for s in self.ids]
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in self.splits.items()}
        self.provenance = dict(self.provenance)
        self.provenance.setdefault("synthetic", False)
        if self.task == "multilabel":
            self.y = np.asarray(self.y, dtype=np.uint8)
        elif self.task == "multiclass":
            self.y = np.asarray(self.y, dtype=np.int64)
        else:
            raise DatasetError(f"task must be 'multilabel' or 'multiclass', not {self.task!r}")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
        self.validate()

    def __repr__(self) -> str:
        """One line: what a dataset holds, not its arrays (`describe_dataset` says more)."""
        splits = "/".join(f"{k} {len(v)}" for k, v in self.splits.items()) or "no splits"
        span = f"{self.axis[0]:.0f}-{self.axis[-1]:.0f} cm-1" if self.length else "no axis"
        kind = "synthetic, " if self.provenance.get("synthetic") else ""
        where = f", {Path(self.source).name}" if self.source else ""
        return (
            f"SpectraDataset({kind}{self.task}, {len(self)} spectra x {self.length} points, {span}, "
            f"{self.n_classes} labels, {splits}{where})"
        )

    # -- checks -------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `DatasetError` naming the first inconsistency."""
        if self.X.ndim != 2:
            raise DatasetError(f"X must be 2-D (N, L), got shape {self.X.shape}")
        n, length = self.X.shape
        if self.axis.shape != (length,):
            raise DatasetError(f"axis has shape {self.axis.shape}, expected ({length},) to match X")
        if length > 1 and not np.all(np.diff(self.axis) > 0):
            raise DatasetError("axis must be strictly ascending (cm-1)")
        bad = ~np.isfinite(self.X).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            names = [self.ids[i] for i in rows] if len(self.ids) == n else rows
            raise DatasetError(f"{int(bad.sum())} spectra contain NaN or Inf, e.g. {names}")
        k = len(self.label_names)
        self._validate_labels(n, k)
        if len(self.ids) != n:
            raise DatasetError(f"{len(self.ids)} ids for {n} spectra")
        for name, idx in self.splits.items():
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise DatasetError(f"split {name!r} holds indices outside [0, {n})")
        if self.masks is not None and self.masks.shape != (k, length):
            raise DatasetError(f"masks must be (K, L) = ({k}, {length}), got {self.masks.shape}")
        for name, arr in self.extras.items():
            if len(arr) != n:
                raise DatasetError(f"extra {name!r} has {len(arr)} rows for {n} spectra")

    def _validate_labels(self, n: int, k: int) -> None:
        if self.task == "multilabel":
            if self.y.shape != (n, k):
                raise DatasetError(f"multilabel y must be (N, K) = ({n}, {k}), got {self.y.shape}")
            if self.y.size and self.y.max() > 1:
                raise DatasetError("multilabel y must be 0/1")
            return
        if self.y.shape != (n,):
            raise DatasetError(f"multiclass y must be (N,) = ({n},), got {self.y.shape}")
        if n and (self.y.min() < 0 or self.y.max() >= k):
            raise DatasetError(f"class ids must lie in [0, {k}), got [{self.y.min()}, {self.y.max()}]")

    # -- views --------------------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def length(self) -> int:
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, index: np.ndarray | Sequence[int], splits: dict[str, np.ndarray] | None = None):
        """Rows `index` (in that order) as a new dataset; splits are dropped unless given."""
        idx = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            X=self.X[idx],
            y=self.y[idx],
            ids=[self.ids[i] for i in idx],
            splits=splits or {},
            extras={k: v[idx] for k, v in self.extras.items()},
        )

    def split_rows(self, name: str) -> np.ndarray:
        """The row indices of split `name`; ``all`` (unless a split has that name) is every row."""
        if name == "all" and name not in self.splits:
            return np.arange(len(self))
        if name not in self.splits:
            hint = "" if self.splits else " (make them with `python -m peakmixer data split`)"
            raise DatasetError(
                f"{self.source or 'dataset'}: no split {name!r}; it has {sorted(self.splits)} (or all){hint}"
            )
        return self.splits[name]

    def split(self, name: str) -> SpectraDataset:
        """The rows of split `name` (``all``: every row)."""
        return self.subset(self.split_rows(name))

    def label_matrix(self) -> np.ndarray:
        """(N, K) 0/1 matrix for either task (one-hot for multiclass)."""
        if self.task == "multilabel":
            return self.y
        return np.eye(self.n_classes, dtype=np.uint8)[self.y]

    # -- resampling ---------------------------------------------------------------------------------
    def resample(self, axis: np.ndarray | str, *, outside: Literal["error", "edge"] = "error"):
        """Every spectrum onto `axis` (an array or a `named_axis` name) with `resample_spectra`: linear
        interpolation, or bin means when downsampling by 2x or more (no aliasing of narrow bands).

        `outside="error"` refuses a target axis that reaches beyond the data's range; `"edge"` repeats
        the end values there. Masks are carried over by nearest neighbour.
        """
        target = named_axis(axis) if isinstance(axis, str) else np.asarray(axis, dtype=np.float64)
        X = resample_spectra(self.X, self.axis, target, outside=outside)
        masks = None
        if self.masks is not None:
            nearest = np.abs(self.axis[None, :] - target[:, None]).argmin(axis=1)
            masks = self.masks[:, nearest]
        prov = {**self.provenance, "resampled": f"onto {len(target)} points (resample_spectra)"}
        return replace(self, X=X, axis=target, masks=masks, provenance=prov)

    def to_length(self, length: int) -> SpectraDataset:
        """Resample onto `length` points uniformly spaced over the same range (the model input grid)."""
        grid = input_grid(self.axis, length)
        return self if grid is self.axis else self.resample(grid)

    def onto(self, axis: np.ndarray, *, min_coverage: float = 0.8, name: str = "dataset") -> SpectraDataset:
        """Resample onto a model's input `axis`, refusing data that cover less than `min_coverage` of its
        range (the importers' rule); uncovered ends hold the nearest value."""
        axis = np.asarray(axis, dtype=np.float64)
        if len(axis) == self.length and np.allclose(axis, self.axis):
            return self
        frac = axis_coverage(self.axis, axis)
        if frac < min_coverage:
            raise DatasetError(
                f"{name}: covers {frac:.0%} of the model's input axis {axis[0]:.0f}-{axis[-1]:.0f} cm-1 "
                f"(data {self.axis[0]:.0f}-{self.axis[-1]:.0f} cm-1; need {min_coverage:.0%})"
            )
        return self.resample(axis, outside="edge")

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write one `.npz`-style zip (no pickle), deterministically and atomically; returns the path."""
        path = Path(path)
        header = {
            "format": FORMAT,
            "task": self.task,
            "label_names": self.label_names,
            "provenance": self.provenance,
            "splits": sorted(self.splits),
            "extras": sorted(self.extras),
            "has_masks": self.masks is not None,
        }
        members: list[tuple[str, bytes]] = [("header.json", _json_bytes(header))]
        arrays = {"X": self.X, "axis": self.axis, "y": self.y, "ids": np.asarray(self.ids, dtype=str)}
        if self.masks is not None:
            arrays["masks"] = self.masks
        arrays |= {f"splits/{k}": v for k, v in sorted(self.splits.items())}
        arrays |= {f"extras/{k}": v for k, v in sorted(self.extras.items())}
        for name, arr in arrays.items():
            if arr.dtype == object:
                raise DatasetError(f"{name}: object arrays cannot be saved without pickle")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            members.append((f"{name}.npy", buf.getvalue()))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        return path


SPECTRUM_KINDS = {"ir": "IR absorbance", "raman": "Raman"}


def spectrum_kind(ds: SpectraDataset) -> str | None:
    """``ir``, ``raman`` or None (not known): what the import found in the files (JCAMP ``DATA TYPE``, SPC
    Raman-shift axis), or the built-in benchmark's kind (synth-ir17: IR; synth-bac30: Raman)."""
    p = ds.provenance
    if p.get("spectrum_kind") in SPECTRUM_KINDS:
        return p["spectrum_kind"]
    kind = str(p.get("kind", ""))
    return "ir" if kind.startswith("synth-ir") else "raman" if kind.startswith("synth-bac") else None


def nearest_spectrum(x: np.ndarray, labels: np.ndarray, ds: SpectraDataset) -> tuple[int, bool]:
    """Index of the spectrum of `ds` most similar (cosine) to `x`, among those with the label set `labels`
    when any has it; and whether the label set matched (multilabel)."""
    same = np.flatnonzero((np.asarray(ds.y) == labels).all(1))
    pool = same if same.size else np.arange(len(ds))
    X = ds.X[pool]
    sim = X @ x / np.maximum(np.linalg.norm(X, axis=1) * np.linalg.norm(x), 1e-12)
    return int(pool[int(np.argmax(sim))]), bool(same.size)


def refuse_to_replace(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to write a dataset over an existing file (or onto a folder) unless `overwrite`: runs trained
    on the old one would later be scored on other data or other splits."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder; give a dataset file name, e.g. {path / 'dataset.npz'}")
    if path.exists() and not overwrite:
        raise DatasetError(f"{path}: exists; --overwrite replaces it, or write to another file with --out")


def label_summary(ds: SpectraDataset) -> dict[str, Any]:
    """Label statistics of a dataset (the paper's dataset figure):

    ``shares``: each label's share of all label occurrences (K,); ``per_spectrum``: labels per spectrum (N,)
    (always 1 for multiclass); ``counts``: spectra per label (K,).
    """
    Y = ds.label_matrix().astype(np.int64)
    counts = Y.sum(0)
    return {
        "names": ds.label_names,
        "counts": counts,
        "shares": counts / max(int(counts.sum()), 1),
        "per_spectrum": Y.sum(1),
    }


def load(path: str | os.PathLike) -> SpectraDataset:
    """Read a file written by `SpectraDataset.save`; errors name the file and the reason."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: no such dataset file")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not a dataset file (`data import` makes one from a folder)")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{path}: not a peakmixer dataset file ({e})") from None
    with zf:
        names = set(zf.namelist())
        if "header.json" not in names:
            raise DatasetError(f"{path}: not a peakmixer dataset file (no header.json)")
        try:
            header = json.loads(zf.read("header.json"))
        except (ValueError, zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{path}: damaged dataset file (header: {e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise DatasetError(f"{path}: unsupported format {found!r}, expected {FORMAT}")

        def arr(name: str) -> np.ndarray:
            with zf.open(f"{name}.npy") as f:
                return np.lib.format.read_array(f, allow_pickle=False)

        try:
            return SpectraDataset(
                X=arr("X"),
                axis=arr("axis"),
                y=arr("y"),
                task=header["task"],
                label_names=header["label_names"],
                ids=arr("ids").tolist(),
                splits={k: arr(f"splits/{k}") for k in header["splits"]},
                provenance=header["provenance"],
                masks=arr("masks") if header["has_masks"] else None,
                extras={k: arr(f"extras/{k}") for k in header["extras"]},
                source=str(path),
            )
        except DatasetError as e:
            raise DatasetError(f"{path}: {e}") from None
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:  # a damaged member
            raise DatasetError(f"{path}: damaged dataset file ({type(e).__name__}: {e})") from None


# The generator tag in the provenance of every `synth.benchmarks` file. Files carry it since version 0.1,
# when the generators lived in the module ``peakmixer.synth``: a name in the data format, not an import path.
SYNTH_GENERATOR = "peakmixer.synth"


def data_identity(ds: SpectraDataset, path: str | os.PathLike | None = None) -> str:
    """What a run's data are, for the results store's run identity.

    A benchmark from `synth.benchmarks` counts by its recipe (kind, size, seed, knobs, generator version):
    its bytes may differ in the last bit between CPU instruction sets (vectorised float32 ``exp``), and
    that must not make every stored run look like another run; the spot checks measure such differences.
    Anything else counts by its file's sha256 (``in-memory`` when it has no file).
    """
    p = ds.provenance
    if p.get("synthetic") and p.get("generator") == SYNTH_GENERATOR:
        return "synth:" + hashlib.sha256(_json_bytes(synth_recipe(p))).hexdigest()[:16]
    return file_sha256(path) if path else "in-memory"


def synth_recipe(provenance: dict[str, Any]) -> dict[str, Any]:
    """The part of a `synth.benchmarks` provenance that names its data (`data_identity`)."""
    return {k: provenance.get(k) for k in ("kind", "n", "seed", "generator_version", "knobs")}


def minmax(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of `X` (N, L) scaled to [0, 1], and which rows are flat (their range is below 1e-12 of
    their size: they cannot be scaled and come back shifted to 0). The one min-max of the package but
    `synth`'s, whose in-place float32 arithmetic defines the generated bytes."""
    lo, hi = X.min(axis=1, keepdims=True), X.max(axis=1, keepdims=True)
    flat = (hi - lo)[:, 0] <= 1e-12 * np.maximum(1.0, np.abs(hi[:, 0]))
    return (X - lo) / np.where(flat[:, None], 1.0, hi - lo), flat


def input_grid(axis: np.ndarray, length: int) -> np.ndarray:
    """A model's input grid for data on `axis`: `length` points uniformly spaced over the same range
    (`axis` itself when it already is one)."""
    axis = np.asarray(axis, dtype=np.float64)
    if length == len(axis) and np.allclose(np.diff(axis), np.diff(axis)[0]):
        return axis
    return np.linspace(axis[0], axis[-1], length)


def axis_coverage(x: np.ndarray, target: np.ndarray) -> float:
    """The fraction of `target`'s range that `x` (ascending) covers."""
    lo, hi = max(x[0], target[0]), min(x[-1], target[-1])
    return float(max(0.0, hi - lo) / (target[-1] - target[0]))


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (the 'data hash' in figure sidecars); computed once per file version
    (path, size, modification time), as datasets of gigabytes are hashed by several steps of a run."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resample_linear(
    X: np.ndarray, x_from: np.ndarray, x_to: np.ndarray, *, outside: Literal["error", "edge"] = "error"
) -> np.ndarray:
    """Linearly interpolate rows of `X` (N, L) sampled at ascending `x_from` onto `x_to`.

    One `searchsorted` for all rows, so it costs O(N·L') regardless of N. Outside the source range
    `outside="error"` raises and `"edge"` holds the end value.
    """
    x_from = np.asarray(x_from, dtype=np.float64)
    x_to = np.asarray(x_to, dtype=np.float64)
    lo, hi = x_from[0], x_from[-1]
    tol = 1e-6 * max(1.0, abs(hi - lo))
    if outside == "error" and (x_to[0] < lo - tol or x_to[-1] > hi + tol):
        raise DatasetError(
            f"target axis {x_to[0]:.1f}-{x_to[-1]:.1f} cm-1 reaches outside the data ({lo:.1f}-{hi:.1f} cm-1)"
        )
    xt = np.clip(x_to, lo, hi)
    j = np.clip(np.searchsorted(x_from, xt, side="right") - 1, 0, len(x_from) - 2)
    w = (xt - x_from[j]) / (x_from[j + 1] - x_from[j])
    X = np.asarray(X, dtype=np.float32)
    return (X[:, j] * (1.0 - w) + X[:, j + 1] * w).astype(np.float32)


def resample_spectra(
    X: np.ndarray, x_from: np.ndarray, x_to: np.ndarray, *, outside: Literal["error", "edge"] = "error"
) -> np.ndarray:
    """Resample rows of `X` (N, L) from ascending `x_from` onto ascending `x_to`, without aliasing.

    When the source is at least twice as dense as the target, each target point is the mean of the
    source's linear interpolant over its bin (a narrow band keeps its area, as with the paper's adaptive
    average pooling); otherwise plain linear interpolation (`resample_linear`). Outside the source range
    `outside` applies as in `resample_linear`.
    """
    x_from = np.asarray(x_from, dtype=np.float64)
    x_to = np.asarray(x_to, dtype=np.float64)
    if len(x_to) < 2 or np.median(np.diff(x_from)) * 2 > np.median(np.diff(x_to)):
        return resample_linear(X, x_from, x_to, outside=outside)
    resample_linear(X[:1], x_from, x_to[[0, -1]], outside=outside)  # the same range check
    Y = np.asarray(X, dtype=np.float64)
    edges = np.concatenate(
        [[1.5 * x_to[0] - 0.5 * x_to[1]], (x_to[1:] + x_to[:-1]) / 2, [1.5 * x_to[-1] - 0.5 * x_to[-2]]]
    )
    e = np.clip(edges, x_from[0], x_from[-1])
    C = np.concatenate(
        [np.zeros((len(Y), 1)), np.cumsum(np.diff(x_from) * (Y[:, 1:] + Y[:, :-1]) / 2, axis=1)], axis=1
    )
    j = np.clip(np.searchsorted(x_from, e, side="right") - 1, 0, len(x_from) - 2)
    w = e - x_from[j]
    y_e = Y[:, j] + (Y[:, j + 1] - Y[:, j]) * (w / (x_from[j + 1] - x_from[j]))
    F = C[:, j] + w * (Y[:, j] + y_e) / 2  # integral of the linear interpolant from x_from[0] to each edge
    width = np.diff(e)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.diff(F, axis=1) / width
    # A bin wholly outside the data has zero width after clipping: hold the nearest end value there.
    return np.where(width > 0, out, y_e[:, :-1]).astype(np.float32)


def random_splits(
    n: int, fractions: dict[str, float], seed: int, stratify: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Disjoint random splits covering all rows, e.g. ``{"train": .8, "val": .1, "test": .1}``.

    With `stratify` (class ids) each class is split in the same proportions.
    """
    rng = np.random.default_rng(seed)
    names = list(fractions)
    total = sum(fractions.values())
    groups = (
        [np.arange(n)] if stratify is None else [np.flatnonzero(stratify == c) for c in np.unique(stratify)]
    )
    out: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for rows in groups:
        rows = rng.permutation(rows)
        cuts = np.round(np.cumsum([fractions[k] / total for k in names]) * len(rows)).astype(int)
        for k, part in zip(names, np.split(rows, cuts[:-1]), strict=True):
            out[k].append(part)
    return {k: np.sort(np.concatenate(v)) for k, v in out.items()}


def describe_dataset(ds: SpectraDataset, name: str = "") -> str:
    """What a dataset is, in a few lines: kind, task, size, axis, labels per split, provenance, padding."""
    step = np.diff(ds.axis)
    kind = "synthetic" if ds.provenance.get("synthetic") else "real"
    lines = [
        f"{name or ds.source or 'dataset'}: {kind}, {ds.task}, {len(ds)} spectra x {ds.length} points",
        f"axis: {ds.axis[0]:.1f}-{ds.axis[-1]:.1f} cm-1, spacing {step.min():.3g}-{step.max():.3g} cm-1",
    ]
    counts = {"all": np.arange(len(ds)), **ds.splits}
    header = f"{'label':>28} " + " ".join(f"{k:>9}" for k in counts)
    lines += [f"{len(ds.label_names)} labels; spectra per label and split:", header]
    Y = ds.label_matrix() if ds.n_classes else np.zeros((len(ds), 0))
    for k, label in enumerate(ds.label_names):
        lines.append(
            f"{label[:28]:>28} " + " ".join(f"{int(Y[rows, k].sum()):>9}" for rows in counts.values())
        )
    if not ds.splits:
        lines.append("no splits: make them with `python -m peakmixer data split DATASET`")
    if "coverage" in ds.extras:
        cov = np.asarray(ds.extras["coverage"])
        lines.append(
            f"import coverage: {int((cov < 1).sum())} of {len(cov)} spectra padded (least {cov.min():.0%})"
        )
    prov = {k: v for k, v in ds.provenance.items() if k not in ("knobs",)}
    lines.append("provenance: " + ", ".join(f"{k}={v}" for k, v in prov.items()))
    return "\n".join(lines)


def toy_dataset(
    n: int = 64,
    length: int = 256,
    n_classes: int = 5,
    task: Task = "multilabel",
    seed: int = 0,
) -> SpectraDataset:
    """A tiny learnable dataset for tests: each class adds a Gaussian band at its own position."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(400.0, 4000.0, length)
    centres = np.linspace(axis[0], axis[-1], n_classes + 2)[1:-1]
    bands = np.exp(-0.5 * ((axis[None, :] - centres[:, None]) / (axis[-1] - axis[0]) * 40) ** 2)
    if task == "multilabel":
        y = (rng.random((n, n_classes)) < 0.4).astype(np.uint8)
        signal = y @ bands
    else:
        y = rng.integers(0, n_classes, n)
        signal = bands[y]
    X = signal + 0.05 * rng.standard_normal((n, length))
    return SpectraDataset(
        X=X.astype(np.float32),
        axis=axis,
        y=y,
        task=task,
        label_names=[f"class{i}" for i in range(n_classes)],
        ids=[f"toy{i}" for i in range(n)],
        splits=random_splits(n, {"train": 0.5, "val": 0.25, "test": 0.25}, seed),
        provenance={"synthetic": True, "generator": "peakmixer.data.toy_dataset", "seed": seed},
        masks=bands > 0.05,
    )


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1).encode()
