"""Figure helpers: one `save_figure` / `save_table` that write the file(s) and a provenance sidecar.

Every output ``NAME.{png,svg,csv}`` gets ``NAME.json`` beside it: the notebook parameters, git SHA, data
hashes, package versions and whether the data are synthetic. A figure made from synthetic data is
stamped "SYNTHETIC DATA" so it can never pass for a real-data result.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from peakmixer.data.dataset import SpectraDataset, label_summary, nearest_spectrum
from peakmixer.files import write_csv, write_text
from peakmixer.metrics import main_metric
from peakmixer.provenance import git_sha, package_versions

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


def plot_class_means(ds: SpectraDataset, name: str = "", max_classes: int = 12) -> plt.Figure:
    """The mean ± sd spectrum of each class (multiclass) or label (multilabel), up to `max_classes`."""
    Y = ds.label_matrix() if ds.n_classes else np.ones((len(ds), 1), dtype=np.uint8)
    names = ds.label_names or ["all spectra"]
    shown = list(range(min(len(names), max_classes)))
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.6 * len(shown) + 0.6), squeeze=False, sharex=True)
    for ax, k in zip(axes[:, 0], shown, strict=True):
        X = ds.X[Y[:, k] > 0]
        if len(X):
            mean, sd = X.mean(0), X.std(0)
            ax.fill_between(ds.axis, mean - sd, mean + sd, color="0.82", lw=0)
            ax.plot(ds.axis, mean, color="black", lw=0.8)
        ax.set_title(f"{names[k]} ({len(X)} spectra)", fontsize=8, loc="left")
        ax.set_yticks([])
        style_axes(ax)
    axes[-1, 0].set_xlabel("wavenumber (cm$^{-1}$)")
    more = f" (first {len(shown)} of {len(names)})" if len(names) > len(shown) else ""
    fig.suptitle(f"{dataset_title(name or ds.source, ds)}: mean ± sd per class{more}", fontweight="bold")
    fig.tight_layout()
    return fig


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
    from peakmixer.data.labels import heavy_atom_shares

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


# --- Fig. 1: metric against cost, and the width x layers grid -------------------------------------

MULTILABEL_PANEL = ("micro_f1", "hamming_accuracy", "emr")  # the paper's F1 / Accuracy / EMR rows


def _marker_area(params: np.ndarray | pd.Series | float, largest: float) -> np.ndarray:
    """Marker area ∝ parameters (the paper's "parameter amount"), on one scale for the whole figure."""
    return 12 + 420 * np.asarray(params, dtype=float) / largest


def plot_metric_vs_cost(
    ax: plt.Axes, summary: pd.DataFrame, metric: str, *, largest: float, baseline: float | None = None
) -> None:
    """One series per mixer: mean ± sd of `metric` over seeds against GMACs, marker area ∝ params; a point
    of a single seed is hollow (it has no sd).

    `summary` has columns mixer, gmacs, params, `metric`_mean, `metric`_sd (see `results.summarize`).
    """
    for mixer, style in MIXER_STYLE.items():
        rows = summary[summary["mixer"] == mixer].sort_values("gmacs")
        if rows.empty:
            continue
        ax.errorbar(
            rows["gmacs"],
            rows[f"{metric}_mean"],
            yerr=rows[f"{metric}_sd"].fillna(0),
            color=style["color"],
            capsize=3,
            lw=1.2,
            zorder=2,
        )
        one = rows["n_seeds"].to_numpy() < 2 if "n_seeds" in rows else np.zeros(len(rows), bool)
        for single, part in ((False, rows[~one]), (True, rows[one])):  # one seed: hollow, it has no sd
            ax.scatter(
                part["gmacs"],
                part[f"{metric}_mean"],
                s=_marker_area(part["params"], largest),
                color="white" if single else style["color"],
                edgecolor=style["color"] if single else "white",
                linewidth=1.2 if single else 0.5,
                zorder=3,
            )
    if baseline is not None:  # as text: a line at the baseline would squash the differences that matter
        ax.text(
            0.99,
            0.04,
            f"all-negative: {baseline:.3f}",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
            color="0.3",
        )
    ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontweight="bold")
    style_axes(ax)


