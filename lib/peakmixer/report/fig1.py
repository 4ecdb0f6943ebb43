"""Fig. 1: the main metric against cost (MACs, marker area = parameters) per mixer, and the width x mixer
layers grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from peakmixer.metrics import main_metric
from peakmixer.report.figures import METRIC_LABELS, style_axes

# The paper's palette (UPSTREAM_SPEC §6) extended to the Transformer mixer.
MIXER_STYLE = {
    "none": {"color": "steelblue", "label": "no mixer"},
    "mlp": {"color": "chocolate", "label": "MLP"},
    "mlpmixer": {"color": "lightcoral", "label": "MLPMixer"},
    "transformer": {"color": "seagreen", "label": "Transformer"},
}
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
