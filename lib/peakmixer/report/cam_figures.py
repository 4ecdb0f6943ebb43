"""Grad-CAM figures (the paper's Fig. 2 and 3): spectra filled by their map, true bands marked, per class
and averaged over a class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from peakmixer.report.ip_figures import SUBSET_TITLES

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