def plot_width_layers_grid(
    ax: plt.Axes, grid: pd.DataFrame, metric: str, *, largest: float
) -> mpl.cm.ScalarMappable:
    """Panel d as the paper draws it: a bubble per (MLPMixer layers, extractor width), area ∝ parameters,
    colour = mean `metric` on a diverging map centred between the lowest and highest value."""
    widths = sorted(grid["width"].unique())
    layers = sorted(grid["mixer_layers"].unique())
    values = grid[f"{metric}_mean"].to_numpy(float)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    half = max((hi - lo) / 2, 0.005) * 1.05  # one bubble or near-equal ones: a readable ±0.005 scale
    norm = mpl.colors.TwoSlopeNorm(
        vcenter=(lo + hi) / 2, vmin=(lo + hi) / 2 - half, vmax=(lo + hi) / 2 + half
    )
    x = grid["mixer_layers"].map({v: i for i, v in enumerate(layers)})
    y = grid["width"].map({v: i for i, v in enumerate(widths)})
    sc = ax.scatter(
        x,
        y,
        s=_marker_area(grid["params"], largest),
        c=values,
        cmap="RdBu_r",
        norm=norm,
        edgecolor="0.2",
        linewidth=0.6,
        zorder=3,
    )
    for xi, yi, v in zip(x, y, values, strict=True):
        ax.annotate(
            f"{v:.3f}", (xi, yi), xytext=(0, -17), textcoords="offset points", ha="center", fontsize=7
        )
    ax.set_xticks(range(len(layers)), [str(v) for v in layers])
    ax.set_yticks(range(len(widths)), [str(v) for v in widths])
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_ylim(-0.6, len(widths) - 0.4)
    ax.set_xlabel("MLPMixer layers", fontweight="bold")
    ax.set_ylabel("ResPeak width", fontweight="bold")
    style_axes(ax)
    return sc


def _nice(value: float) -> float:
    exp = 10 ** math.floor(math.log10(value))
    return round(value / exp) * exp


def _legends(
    ax: plt.Axes, largest: float, mixers: Sequence[str], *, wide: bool = False, single: bool = False
) -> None:
    """The mixer colours and the parameter-amount sizes, as the paper puts them under panel c (one above
    the other), or side by side in a `wide` strip; with `single`, what a hollow (one-seed) marker means."""
    ax.set_axis_off()
    handles = [
        plt.Line2D([], [], marker="o", ls="", markersize=9, color=MIXER_STYLE[m]["color"])
        for m in MIXER_STYLE
        if m in mixers
    ]
    names = [
        f"ResPeak + {MIXER_STYLE[m]['label']}" if m != "none" else "ResPeak"
        for m in MIXER_STYLE
        if m in mixers
    ]
    if single:
        handles.append(
            plt.Line2D([], [], marker="o", ls="", markersize=9, color="white", markeredgecolor="0.4")
        )
        names.append("one seed (no sd)")
    first = ax.legend(
        handles,
        names,
        loc="center",
        bbox_to_anchor=(0.3, 0.5) if wide else (0.5, 0.7),
        ncol=2,
        frameon=False,
        fontsize=11,
    )
    ax.add_artist(first)
    sizes = sorted({_nice(largest * f) for f in (0.1, 0.4, 1.0)})
    size_handles = [
        ax.scatter([], [], s=_marker_area(p, largest), color="0.5", edgecolor="white") for p in sizes
    ]
    ax.legend(
        size_handles,
        [f"{p / 1e6:g}M" for p in sizes],
        loc="center",
        bbox_to_anchor=(0.75, 0.5) if wide else (0.5, 0.3),
        ncol=len(sizes),
        frameon=False,
        title="Parameter amount",
        fontsize=10,
        title_fontsize=11,
        borderpad=1.2,
        labelspacing=1.4,
    )


