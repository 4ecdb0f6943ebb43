"""The sim-to-real figure: scores on real spectra per synthetic generator version."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from peakmixer.data.dataset import nearest_spectrum
from peakmixer.report.figures import style_axes


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
