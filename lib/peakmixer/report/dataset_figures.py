"""The datasets figure (the paper's datasets panel): label shares, counts, example spectra with their true
bands, class means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from peakmixer.data.dataset import SpectraDataset, label_summary
from peakmixer.report.figures import style_axes

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
