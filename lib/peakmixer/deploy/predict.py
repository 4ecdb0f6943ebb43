"""Predictions for a user's unlabelled spectra: `predict_files` (the `predict` command).

Every file an importer reads (JCAMP-DX, SPC, csv, parquet, npy, dataset files) is resampled onto the model's
input axis and normalised as in training; a spectrum that covers less than the whole axis is scored with its
ends held at the edge values and named in a warning (below `min_coverage` it is refused). A file that cannot
be read is named with its reason and skipped; the others are scored. One CSV row per spectrum: its file and
id, the predicted labels (or class), the likeliest class, and each label's probability.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.data.io.base import Rejection
from peakmixer.data.io.batch import expand_sources, read_spectra, refuse_other_kinds
from peakmixer.data.io.csv import CsvOptions
from peakmixer.data.preprocess import read_options
from peakmixer.deploy.engines import DeployedModel
from peakmixer.files import write_csv


@dataclass
class Predicted:
    """What `predict_files` wrote: the table (also at `out`), what it refused, and what it warns of."""

    table: pd.DataFrame
    out: Path
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0: every spectrum scored; 1: some refused (the others written); 2: nothing scored."""
        if self.table.empty:
            return 2
        return 1 if self.rejected else 0


def predict_files(
    files: list[str | os.PathLike],
    model: DeployedModel,
    out: str | os.PathLike,
    *,
    min_coverage: float = 0.8,
    npy_axis: str | os.PathLike | None = None,
    csv: CsvOptions | None = None,
    split: str | None = None,
    progress: bool = False,
    batch: int = 512,
) -> Predicted:
    """Score every readable spectrum in `files` (files or folders) with `model` into the CSV `out`."""
    sources = expand_sources(files)
    read = read_spectra(
        sources.files,
        model.axis,
        **read_options(model.preprocess, model.import_scaling),
        min_coverage=min_coverage,
        npy_axis=npy_axis,
        csv=csv,
        split=split,
        listed=sources.listed,
        progress=progress,
    )
    refuse_other_kinds(read, model.kind)
    names = model.label_names
    probs = (
        np.concatenate(
            [model.probabilities(np.stack(read.rows[i : i + batch])) for i in range(0, len(read.rows), batch)]
        )
        if read.rows
        else np.zeros((0, len(names)))
    )
    table = pd.DataFrame(
        {
            "file": read.sources,
            "spectrum": read.ids,
            "predicted": ["; ".join(names[k] for k in ks) for ks in model.predicted(probs)],
            "top_class": [names[int(k)] for k in probs.argmax(1)] if len(probs) else [],
            "top_probability": probs.max(1).round(6) if len(probs) else [],
            "coverage": np.round(read.coverage, 4),
        }
    )
    table = pd.concat([table, pd.DataFrame(probs.round(6), columns=[f"p({n})" for n in names])], axis=1)
    lo, hi = model.axis[0], model.axis[-1]
    warnings = [
        f"{sid}: covers {c:.0%} of the model's axis {lo:.0f}-{hi:.0f} cm-1; scored with its ends held at the "
        "edge values"
        for sid, c in zip(read.ids, read.coverage, strict=True)
        if c < 1 - 1e-9
    ]
    out = write_csv(Path(out), table)
    return Predicted(table, out, read.rejected, warnings, read.notes)
