"""What a preprocessing pipeline does to one spectrum: the raw spectrum with the spikes it found, the
spectrum entering the baseline step with the fitted baseline over it, and the result (`data preprocess
--plot`, and `01_data` on a synthetic example given a background, noise and a spike)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from peakmixer.data.dataset import SpectraDataset
from peakmixer.data.preprocess import Pipeline, load_pipeline
from peakmixer.train.augment import augment_batch, step_generator
from peakmixer.train.config import AugmentConfig


def plot_preprocessing(pipeline: Pipeline, x: np.ndarray, y: np.ndarray, title: str = "") -> plt.Figure:
    """Raw (spikes marked) | before the baseline step, with the baseline | processed. (L,) -> a figure."""
    stages = pipeline.trace(x, y)
    spikes = next((s.details["spikes"] for s in stages if "spikes" in s.details), None)
    base_at = next((k for k, s in enumerate(stages) if "baseline" in s.details), None)
    panels = 3 if base_at is not None else 2
    fig, axes = plt.subplots(panels, 1, figsize=(9, 2.4 * panels), constrained_layout=True)
    raw, done = stages[0], stages[-1]
    axes[0].plot(raw.x, raw.y, lw=0.8, color="0.2", label="raw")
    if spikes is not None and spikes.any():
        axes[0].plot(
            raw.x[spikes], raw.y[spikes], "x", color="crimson", ms=6, label=f"spikes ({spikes.sum()})"
        )
    axes[0].set_title(f"raw — {title}" if title else "raw", fontsize=9)
    if base_at is not None:
        before, fitted = stages[base_at - 1], stages[base_at]
        axes[1].plot(before.x, before.y, lw=0.8, color="0.2", label=f"after {before.step}")
        axes[1].plot(fitted.x, fitted.details["baseline"], "--", color="tab:orange", label="fitted baseline")
        step = pipeline.steps[base_at - 1]
        axes[1].set_title(f"baseline: {step.method} {step.params or ''}", fontsize=9)
    axes[-1].plot(done.x, done.y, lw=0.8, color="tab:blue", label="processed")
    axes[-1].set_title(pipeline.describe(), fontsize=7, wrap=True)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper right")
        ax.set_ylabel("intensity", fontsize=8)
    axes[-1].set_xlabel("wavenumber (cm$^{-1}$)")
    return fig


def plot_raw_style_example(
    ds: SpectraDataset, preset: str = "raman-cells", *, index: int = 0, seed: int = 0
) -> plt.Figure:
    """`plot_preprocessing` of spectrum `index` of a synthetic Raman set, first given what a measurement
    adds (`train.augment`: a smooth fluorescence-like background, noise and one cosmic-ray spike), so that
    the preset has something to remove. Titled as synthetic."""
    cfg = AugmentConfig(baseline=3.0, noise=0.01, spikes=1.0)
    x = torch.from_numpy(ds.X[index : index + 1, None].astype(np.float32))
    raw = augment_batch(x, cfg, step_generator(seed, 0, torch.device("cpu")))[0, 0].numpy()
    title = f"{ds.ids[index]} (synthetic, with a simulated background, noise and one spike)"
    return plot_preprocessing(load_pipeline(preset), ds.axis, raw.astype(np.float64), title=title)