def plot_fig1(
    summary: pd.DataFrame,
    grid: pd.DataFrame | None,
    *,
    synthetic: Mapping[str, bool],
    datasets: Sequence[str] | None = None,
    grid_dataset: str = "",
) -> plt.Figure:
    """The paper's Fig. 1 layout: one panel per dataset (F1 / Hamming accuracy / EMR rows for multilabel,
    accuracy for multiclass) against GMACs per spectrum, and d, the width x MLPMixer-layers bubble grid.

    `summary` and `grid` are `results.summarize` tables (mean ± sd over seeds); every dataset whose data
    are synthetic says so in its title. Panels fill a 2 x 2 layout without empty quadrants: the legends
    take the cell a third dataset would use.
    """
    if datasets is None:  # as the paper: the multilabel (substructure) panels first, bacteria last
        tasks = summary.drop_duplicates("dataset").set_index("dataset")["task"]
        datasets = sorted(tasks.index, key=lambda name: tasks[name] != "multilabel")
    datasets = list(datasets)
    if not 1 <= len(datasets) <= 3:
        raise ValueError(f"Fig. 1 has room for one to three datasets, got {datasets}")
    parts = [summary["params"]] + ([grid["params"]] if grid is not None and not grid.empty else [])
    largest = float(pd.concat(parts).max())
    fig = plt.figure(figsize=(15, 11 if len(datasets) > 1 else 6.5))
    if len(datasets) == 1:  # a | d, the legends beneath
        outer = fig.add_gridspec(2, 2, height_ratios=[4, 1], hspace=0.3, wspace=0.22)
        cells, d_cell, legend_cell = [outer[0, 0]], outer[0, 1], outer[1, :]
    else:  # a | b, then c with the legends beneath it (or the legends alone) | d
        outer = fig.add_gridspec(2, 2, hspace=0.28, wspace=0.22)
        cells, d_cell, legend_cell = (
            [outer[0, 0], outer[0, 1], outer[1, 0]][: len(datasets)],
            outer[1, 1],
            None,
        )
        if len(datasets) == 2:
            legend_cell = outer[1, 0]
    letters = iter("abc")
    for cell, name in zip(cells, datasets, strict=True):
        rows = summary[summary["dataset"] == name]
        metrics = MULTILABEL_PANEL if rows["task"].iloc[0] == "multilabel" else ("accuracy",)
        below = len(datasets) == 3 and cell is cells[2]
        if below and len(metrics) == 1:
            inner = cell.subgridspec(2, 1, hspace=0.1, height_ratios=[1, 1])
            legend_cell = inner[1]
        elif below:  # a multilabel third panel: the legends go into a strip at its foot
            inner = cell.subgridspec(4, 1, hspace=0.1, height_ratios=[1, 1, 1, 0.9])
            legend_cell = inner[3]
        else:
            inner = cell.subgridspec(len(metrics), 1, hspace=0.08)
        axes = [fig.add_subplot(inner[i]) for i in range(len(metrics))]
        for ax, metric in zip(axes, metrics, strict=True):
            base = None
            if metric == "hamming_accuracy" and "all_negative_hamming_accuracy_mean" in rows:
                base = float(rows["all_negative_hamming_accuracy_mean"].iloc[0])
            plot_metric_vs_cost(ax, rows, metric, largest=largest, baseline=base)
            if ax is not axes[-1]:
                ax.tick_params(labelbottom=False)
            ax.sharex(axes[0])
        axes[-1].set_xlabel("GMACs per spectrum", fontweight="bold")
        axes[0].set_title(name + (" (synthetic)" if synthetic.get(name) else ""), fontweight="bold")
        _letter(fig, cell, next(letters))
    single = "n_seeds" in summary and bool((summary["n_seeds"] < 2).any())
    mixers = list(summary["mixer"].unique())
    _legends(fig.add_subplot(legend_cell), largest, mixers, wide=len(datasets) == 1, single=single)
    ax = fig.add_subplot(d_cell)
    if grid is not None and not grid.empty:
        metric = main_metric(grid["task"].iloc[0])
        sc = plot_width_layers_grid(ax, grid, metric, largest=largest)
        bar = fig.colorbar(sc, ax=ax, label=METRIC_LABELS[metric], fraction=0.06, pad=0.02)
        bar.formatter.set_useOffset(False)  # metric values, never "1e-7 + 9.11e-1"
        bar.update_ticks()
        fewest, most = int(grid["n_seeds"].min()), int(grid["n_seeds"].max())
        seeds = (
            "seed 0"
            if most == 1
            else f"mean of {fewest}-{most} seeds"
            if fewest < most
            else f"mean of {most} seeds"
        )
        ax.set_title(
            grid_dataset + (" (synthetic)" if synthetic.get(grid_dataset) else "") + f", {seeds}",
            fontweight="bold",
        )
    else:
        ax.text(0.5, 0.5, "no width x layers grid in these results", ha="center", va="center")
        ax.set_axis_off()
    _letter(fig, d_cell, "d")  # the paper's letter for this panel
    return fig


