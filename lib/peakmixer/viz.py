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
import numpy as np
import pandas as pd

from .data import SpectraDataset, label_summary
from .provenance import git_sha, package_versions

# Deterministic SVG ids; PNG bytes are stable by themselves (PITFALLS.md).
mpl.rcParams["svg.hashsalt"] = "peakmixer"

# The paper's palette (UPSTREAM_SPEC §6) extended to the Transformer mixer.
MIXER_STYLE = {
    "none": {"color": "steelblue", "label": "no mixer"},
    "mlp": {"color": "chocolate", "label": "MLP"},
    "mlpmixer": {"color": "lightcoral", "label": "MLPMixer"},
    "transformer": {"color": "seagreen", "label": "Transformer"},
}
FACE = "snow"


def sidecar(
    path: Path,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    synthetic: bool,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<path stem>.json`` describing how `path` was made; returns the sidecar path."""
    info = {
        "file": path.name,
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
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
    os.replace(tmp, out)
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
) -> list[Path]:
    """Save `fig` as ``out_dir/name.{png,svg}`` with one sidecar ``name.json``; returns all paths."""
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
        sidecar(paths[0], params=params, data=data, synthetic=synthetic, extra={"formats": list(formats)})
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
) -> list[Path]:
    """Save `df` as ``out_dir/name.csv`` (+ ``name.json``). Synthetic tables carry a `synthetic` column."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if synthetic and "synthetic" not in df.columns:
        df = df.assign(synthetic=True)
    path = out / f"{name}.csv"
    df.to_csv(path, index=False)
    return [path, sidecar(path, params=params, data=data, synthetic=synthetic, extra={"rows": len(df)})]


def style_axes(ax: plt.Axes) -> None:
    ax.set_facecolor(FACE)
    ax.grid(True, color="0.85", linewidth=0.6)


# --- dataset figure (paper's datasets.png) ---------------------------------------------------------


def plot_label_frequencies(ax: plt.Axes, names: Sequence[str], shares: np.ndarray, title: str) -> None:
    ax.bar(range(len(shares)), shares, color="slategray", alpha=0.8)
    ax.set_xticks(range(len(shares)), names, rotation=90, fontsize=7)
    ax.set_ylabel("share of label occurrences")
    ax.set_title(title, fontweight="bold")
    style_axes(ax)


def plot_count_histogram(ax: plt.Axes, counts: np.ndarray, title: str, xlabel: str) -> None:
    edges = np.arange(counts.min(), counts.max() + 2) - 0.5
    ax.hist(counts, bins=edges, color="rosybrown", alpha=0.7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("spectra")
    ax.set_title(title, fontweight="bold")
    style_axes(ax)


def plot_spectrum_with_bands(
    ax: plt.Axes, axis: np.ndarray, spectrum: np.ndarray, masks: np.ndarray, names: Sequence[str], title: str
) -> None:
    """A spectrum with the true signal windows of its classes shaded, one colour per class."""
    ax.plot(axis, spectrum, color="black", linewidth=0.8)
    colors = plt.get_cmap("tab10")
    for i, (mask, name) in enumerate(zip(masks, names, strict=True)):
        edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
        for j, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
            ax.axvspan(
                axis[a], axis[b - 1], color=colors(i % 10), alpha=0.25, lw=0, label=name if j == 0 else None
            )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    if len(names):
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    style_axes(ax)


def dataset_title(name: str, ds: SpectraDataset) -> str:
    return f"{name} (synthetic)" if ds.provenance.get("synthetic") else name


def label_table(datasets: Mapping[str, SpectraDataset]) -> pd.DataFrame:
    """One row per dataset and label: spectra carrying it and its share of all label occurrences."""
    rows = []
    for name, ds in datasets.items():
        s = label_summary(ds)
        for label, count, share in zip(s["names"], s["counts"], s["shares"], strict=True):
            rows.append(
                {
                    "dataset": name,
                    "synthetic": bool(ds.provenance.get("synthetic")),
                    "task": ds.task,
                    "label": label,
                    "spectra": int(count),
                    "share": float(share),
                }
            )
    return pd.DataFrame(rows)


def plot_dataset_overview(datasets: Mapping[str, SpectraDataset]) -> plt.Figure:
    """The paper's dataset figure, one row per dataset: heavy atoms (a column only when some dataset has
    SMILES in its extras), labels per spectrum (multilabel) or spectra per class, and label shares."""
    from .labels import heavy_atom_shares

    atoms = any("smiles" in ds.extras for ds in datasets.values())
    ratios = [1, 1, 2.2] if atoms else [1, 2.2]
    fig, axes = plt.subplots(
        len(datasets),
        len(ratios),
        figsize=(4.5 * sum(ratios), 3.6 * len(datasets)),
        squeeze=False,
        gridspec_kw={"width_ratios": ratios},
    )
    for row, (name, ds) in zip(axes, datasets.items(), strict=True):
        title = dataset_title(name, ds)
        s = label_summary(ds)
        if atoms:
            ax = row[0]
            if "smiles" in ds.extras:
                shares = heavy_atom_shares([str(v) for v in ds.extras["smiles"] if str(v)])
                ax.bar(list(shares), list(shares.values()), color="slategray", alpha=0.8)
                ax.set(ylim=(0, 1), xlabel="heavy atoms", ylabel="share")
                ax.set_title(title, fontweight="bold")
                style_axes(ax)
            else:
                ax.text(0.5, 0.5, "no molecular structures", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
        ax = row[-2]
        if ds.task == "multilabel":
            plot_count_histogram(ax, s["per_spectrum"], title, "labels per spectrum")
        else:
            ax.bar(range(ds.n_classes), s["counts"], color="rosybrown", alpha=0.7)
            ax.set(xlabel="class", ylabel="spectra")
            ax.set_title(title, fontweight="bold")
            style_axes(ax)
        plot_label_frequencies(row[-1], s["names"], s["shares"], title)
    fig.tight_layout()
    return fig


def plot_examples(ds: SpectraDataset, name: str, n_examples: int = 4, seed: int = 0) -> plt.Figure:
    """Example spectra with the true signal windows (`ds.masks`) of their classes shaded.

    Multilabel: random spectra, each with the windows of the labels it carries. Multiclass: the mean
    spectrum (± sd) of random classes with that class's windows.
    """
    if ds.masks is None:
        raise ValueError(f"{name} has no ground-truth masks to shade")
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(n_examples, 1, figsize=(11, 2.3 * n_examples), sharex=True, squeeze=False)
    if ds.task == "multilabel":
        picks = rng.choice(len(ds), size=n_examples, replace=False)
        for ax, i in zip(axes[:, 0], picks, strict=True):
            on = np.flatnonzero(ds.y[i])
            plot_spectrum_with_bands(
                ax,
                ds.axis,
                ds.X[i],
                ds.masks[on],
                [ds.label_names[k] for k in on],
                f"{ds.ids[i]}: {', '.join(ds.label_names[k] for k in on)}",
            )
    else:
        classes = rng.choice(ds.n_classes, size=n_examples, replace=False)
        for ax, k in zip(axes[:, 0], classes, strict=True):
            X = ds.X[ds.y == k]
            mean, sd = X.mean(0), X.std(0)
            ax.fill_between(ds.axis, mean - sd, mean + sd, color="0.8", lw=0)
            plot_spectrum_with_bands(
                ax,
                ds.axis,
                mean,
                ds.masks[[k]],
                [ds.label_names[k]],
                f"class {ds.label_names[k]}: mean ± sd of {len(X)} spectra",
            )
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")
    fig.suptitle(f"{dataset_title(name, ds)}: examples with their true signal windows", fontweight="bold")
    fig.tight_layout()
    return fig


# --- Fig. 1: metric against cost -------------------------------------------------------------------


def plot_metric_vs_cost(
    ax: plt.Axes,
    summary: pd.DataFrame,
    metric: str,
    *,
    baseline: float | None = None,
    size_scale: float | None = None,
) -> None:
    """One series per mixer: mean ± sd of `metric` over seeds against GMACs, marker area ∝ params.

    `summary` has columns mixer, gmacs, params, `metric`_mean, `metric`_sd (see `sweep.summarize`).
    """
    size_scale = size_scale or 300 / max(summary["params"].max(), 1)
    for mixer, rows in summary.groupby("mixer", sort=False):
        rows = rows.sort_values("gmacs")
        style = MIXER_STYLE.get(str(mixer), {"color": "gray", "label": str(mixer)})
        ax.errorbar(
            rows["gmacs"],
            rows[f"{metric}_mean"],
            yerr=rows[f"{metric}_sd"].fillna(0),
            color=style["color"],
            capsize=3,
            lw=1.2,
            label=style["label"],
            zorder=2,
        )
        ax.scatter(
            rows["gmacs"],
            rows[f"{metric}_mean"],
            s=20 + size_scale * rows["params"],
            color=style["color"],
            edgecolor="white",
            linewidth=0.5,
            zorder=3,
        )
    if baseline is not None:
        ax.axhline(baseline, color="0.4", ls="--", lw=1, label="all-negative baseline")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    style_axes(ax)


def plot_width_layers_heatmap(ax: plt.Axes, grid: pd.DataFrame, metric: str) -> plt.cm.ScalarMappable:
    """Panel d: rows = extractor width, columns = MLPMixer layers, colour = mean `metric`."""
    im = ax.imshow(grid.values, cmap="RdBu_r", origin="lower", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    for (i, j), v in np.ndenumerate(grid.values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("MLPMixer layers")
    ax.set_ylabel("extractor width")
    return im


METRIC_LABELS = {
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "samples_f1": "samples-F1",
    "hamming_accuracy": "Accuracy (Hamming)",
    "emr": "EMR",
    "accuracy": "Accuracy",
}
