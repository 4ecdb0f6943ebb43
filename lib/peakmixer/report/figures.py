"""Figure helpers: one `save_figure` / `save_table` that write the file(s) and a provenance sidecar.

Every output ``NAME.{png,svg,csv}`` gets ``NAME.json`` beside it: the notebook parameters, git SHA, data
hashes, package versions and whether the data are synthetic. A figure made from synthetic data is
stamped "SYNTHETIC DATA" so it can never pass for a real-data result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd

from peakmixer.files import write_csv, write_text
from peakmixer.provenance import git_sha, package_versions

# Deterministic SVG ids; PNG bytes are stable by themselves (PITFALLS.md).
mpl.rcParams["svg.hashsalt"] = "peakmixer"

FACE = "snow"
METRIC_LABELS = {
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "samples_f1": "samples-F1",
    "hamming_accuracy": "Hamming acc.",
    "emr": "EMR",
    "accuracy": "Accuracy",
}


def sidecar(
    path: Path,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    synthetic: bool,
    extra: Mapping[str, Any] | None = None,
    caption: str = "",
) -> Path:
    """Write ``<path stem>.json`` describing how `path` was made (and a one-line `caption` for the index
    of the outputs); returns the sidecar path."""
    info = {
        "file": path.name,
        "caption": caption,
        "synthetic_data": synthetic,
        "parameters": dict(params or {}),
        "data_sha256": dict(data or {}),
        "git_sha": git_sha(),
        "packages": package_versions(),
        **dict(extra or {}),
    }
    out = path.with_suffix(".json")
    if out.exists() and json.loads(out.read_text()).get("file") not in (path.name, None):
        # NAME.png and NAME.csv would share NAME.json: one would silently lose its provenance.
        raise FileExistsError(f"{out} already describes another file; give {path.name} its own name")
    write_text(out, json.dumps(info, indent=1, sort_keys=True, default=str))
    return out


def save_figure(
    fig: plt.Figure,
    out_dir: str | os.PathLike,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    synthetic: bool,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 150,
    extra: Mapping[str, Any] | None = None,
    caption: str = "",
) -> list[Path]:
    """Save `fig` as ``out_dir/name.{png,svg}`` with one sidecar ``name.json`` (plus `extra` facts, e.g. a
    spot check's agreement); returns all paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if synthetic:
        fig.text(
            0.995,
            0.005,
            "SYNTHETIC DATA",
            ha="right",
            va="bottom",
            fontsize=8,
            color="firebrick",
            alpha=0.8,
            fontweight="bold",
        )
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(path)
    paths.append(
        sidecar(
            paths[0],
            params=params,
            data=data,
            synthetic=synthetic,
            extra={"formats": list(formats), **dict(extra or {})},
            caption=caption,
        )
    )
    return paths


def save_table(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    synthetic: bool,
    extra: Mapping[str, Any] | None = None,
    caption: str = "",
) -> list[Path]:
    """Save `df` as ``out_dir/name.csv`` (+ ``name.json``). Synthetic tables carry a `synthetic` column."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if synthetic and "synthetic" not in df.columns:
        df = df.assign(synthetic=True)
    path = out / f"{name}.csv"
    write_csv(path, df)
    facts = {"rows": len(df), **dict(extra or {})}
    return [path, sidecar(path, params=params, data=data, synthetic=synthetic, extra=facts, caption=caption)]


def style_axes(ax: plt.Axes) -> None:
    ax.set_facecolor(FACE)
    ax.grid(True, color="0.85", linewidth=0.6)
