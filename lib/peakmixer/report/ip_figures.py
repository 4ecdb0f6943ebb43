"""Table 1 as a figure (infidelity and sensitivity per correlation matrix) and the Grad-CAM ground-truth
scores per channel subset.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from peakmixer.report.figures import style_axes

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
MODE_COLORS = {"trainable": "lightcoral", "frozen": "slategray", "off": "steelblue", "redrawn": "darkkhaki"}


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
        groups = [(m, c) for m in MODE_COLORS for c in ("specific", "complement", "all")]
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


def plot_channel_ownership(
    channels: pd.DataFrame,
    rows: pd.DataFrame,
    *,
    synthetic: Mapping[str, bool],
    labels: Mapping[str, list[str]],
) -> plt.Figure:
    """Channels each class owns under the paper's argmax rule, per dataset (rows) and IP mode (columns):
    one dot per seed, the bar their mean; a class with no channel in some seed is marked in red (its pairs
    are left out of the argmax scores). The dashed line is the top-k rule's share for every class."""
    info = rows.drop_duplicates("run_id").set_index("run_id")
    at = channels.join(info[["dataset", "ip_mode", "seed"]], on="run_id")
    datasets = list(dict.fromkeys(at["dataset"]))
    modes = [m for m in MODE_COLORS if m in set(at["ip_mode"])]
    fig, axes = plt.subplots(
        len(datasets),
        len(modes),
        figsize=(4.2 * len(modes), 2.8 * len(datasets)),
        squeeze=False,
        sharey="row",
    )
    for i, dataset in enumerate(datasets):
        for j, mode in enumerate(modes):
            ax = axes[i, j]
            part = at[(at["dataset"] == dataset) & (at["ip_mode"] == mode)]
            mean = part.groupby("class")["channels_argmax"].mean()
            ax.bar(mean.index, mean.to_numpy(), color=MODE_COLORS[mode], width=0.8)
            ax.scatter(part["class"], part["channels_argmax"], s=6, color="black", zorder=3)
            empty = sorted(set(part.loc[part["channels_argmax"] == 0, "class"]))
            ax.scatter(
                empty, [0] * len(empty), marker="x", color="red", zorder=4, label="no channel (a seed)"
            )
            if len(part):
                ax.axhline(
                    part["channels_topk"].iloc[0], ls="--", lw=0.8, color="0.3", label="top-k per class"
                )
            names = labels.get(dataset, [])
            if names and len(names) <= 20:
                ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
            ax.set_title(f"{dataset}{' (synthetic)' if synthetic.get(dataset) else ''}: {mode}", fontsize=9)
            ax.set_ylabel("channels (argmax)" if j == 0 else "")
            style_axes(ax)
    axes[0, -1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