def _letter(fig: plt.Figure, cell: Any, letter: str) -> None:
    """A panel letter at the top left of its grid cell, in figure coordinates (so all panels align)."""
    box = cell.get_position(fig)
    fig.text(box.x0 - 0.045, box.y1 + 0.015, letter, fontsize=18)


# --- 03: Table 1 and the ground-truth scores ---------------------------------------------------------


def plot_table1(table: pd.DataFrame, *, synthetic: Mapping[str, bool]) -> plt.Figure:
    """Table 1 drawn as the paper draws it: score x correlation matrix rows, one column per dataset,
    mean ± sd over seeds, the better (lower) value in bold."""
    datasets = list(dict.fromkeys(table["dataset"]))
    rows = [(s, m) for s in dict.fromkeys(table["score"]) for m in ("trainable", "frozen")]
    col = 1.8  # width of a dataset column, in axis units
    fig, ax = plt.subplots(figsize=(3.6 + 3.0 * len(datasets), 0.55 * (len(rows) + 2)))
    ax.set_axis_off()
    ax.set_xlim(0, 2.2 + col * len(datasets))
    ax.set_ylim(len(rows) + 1, 0)
    heads = ["", "Correlation matrix", *(d + (" (synthetic)" if synthetic.get(d) else "") for d in datasets)]
    for j, text in enumerate(heads):
        x = [0.35, 1.5][j] if j < 2 else 2.2 + col * (j - 2) + col / 2
        ax.text(x, 0.5, text, ha="center", va="center", fontsize=11)
    ax.axhline(0.02, color="black", lw=1.2)
    ax.axhline(1, color="black", lw=0.8)
    ax.axhline(len(rows) + 1, color="black", lw=1.2)
    for i, (score, mode) in enumerate(rows, start=1):
        if mode == "trainable":
            ax.text(0.35, i + 0.5, score.capitalize(), ha="center", va="center", fontsize=11)
        ax.text(
            1.5,
            i + 0.5,
            "Trainable" if mode == "trainable" else "Untrainable (frozen)",
            ha="center",
            va="center",
            fontsize=10,
        )
        for j, dataset in enumerate(datasets):
            cell = table[
                (table["score"] == score) & (table["correlation"] == mode) & (table["dataset"] == dataset)
            ]
            if cell.empty:
                continue
            here = cell.iloc[0]
            both = table[(table["score"] == score) & (table["dataset"] == dataset)]
            best = here["mean"] == both["mean"].min()
            sd = "" if not np.isfinite(here["sd_over_seeds"]) else f" ± {here['sd_over_seeds']:.3g}"
            ax.text(
                2.2 + col * j + col / 2,
                i + 0.5,
                f"{here['mean']:.4g}{sd}",
                ha="center",
                va="center",
                fontsize=10,
                fontweight="bold" if best else "normal",
            )
    n = int(table["seeds"].max()) if len(table) else 0
    ax.set_title(
        f"Table 1: infidelity and sensitivity of class-specific Grad-CAM (lower is better; mean ± sd "
        f"over {n} seeds)",
        fontsize=10,
    )
    return fig


SUBSET_TITLES = {
    "all": "all channels",
    "specific": "class-specific channels",
    "complement": "complementary channels",
}
MODE_COLORS = {"trainable": "lightcoral", "frozen": "slategray", "off": "steelblue"}


