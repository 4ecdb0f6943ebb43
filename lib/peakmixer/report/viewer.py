"""`GradCamViewer`: Grad-CAM spectrum by spectrum, with ipywidgets controls and a plotly figure.

    viewer = GradCamViewer.from_checkpoint("models/synth-ir17_ip.pt", "data/synth-ir17_v2_n4000_s0.npz")
    viewer.widget()            # in JupyterLab: slider, class, channel subset, layer, normalisation
    viewer.static_figure()     # the same content as a matplotlib figure (papermill, reports)

All state lives in the object (the widgets and the figure are its attributes), so a notebook global can never
go stale. CAMs are computed on demand and cached per (spectrum, class, subset, layer), so moving back and
forth stays fast on a CPU; normalisation is applied on the cached map.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from peakmixer.attribution.gradcam import CamSettings, grad_cam, subsets_of
from peakmixer.data.dataset import DatasetError, SpectraDataset, load
from peakmixer.report.cam_figures import CAM_CMAP, band_legend, fill_by_cam, mark_bands
from peakmixer.report.ip_figures import SUBSET_TITLES
from peakmixer.train.evaluate import class_probabilities
from peakmixer.train.prepare import normalize

LAYERS = ("stem", "extractor", "features")


class GradCamViewer:
    """Explore the Grad-CAM of `model` on the spectra of `dataset` (already on the model's input axis).

    Args:
        model: a trained model (with an interpretable path for class-specific / complementary channels).
        dataset: spectra on the model's input axis (see `from_checkpoint`, which resamples).
        task: ``multilabel`` (sigmoid probabilities) or ``multiclass`` (softmax).
        bands: textbook band ranges per class index, boxed on the plot.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: SpectraDataset,
        *,
        task: str,
        label_names: list[str],
        bands: dict[int, list[tuple[float, float, str]]] | None = None,
    ) -> None:
        import ipywidgets as w

        self.model = model.eval()
        self.dataset = dataset
        self.task = task
        self.names = list(label_names)
        self.bands = bands or {}
        self.axis = np.asarray(dataset.axis, dtype=float)
        self.X = torch.from_numpy(np.asarray(dataset.X, dtype=np.float32)).unsqueeze(1)
        self.truth = (
            dataset.masks if dataset.masks is not None and len(dataset.masks) == len(self.names) else None
        )
        self._cams: dict[tuple[int, int, str, str], np.ndarray] = {}
        self._probs: dict[int, np.ndarray] = {}

        first = int(self.probabilities(0).argmax())
        self.slider = w.IntSlider(value=0, min=0, max=len(dataset) - 1, description="spectrum")
        self.klass = w.Dropdown(
            options=[(n, k) for k, n in enumerate(self.names)], value=first, description="class"
        )
        self.channels = w.ToggleButtons(options=list(subsets_of(model)), value="all", description="channels")
        self.layer = w.Dropdown(options=list(LAYERS), value="stem", description="layer")
        self.normalize = w.ToggleButtons(options=["max", "none"], value="max", description="normalise")
        self.fig = self._figure()
        for control in (self.slider, self.klass, self.channels, self.layer, self.normalize):
            control.observe(lambda _change: self.update(), names="value")
        self.update()

    # --- construction ------------------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, data: SpectraDataset | str | Path, *, split: str | None = None
    ) -> GradCamViewer:
        """A viewer of a saved model on a dataset (or dataset file), resampled onto the model's input axis
        and normalised as in training; `split` restricts it to one split."""
        from peakmixer.report.explain import Explainer

        ex = Explainer.load(checkpoint)
        ds = load(data) if not isinstance(data, SpectraDataset) else data
        if split:
            ds = ds.split(split)
        ds, X = ex.inputs(ds, name=str(data))
        ds = replace(ds, X=X[:, 0].numpy())
        return cls(ex.model, ds, task=ex.task, label_names=ex.names, bands=ex.bands())

    @classmethod
    def from_files(cls, checkpoint: str | Path, files: list[str | Path]) -> GradCamViewer:
        """A viewer of a saved model on a user's spectrum files (any format the importers read); files that
        cannot be read or cover too little of the model's axis are left out, as `explain` does."""
        from peakmixer.data.io.batch import expand_sources, read_spectra
        from peakmixer.data.preprocess import read_options
        from peakmixer.report.explain import Explainer

        ex = Explainer.load(checkpoint)
        found = expand_sources(files)
        read = read_spectra(
            found.files, ex.axis, listed=found.listed, **read_options(ex.preprocess, ex.import_scaling)
        )
        if not read.rows:
            reasons = "; ".join(f"{r.source}: {r.reason}" for r in read.rejected)
            raise DatasetError(f"no spectrum could be read onto the model's axis ({reasons})")
        X = normalize(np.stack(read.rows), ex.normalize).astype(np.float32)
        ds = SpectraDataset(
            X=X,
            axis=ex.axis,
            y=np.zeros((len(X), len(ex.names)), dtype=np.uint8),  # unknown: only the model's view is shown
            task="multilabel",
            label_names=ex.names,
            ids=read.ids,
            provenance={"synthetic": False, "source": "GradCamViewer.from_files"},
        )
        return cls(ex.model, ds, task=ex.task, label_names=ex.names, bands=ex.bands())

    # --- what is shown --------------------------------------------------------------------------------

    def probabilities(self, i: int) -> np.ndarray:
        """The model's class probabilities (K,) for spectrum i (sigmoid per label, or softmax)."""
        if i not in self._probs:
            with torch.no_grad():
                logits = self.model(self.X[i : i + 1]).float()[0]
            self._probs[i] = class_probabilities(self.task, logits)
        return self._probs[i]

    def cam(self, i: int, k: int, channels: str, layer: str) -> np.ndarray:
        """The raw (unnormalised, ReLU'd) Grad-CAM (L,) of spectrum i for class k; cached."""
        key = (i, k, channels, layer)
        if key not in self._cams:
            settings = CamSettings(channels=channels, layer=layer, normalize="none")
            self._cams[key] = grad_cam(self.model, self.X[i : i + 1], k, settings)[0, 0].numpy()
        return self._cams[key]

    def current(self) -> dict:
        """The state on display: spectrum, class, subset, layer, the CAM as shown, and the probabilities."""
        i, k = int(self.slider.value), int(self.klass.value)
        cam = self.cam(i, k, self.channels.value, self.layer.value)
        if self.normalize.value == "max":
            cam = cam / max(float(np.abs(cam).max()), 1e-12)
        return {
            "index": i,
            "id": self.dataset.ids[i],
            "class": k,
            "channels": self.channels.value,
            "layer": self.layer.value,
            "spectrum": self.X[i, 0].numpy(),
            "cam": cam,
            "probabilities": self.probabilities(i),
            "truth": None if self.truth is None else self.truth[k],
        }

    # --- the interactive figure -----------------------------------------------------------------------

    def _figure(self):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        base = make_subplots(rows=1, cols=2, column_widths=[0.78, 0.22], horizontal_spacing=0.08)
        step = float(np.median(np.diff(self.axis)))
        base.add_trace(
            go.Bar(
                x=self.axis,
                y=np.zeros_like(self.axis),
                width=step,
                marker={
                    "color": np.zeros_like(self.axis),
                    "colorscale": CAM_CMAP,
                    "cmin": 0,
                    "cmax": 1,
                    "line": {"width": 0},
                    "colorbar": {
                        "title": "Grad-CAM",
                        "orientation": "h",
                        "x": 0.36,
                        "y": -0.28,
                        "len": 0.6,
                        "thickness": 10,
                    },
                },
                name="Grad-CAM",
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
        base.add_trace(
            go.Scatter(
                x=self.axis,
                y=np.zeros_like(self.axis),
                mode="lines",
                name="spectrum",
                line={"color": "black", "width": 1},
            ),
            row=1,
            col=1,
        )
        base.add_trace(
            go.Scatter(
                x=[],
                y=[],
                mode="markers",
                name="true bands",
                marker={"color": "forestgreen", "size": 3, "symbol": "line-ns-open"},
            ),
            row=1,
            col=1,
        )
        base.add_trace(
            go.Bar(
                x=np.zeros(len(self.names)),
                y=self.names,
                orientation="h",
                name="probability",
                marker={"color": "slategray"},
            ),
            row=1,
            col=2,
        )
        base.update_layout(
            height=460, bargap=0, showlegend=False, margin={"l": 40, "r": 10, "t": 40, "b": 90}
        )
        base.update_xaxes(title_text="wavenumber (cm⁻¹)", row=1, col=1)
        base.update_xaxes(title_text="probability", range=[0, 1], row=1, col=2)
        return go.FigureWidget(base)

    def update(self) -> None:
        """Redraw the figure for the controls' current values (the widgets' callback)."""
        s = self.current()
        truth_x = [] if s["truth"] is None else self.axis[np.asarray(s["truth"], bool)]
        with self.fig.batch_update():
            self.fig.data[0].y = s["spectrum"]
            self.fig.data[0].marker.color = s["cam"]
            self.fig.data[0].marker.cmax = (
                1.0 if self.normalize.value == "max" else float(s["cam"].max() or 1.0)
            )
            self.fig.data[1].y = s["spectrum"]
            self.fig.data[2].x = truth_x
            self.fig.data[2].y = np.zeros(len(truth_x))
            self.fig.data[3].x = s["probabilities"]
            self.fig.data[3].marker.color = [
                "lightcoral" if k == s["class"] else "slategray" for k in range(len(self.names))
            ]
            self.fig.layout.title = (
                f"{s['id']} — {self.names[s['class']]} (p = {s['probabilities'][s['class']]:.2f}), "
                f"{SUBSET_TITLES[s['channels']]}, layer {s['layer']}"
            )

    def widget(self):
        """The controls above the figure, for display in JupyterLab."""
        import ipywidgets as w

        return w.VBox(
            [w.HBox([self.slider, self.klass]), w.HBox([self.channels, self.layer, self.normalize]), self.fig]
        )

    # --- the same content, static -----------------------------------------------------------------------

    def static_figure(self):
        """The current state as a matplotlib figure: the CAM-filled spectrum beside the probabilities."""
        import matplotlib.pyplot as plt

        s = self.current()
        fig, (ax, bars) = plt.subplots(
            1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [4, 1]}, layout="constrained"
        )
        image = fill_by_cam(
            ax,
            self.axis,
            s["spectrum"],
            np.clip(s["cam"], 0, None),
            vmax=1.0 if self.normalize.value == "max" else max(float(s["cam"].max()), 1e-12),
        )
        mark_bands(ax, self.bands.get(s["class"], ()), s["truth"], self.axis)
        ax.set_xlabel("wavenumber (cm$^{-1}$)")
        ax.set_yticks([])
        ax.set_title(f"{s['id']}: {self.names[s['class']]}, {SUBSET_TITLES[s['channels']]}", fontsize=10)
        colors = ["lightcoral" if k == s["class"] else "slategray" for k in range(len(self.names))]
        bars.barh(range(len(self.names)), s["probabilities"], color=colors)
        bars.set_yticks(range(len(self.names)), self.names, fontsize=6)
        bars.set_xlim(0, 1)
        bars.invert_yaxis()
        bars.set_xlabel("probability")
        scale = "normalised" if self.normalize.value == "max" else "raw"
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label=f"Grad-CAM ({scale})")
        band_legend(fig, bands=bool(self.bands.get(s["class"])), truth=s["truth"] is not None)
        return fig


__all__ = ["LAYERS", "GradCamViewer"]
