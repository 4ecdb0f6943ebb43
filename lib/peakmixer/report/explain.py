"""`python -m peakmixer explain FILE…`: a trained model's predictions and Grad-CAM for a user's own spectra.

    python -m peakmixer explain spectra/*.jdx --out explained/          # the shipped IR model
    python -m peakmixer explain --checkpoint runs/mine/best.pt my.spc --out explained/

Every file any importer reads (JCAMP-DX, SPC, csv, parquet, npy) is resampled onto the model's input axis
(refused when it covers less than 80% of it) and normalised as the importers do (min-max per spectrum). For
each spectrum: the class probabilities, and for each predicted class (probability >= the threshold; the most
likely class when none is) a Grad-CAM figure over all channels and, with an interpretable path, over the
class-specific ones, with the textbook bands of the group boxed. One PNG and one JSON per spectrum, a
summary table (``summary.csv``) and ``report.json`` with every refused file and its reason.

Exit status: 0 when every spectrum was explained, 1 when some file or spectrum was refused (the others are
still explained), 2 when nothing could be explained or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from peakmixer.attribution.gradcam import cams_for, mean_class_cams, subsets_of
from peakmixer.config import MissingFile, add_threads_argument, from_dict
from peakmixer.data.dataset import DatasetError, SpectraDataset, load
from peakmixer.data.io.arguments import add_source_arguments, csv_options
from peakmixer.data.io.batch import Rejection, expand_sources, read_spectra, refuse_other_kinds
from peakmixer.data.io.csv import CsvOptions
from peakmixer.data.io.dataset_file import is_dataset_path
from peakmixer.data.preprocess import conform_dataset, read_options
from peakmixer.data.split_record import check_scored_split
from peakmixer.deploy.engines import ENGINES, open_model
from peakmixer.files import write_csv, write_text
from peakmixer.paths import MODELS_DIR
from peakmixer.report.cam_figures import plot_cam_grid, plot_mean_cams
from peakmixer.report.figures import save_figure
from peakmixer.synth.ir17_bands import textbook_bands
from peakmixer.train.checkpoint import (
    checkpoint_axis,
    checkpoint_scaling,
    load_checkpoint,
    model_from_checkpoint,
    spectrum_kind,
)
from peakmixer.train.config import TrainConfig
from peakmixer.train.evaluate import class_probabilities
from peakmixer.train.prepare import normalize

SHIPPED = {
    "ir": MODELS_DIR / "synth-ir17_ip.pt",
    "raman": MODELS_DIR / "synth-bac30_ip.pt",
}


@dataclass
class Explained:
    """What `explain_files` did: one summary row per explained spectrum, and what it refused."""

    summary: pd.DataFrame
    rejected: list[Rejection] = field(default_factory=list)
    out_dir: Path = Path(".")
    notes: list[str] = field(default_factory=list)  # skipped files, how a dataset's split was checked

    @property
    def exit_code(self) -> int:
        if self.summary.empty:
            return 2
        return 1 if self.rejected else 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "spectrum"


def explain_files(
    files: list[str | Path],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    threshold: float = 0.5,
    layer: str = "stem",
    min_coverage: float = 0.8,
    split: str | None = None,
    allow_changed_splits: bool = False,
    npy_axis: str | Path | None = None,
    csv: CsvOptions | None = None,
    progress: bool = False,
    engine: str = "torch",
) -> Explained:
    """Explain every readable spectrum in `files` with the model of `checkpoint` (default: the shipped IR
    model) into `out_dir`; see the module docstring for what is written. Files are read as ``data import``
    reads them (`split`, `npy_axis`, `csv`); a dataset file's split that holds spectra the run was trained
    or validated on is refused unless `allow_changed_splits` (`split_record.check_scored_split`).
    `engine`: what computes the probabilities, torch or ONNX Runtime (`deploy.open_model`); Grad-CAM needs
    gradients, so torch draws the maps either way."""
    path = Path(checkpoint) if checkpoint else SHIPPED["ir"]
    if not path.exists():
        raise MissingFile(
            f"{path}: " + ("checkpoint not found" if checkpoint else "the shipped model is missing")
        )
    ex = Explainer.load(path)
    sources = expand_sources(files)
    notes = [
        ex.check_split(load(f), split, allow_changed_splits)
        for f in sources.files
        if is_dataset_path(f, by_name=False)
    ]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = read_spectra(
        sources.files,
        ex.axis,
        **read_options(ex.preprocess, ex.import_scaling),
        min_coverage=min_coverage,
        npy_axis=npy_axis,
        csv=csv,
        split=split,
        listed=sources.listed,
    )
    refuse_other_kinds(read, ex.kind)
    rows, zero_maps = [], 0
    if read.rows:
        X = torch.from_numpy(normalize(np.stack(read.rows), ex.normalize).astype(np.float32)).unsqueeze(1)
        if engine == "torch":
            with torch.no_grad():
                probs = ex._probabilities(ex.model(X).float())
        else:
            probs = open_model(path, engine).probabilities(np.stack(read.rows))
        subsets = [s for s in subsets_of(ex.model) if s != "complement"]
        note = " (a model trained on synthetic spectra)" if ex.synthetic else ""
        for i, sid in enumerate(tqdm(read.ids, disable=not progress, desc="explaining", unit="spectrum")):
            p = probs[i]
            chosen = (
                np.flatnonzero(p >= threshold) if ex.task == "multilabel" else np.array([int(p.argmax())])
            )
            if chosen.size == 0:
                chosen = np.array([int(p.argmax())])  # nothing above the threshold: the most likely class
            pairs = [(i, int(k)) for k in chosen[np.argsort(-p[chosen])]]
            with warnings.catch_warnings():  # counted into one note below; each panel says it too
                warnings.filterwarnings("ignore", message="Grad-CAM is zero everywhere")
                cams = cams_for(ex.model, X, pairs, subsets=subsets, layer=layer)
            zero_maps += sum(not np.any(m > 0) for m in cams.values())
            fig = plot_cam_grid(
                ex.axis,
                {i: X[i, 0].numpy()},
                [(i, k, f"{ex.names[k]}\np = {p[k]:.2f}") for _, k in pairs],
                cams,
                subsets=subsets,
                bands=ex.bands(),
                title=f"{sid} — {ex.run_name}{note}",
            )
            stem = _slug(sid)
            save_figure(
                fig,
                out,
                stem,
                params={"checkpoint": str(path), "threshold": threshold, "layer": layer, "engine": engine},
                synthetic=False,
                formats=("png",),
                extra={
                    "spectrum": sid,
                    "coverage": read.coverage[i],
                    "explained_classes": [ex.names[k] for _, k in pairs],
                    "probabilities": {ex.names[k]: float(p[k]) for k in np.argsort(-p)},
                    "model_config_id": ex.config_id,
                },
            )
            plt.close(fig)
            rows.append(
                {
                    "spectrum": sid,
                    "figure": f"{stem}.png",
                    "predicted": "; ".join(ex.names[k] for _, k in pairs if p[k] >= threshold),
                    "top_class": ex.names[int(p.argmax())],
                    "top_probability": float(p.max()),
                    "coverage": read.coverage[i],
                }
            )
    columns = ["spectrum", "figure", "predicted", "top_class", "top_probability", "coverage"]
    summary = pd.DataFrame(rows, columns=columns)
    write_csv(out / "summary.csv", summary)
    notes = [n for n in notes if n] + read.notes
    if zero_maps:
        notes.append(f"{zero_maps} Grad-CAM maps were zero everywhere (each panel says so)")
    report = {
        "checkpoint": str(path),
        "explained": len(rows),
        "notes": notes,
        "refused": [{"source": r.source, "reason": r.reason} for r in read.rejected],
    }
    write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    return Explained(summary, read.rejected, out, notes)


def _cli(args: argparse.Namespace) -> int:
    done = explain_files(
        args.files,
        args.out,
        checkpoint=args.checkpoint,
        threshold=args.threshold,
        layer=args.layer,
        min_coverage=args.min_coverage,
        split=args.split,
        allow_changed_splits=args.allow_changed_splits,
        npy_axis=args.npy_axis,
        csv=csv_options(args),
        progress=not args.no_progress,
        engine=args.engine,
    )
    for r in done.summary.itertuples(index=False):
        print(f"{r.spectrum}: {r.predicted or '(none above threshold)'} -> {done.out_dir / r.figure}")
    for n in done.notes:
        print(f"note: {n}")
    for r in done.rejected:
        print(f"refused {r.source}: {r.reason}")
    table = done.out_dir / "summary.csv"
    print(f"{len(done.summary)} explained, {len(done.rejected)} refused; summary in {table}")
    return done.exit_code


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="+",
        help="spectrum files or folders (JCAMP-DX, SPC, csv, parquet, npy) or dataset files (.npz)",
    )
    p.add_argument(
        "--checkpoint", default=None, help="a run's best.pt or a models/*.pt (default: shipped IR model)"
    )
    p.add_argument("--out", default="explained", help="output folder (default: ./explained)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability that predicts a class")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help="what computes the probabilities (Grad-CAM is always torch's: it needs gradients)",
    )
    p.add_argument(
        "--layer", default="stem", help="Grad-CAM layer: stem, extractor, features or a module name"
    )
    p.add_argument(
        "--allow-changed-splits",
        action="store_true",
        help="explain a dataset's split that holds spectra the run trained or validated on (said)",
    )
    add_source_arguments(p)
    add_threads_argument(p)
    p.set_defaults(func=_cli)


# --- a trained model and its figures (the paper's Fig. 2 and 3, and the mean-CAM panel) ----------------


@dataclass
class Explainer:
    """A trained model with what its figures need: its input axis, class names, task and textbook bands."""

    model: torch.nn.Module
    axis: np.ndarray
    names: list[str]
    task: str
    normalize: str
    source: str
    config_id: str = ""
    synthetic: bool = False  # trained on synthetic spectra
    split_record: dict | None = None  # what the run was trained, validated and tested on
    train_split: str = "train"
    kind: str | None = None  # ir / raman: the kind of spectrum it was trained on, where known
    preprocess: dict | None = None  # the pipeline its training data went through (`data.preprocess`)
    import_scaling: str = "minmax"  # without a pipeline: how its data were scaled at import (or none)

    @classmethod
    def load(cls, checkpoint: str | Path) -> Explainer:
        ckpt = load_checkpoint(checkpoint)
        cfg = from_dict(TrainConfig, ckpt["config"])
        return cls(
            model_from_checkpoint(ckpt).eval(),
            checkpoint_axis(ckpt),
            list(ckpt["label_names"]),
            ckpt["task"],
            cfg.data.normalize,
            str(checkpoint),
            str(ckpt.get("config_id", "")),
            bool(ckpt.get("synthetic_data")),
            ckpt.get("split_record"),
            cfg.data.train_split,
            spectrum_kind(ckpt),
            ckpt.get("preprocess"),
            checkpoint_scaling(ckpt),
        )

    def check_split(self, ds: SpectraDataset, split: str | None, allow_changed: bool = False) -> str:
        """`split_record.check_scored_split` of split `split` of `ds` (nothing to check when None)."""
        if split is None:
            return ""
        return check_scored_split(
            {"split_record": self.split_record},
            ds,
            split,
            run=Path(self.source).name,
            train_split=self.train_split,
            allow_changed=allow_changed,
        )

    def split_of(self, ds: SpectraDataset, split: str, allow_changed: bool = False) -> SpectraDataset:
        """Split `split` of `ds`, checked against the run's own (`check_split`; its note printed)."""
        if said := self.check_split(ds, split, allow_changed):
            print(f"note: {said}")
        return ds.split(split)

    def inputs(self, ds: SpectraDataset, name: str = "dataset") -> tuple[SpectraDataset, torch.Tensor]:
        """The dataset on the model's axis and its model inputs (N, 1, L), preprocessed and normalised as
        in training (`data.preprocess.conform_dataset`)."""
        ds = conform_dataset(ds, self.preprocess).onto(self.axis, name=name)
        return ds, torch.from_numpy(normalize(ds.X, self.normalize).astype(np.float32)).unsqueeze(1)

    def bands(self) -> dict[int, list[tuple[float, float, str]]]:
        return {k: textbook_bands(n) for k, n in enumerate(self.names)}

    def cam_figure(self, ds: SpectraDataset, indices: list[int], *, layer: str = "stem", title: str = ""):
        """Fig. 2 / 3: for each spectrum, one row per true class (its positive labels, or its class), one
        column per channel subset, textbook bands boxed and, where known, the true bands marked."""
        ds, X = self.inputs(ds)
        pairs = []
        for i in indices:
            classes = np.flatnonzero(ds.y[i]) if ds.task == "multilabel" else [int(ds.y[i])]
            pairs += [(i, int(k)) for k in classes]
        if not pairs:
            raise DatasetError(
                f"{ds.source or 'dataset'}: spectra {[ds.ids[i] for i in indices]} have no positive label "
                "to explain; pick spectra with labels (`richest` does)"
            )
        cams = cams_for(self.model, X, pairs, layer=layer)
        subsets = list(subsets_of(self.model))
        with torch.no_grad():
            logits = self.model(X[sorted(set(indices))]).float()
        probs = dict(zip(sorted(set(indices)), self._probabilities(logits), strict=True))
        rows = [(i, k, f"{ds.ids[i]}\n{self.names[k]} (p = {probs[i][k]:.2f})") for i, k in pairs]
        truth = dict(enumerate(ds.masks)) if ds.masks is not None else None
        spectra = {i: X[i, 0].numpy() for i in indices}
        return plot_cam_grid(
            ds.axis, spectra, rows, cams, subsets=subsets, bands=self.bands(), truth=truth, title=title
        )

    def mean_cam_figure(
        self, ds: SpectraDataset, *, per_class: int = 40, layer: str = "stem", title: str = ""
    ):
        """Per class, the mean class-specific Grad-CAM over up to `per_class` of its spectra."""
        ds, X = self.inputs(ds)
        y = torch.from_numpy(np.asarray(ds.y))
        spectra, cams = mean_class_cams(self.model, X, y, ds.task, layer=layer, per_class=per_class)
        truth = dict(enumerate(ds.masks)) if ds.masks is not None else None
        return plot_mean_cams(
            ds.axis,
            spectra,
            cams,
            self.names,
            truth=truth,
            bands=self.bands(),
            title=title,
            channels=self.mean_cam_channels,
        )

    @property
    def mean_cam_channels(self) -> str:
        """What the mean-CAM figure explains through: the class-specific channels of an interpretable
        path, else all channels (`cam.mean_class_cams`)."""
        return "class-specific" if "specific" in subsets_of(self.model) else "all-channel"

    @property
    def run_name(self) -> str:
        """The run, for titles: ``RUN/best.pt`` for a run's checkpoint, the file name for a shipped one."""
        path = Path(self.source)
        return f"{path.parent.name}/{path.name}" if path.name in ("best.pt", "last.pt") else path.name

    def _probabilities(self, logits: torch.Tensor) -> np.ndarray:
        return class_probabilities(self.task, logits)


def richest(ds: SpectraDataset, n: int = 1) -> list[int]:
    """The `n` spectra with the most positive labels (multilabel; the paper's Fig. 2 molecule has seven),
    never one without any, or the first spectra of `n` different classes (multiclass)."""
    if ds.task == "multilabel":
        count = np.asarray(ds.y).sum(1).astype(np.int64)  # signed: -count of an unsigned sum wraps
        if not count.any():
            raise DatasetError(f"{ds.source or 'dataset'}: no spectrum has a positive label to explain")
        order = np.argsort(-count, kind="stable")
        return [int(i) for i in order[: min(n, int((count > 0).sum()))]]
    firsts = {}
    for i, k in enumerate(np.asarray(ds.y)):
        firsts.setdefault(int(k), i)
    return list(firsts.values())[:n]