def plot_ground_truth(gt: pd.DataFrame, *, synthetic: Mapping[str, bool]) -> plt.Figure:
    """Per dataset, each ground-truth score of the Grad-CAM maps for every (matrix, channel subset) and
    PICNN's pathway scores: bars are means over seeds, whiskers the sd. Ground-truth scores: higher is
    better; pred_3 (the true classes' own channels removed) should be low for a path that ties channels
    to classes."""
    datasets = list(dict.fromkeys(gt["dataset"]))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(12, 3.6 * len(datasets)), squeeze=False)
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        at = gt[gt["dataset"] == dataset]
        scores = list(dict.fromkeys(at["score"]))
        groups = [(m, c) for m in ("trainable", "frozen", "off") for c in ("specific", "complement", "all")]
        groups = [g for g in groups if ((at["ip_mode"] == g[0]) & (at["channels"] == g[1])).any()]
        width = 0.8 / max(len(groups), 1)
        for gi, (mode, subset) in enumerate(groups):
            part = at[(at["ip_mode"] == mode) & (at["channels"] == subset)].set_index("score")
            xs = [i + (gi - (len(groups) - 1) / 2) * width for i, s in enumerate(scores) if s in part.index]
            vals = [part.loc[s, "mean"] for s in scores if s in part.index]
            errs = [
                0 if not np.isfinite(part.loc[s, "sd"]) else part.loc[s, "sd"]
                for s in scores
                if s in part.index
            ]
            hatch = {"specific": "", "complement": "//", "all": ".."}[subset]
            ax.bar(
                xs,
                vals,
                width,
                yerr=errs,
                color=MODE_COLORS[mode],
                hatch=hatch,
                edgecolor="white",
                capsize=2,
                label=f"{mode}: {SUBSET_TITLES[subset]}",
            )
        ax.set_xticks(range(len(scores)), [s.replace("_", " ") for s in scores], fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score")
        ax.set_title(
            dataset + (" (synthetic: true bands known)" if synthetic.get(dataset) else ""), fontweight="bold"
        )
        style_axes(ax)
    axes[-1, 0].legend(fontsize=8, ncol=5, loc="upper left", bbox_to_anchor=(0, -0.15), frameon=False)
    fig.tight_layout()
    return fig


# --- 04: Grad-CAM figures (the paper's Fig. 2 and 3) ---------------------------------------------------

CAM_CMAP = "BuPu"  # the paper's purple map
# Bond symbols as a chemist prints them (the band table is written in SMILES-like ASCII).
_SYMBOLS = str.maketrans({"#": "≡", "2": "₂", "3": "₃"})


def bond_text(text: str) -> str:
    """A band assignment with proper symbols: ``C#N stretch`` -> ``C≡N stretch``, ``CH3`` -> ``CH₃``."""
    return " ".join(w.translate(_SYMBOLS) if any(c.isupper() for c in w) else w for w in text.split(" "))


def fill_by_cam(ax: plt.Axes, axis: np.ndarray, spectrum: np.ndarray, cam: np.ndarray, *, vmax: float = 1.0):
    """The spectrum as a line with the area under it filled by its CAM (an image clipped to that area), a
    faint wash of the same colours over the whole height (legible where absorbance is low) and the map
    once more as a heat strip below the baseline. A map that is zero everywhere is said in the panel."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    base = min(0.0, float(spectrum.min()))
    top = float(spectrum.max()) * 1.3 if spectrum.max() > 0 else 1.0  # headroom for band labels
    shown = dict(cmap=CAM_CMAP, vmin=0.0, vmax=vmax, interpolation="bilinear", origin="lower", aspect="auto")
    ax.imshow(cam[None, :], extent=(axis[0], axis[-1], base, top), alpha=0.3, **shown)
    image = ax.imshow(cam[None, :], extent=(axis[0], axis[-1], base, top), **shown)
    verts = np.concatenate([np.c_[axis, spectrum], [[axis[-1], base], [axis[0], base]]])
    area = PathPatch(MplPath(verts), facecolor="none", edgecolor="none", transform=ax.transData)
    ax.add_patch(area)
    image.set_clip_path(area)
    # the strip sits between the baseline and a thin band at the bottom kept for the true-band marks
    strip = (base - 0.16 * (top - base), base - 0.03 * (top - base))
    ax.imshow(cam[None, :], extent=(axis[0], axis[-1], *strip), **shown)
    ax.plot(axis, spectrum, color="black", lw=0.7)
    ax.set_xlim(axis[0], axis[-1])
    ax.set_ylim(base - 0.2 * (top - base), top)
    if not np.any(cam > 0):
        ax.text(
            0.5,
            0.5,
            "Grad-CAM is zero everywhere here",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=7,
            color="dimgray",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    return image


def mark_bands(
    ax: plt.Axes, bands: Sequence[tuple[float, float, str]] = (), truth: np.ndarray | None = None, axis=None
) -> None:
    """Textbook band ranges as red boxes with their assignments written horizontally above the spectrum,
    in up to three staggered rows so that no two overlap (a label with no room left is dropped; its box
    stays), and, on synthetic data, the true signal windows as a green bar along the bottom."""
    y0, y1 = ax.get_ylim()
    x0, x1 = ax.get_xlim()
    fig = ax.get_figure()
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    per_pt = (x1 - x0) / max(width_pt, 1.0)
    ends: list[float] = []  # per text row: where its last label ends (data units)
    for lo, hi, mode in sorted(bands, key=lambda b: (b[0] + b[1]) / 2):
        ax.add_patch(
            plt.Rectangle(
                (lo, y0), hi - lo, y1 - y0, fill=False, edgecolor="red", lw=0.8, alpha=0.8, zorder=4
            )
        )
        text = bond_text(mode)
        half = 0.5 * len(text) * 5.5 * 0.55 * per_pt  # 5.5 pt font, ~0.55 em per character
        centre = min(max((lo + hi) / 2, x0 + half), x1 - half)
        row = next((r for r, end in enumerate(ends) if centre - half > end), len(ends))
        if row >= 3:
            continue
        if row == len(ends):
            ends.append(-np.inf)
        ends[row] = centre + half + 4 * per_pt
        y = y1 - (0.02 + 0.075 * row) * (y1 - y0)
        ax.text(
            centre,
            y,
            text,
            ha="center",
            va="top",
            fontsize=5.5,
            color="firebrick",
            zorder=6,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.4},
        )
    if truth is not None and axis is not None:
        edges = np.flatnonzero(np.diff(np.r_[0, truth.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(axis[a], axis[b - 1], ymin=0, ymax=0.03, color="forestgreen", lw=0, zorder=5)


def band_legend(fig: plt.Figure, *, bands: bool, truth: bool) -> None:
    """Say what the marks are, below the panels."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=plt.get_cmap(CAM_CMAP)(0.8), label="Grad-CAM: fill, wash and strip")]
    if bands:
        handles.append(Patch(facecolor="none", edgecolor="red", label="textbook band of the group"))
    if truth:
        handles.append(Patch(facecolor="forestgreen", label="true band (synthetic data)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def plot_cam_grid(
    axis: np.ndarray,
    spectra: Mapping[int, np.ndarray] | Sequence[np.ndarray],
    rows: Sequence[tuple[int, int, str]],
    cams: Mapping[tuple[int, int, str], np.ndarray],
    *,
    subsets: Sequence[str] = ("all", "specific", "complement"),
    bands: Mapping[int, Sequence[tuple[float, float, str]]] | None = None,
    truth: Mapping[int, np.ndarray] | None = None,
    title: str = "",
) -> plt.Figure:
    """The paper's Fig. 2 / 3 layout: one row per (spectrum, class), one column per channel subset, the
    area under each spectrum filled by its Grad-CAM for that class, one colour map and one colour bar, a
    legend of the marks.

    `rows` are (spectrum index into `spectra`, class index, row label); `cams[(i, k, subset)]` the maps;
    `bands[k]` textbook ranges to box, `truth[k]` a true-band mask (synthetic data) to mark.
    """
    fig, axes = plt.subplots(
        len(rows),
        len(subsets),
        figsize=(4.2 * len(subsets) + 1.6, 1.7 * len(rows) + 1.3),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    image = None
    for r, (i, k, label) in enumerate(rows):
        for c, subset in enumerate(subsets):
            ax = axes[r, c]
            image = fill_by_cam(ax, axis, spectra[i], cams[(i, k, subset)])
            mark_bands(ax, (bands or {}).get(k, ()), (truth or {}).get(k), axis)
            ax.set_yticks([])
            if r == 0:
                ax.set_title(SUBSET_TITLES[subset], fontweight="bold", fontsize=10)
            if c == 0:
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    for ax in axes[-1]:
        ax.set_xlabel("wavenumber (cm$^{-1}$)")
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="Grad-CAM (normalised)")
    used = {k for _, k, _ in rows}
    band_legend(
        fig,
        bands=any((bands or {}).get(k) for k in used),
        truth=truth is not None and any(k in truth for k in used),
    )
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


def plot_mean_cams(
    axis: np.ndarray,
    mean_spectra: Mapping[int, np.ndarray],
    mean_cams: Mapping[int, np.ndarray],
    names: Sequence[str],
    *,
    truth: Mapping[int, np.ndarray] | None = None,
    bands: Mapping[int, Sequence[tuple[float, float, str]]] | None = None,
    title: str = "",
    channels: str = "class-specific",
) -> plt.Figure:
    """Per class, the mean Grad-CAM (through `channels`) over the test spectra of that class, filled under
    the class's mean spectrum, with its textbook and true bands: which regions each class relies on."""
    classes = list(mean_cams)
    ncols = min(len(classes), 4 if len(classes) <= 20 else 5) or 1
    nrows = math.ceil(len(classes) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.4 * ncols + 1.2, 1.8 * nrows + 1.3),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    image = None
    for ax, k in zip(axes.flat, classes, strict=False):
        cam = mean_cams[k]
        image = fill_by_cam(ax, axis, mean_spectra[k], cam / max(float(cam.max()), 1e-12))
        mark_bands(ax, (bands or {}).get(k, ()), (truth or {}).get(k), axis)
        ax.set_title(names[k], fontsize=8)
        ax.set_yticks([])
    for ax in axes.flat[len(classes) :]:
        ax.set_axis_off()
    for col in range(ncols):  # the lowest panel of each column carries the axis label
        last = max(r for r in range(nrows) if r * ncols + col < len(classes))
        axes[last, col].set_xlabel("wavenumber (cm$^{-1}$)", fontsize=8)
        axes[last, col].xaxis.set_tick_params(labelbottom=True)
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label=f"mean {channels} Grad-CAM (normalised)")
    band_legend(
        fig,
        bands=any((bands or {}).get(k) for k in classes),
        truth=truth is not None and any(k in truth for k in classes),
    )
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


METRIC_LABELS = {
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "samples_f1": "samples-F1",
    "hamming_accuracy": "Hamming acc.",
    "emr": "EMR",
    "accuracy": "Accuracy",
}


def plot_sim2real(result: Any) -> plt.Figure:
    """Per real set: its richest-labelled spectrum beside the nearest synthetic spectrum of the same label set
    (one per generator version), and the per-label recall on the real set (mean over seeds) per version.
    `result` is a `sim2real.Sim2RealResult`."""
    versions = sorted(result.synthetic)
    colours = dict(zip(versions, plt.get_cmap("tab10").colors[1:], strict=False))
    fig, axes = plt.subplots(
        len(result.real), 2, figsize=(15, 3.8 * len(result.real)), squeeze=False, width_ratios=[1.3, 1]
    )
    for (name, ds), (ax_s, ax_r) in zip(result.real.items(), axes, strict=True):
        y = np.asarray(ds.y)
        i = int(np.argmax(y.sum(1)))
        labels = [ds.label_names[k] for k in np.flatnonzero(y[i])]
        ax_s.plot(ds.axis, ds.X[i], color="black", lw=1.2, label=f"real: {ds.ids[i]}")
        for offset, v in enumerate(versions, start=1):
            syn = result.synthetic[v].onto(ds.axis)
            j, same = nearest_spectrum(ds.X[i], y[i], syn)
            tag = "same label set" if same else "no synthetic spectrum has this label set"
            ax_s.plot(
                syn.axis, syn.X[j] + 1.1 * offset, color=colours[v], lw=1, label=f"synth-ir17 v{v} ({tag})"
            )
        ax_s.set_xlim(ds.axis.max(), ds.axis.min())
        ax_s.set_yticks([])
        ax_s.set_xlabel("wavenumber (cm$^{-1}$)")
        ax_s.set_title(f"{name}: {', '.join(labels) or 'no group'}", fontsize=9)
        ax_s.legend(fontsize=7, loc="upper left")
        style_axes(ax_s)
        part = result.labels[(result.labels["real_set"] == name) & (result.labels["scorer"] == "model")]
        part = part[part["support"] > 0]
        recall = part.groupby(["label", "version"], sort=False)["recall"].mean().unstack("version")
        support = part.groupby("label", sort=False)["support"].first()
        order = support.sort_values(ascending=False).index
        x = np.arange(len(order))
        bar = 0.8 / max(len(versions), 1)
        for n, v in enumerate(versions):
            if v in recall:
                ax_r.bar(x + (n - (len(versions) - 1) / 2) * bar, recall.loc[order, v], bar, color=colours[v],
                         label=f"trained on synth-ir17 v{v}")  # fmt: skip
        ax_r.set_xticks(x, [f"{lab} ({support[lab]})" for lab in order], rotation=60, ha="right", fontsize=7)
        ax_r.set_ylim(0, 1.05)
        ax_r.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax_r.set_ylabel("recall on real spectra")
        ax_r.set_title(f"{name}: per-label recall (positives in brackets)", fontsize=9)
        ax_r.legend(fontsize=7)
        style_axes(ax_r)
    fig.suptitle("Trained on synthetic spectra only, scored on real ones", fontsize=11)
    fig.tight_layout()
    return fig
