"""The Grad-CAM viewer's callbacks, headless (ipywidgets falls back to a dummy comm without a kernel)."""

import numpy as np
import pytest
import torch

from peakmixer.attribution.gradcam import CamSettings, grad_cam
from peakmixer.data.dataset import toy_dataset
from peakmixer.ip import attach_ip
from peakmixer.models import build_model

pytest.importorskip("anywidget")  # plotly's FigureWidget needs it
from peakmixer.report.viewer import GradCamViewer  # noqa: E402


@pytest.fixture
def viewer():
    torch.manual_seed(0)
    kw = {"width": 6, "blocks": 2, "input_length": 64, "hidden": 16, "mixer_layers": 1}
    model = attach_ip(
        build_model("respeak", "mlpmixer", n_classes=4, **kw), mode="trainable", task="multilabel"
    )
    ds = toy_dataset(n=6, length=64, n_classes=4, seed=0)
    return GradCamViewer(model, ds, task="multilabel", label_names=ds.label_names)


def expected(viewer, i, k, channels="all", layer="stem"):
    cam = grad_cam(viewer.model, viewer.X[i : i + 1], k, CamSettings(channels=channels, layer=layer))
    return cam[0, 0].numpy()


def test_moving_the_slider_shows_that_spectrum_and_its_cam(viewer):
    k = viewer.klass.value
    viewer.slider.value = 3
    np.testing.assert_allclose(viewer.fig.data[1].y, viewer.X[3, 0].numpy())
    np.testing.assert_allclose(viewer.fig.data[0].marker.color, expected(viewer, 3, k), atol=1e-6)
    assert viewer.dataset.ids[3] in viewer.fig.layout.title.text


def test_changing_the_class_or_the_channels_shows_that_cam(viewer):
    viewer.slider.value = 2
    viewer.klass.value = 1
    np.testing.assert_allclose(viewer.fig.data[0].marker.color, expected(viewer, 2, 1), atol=1e-6)
    viewer.channels.value = "specific"
    np.testing.assert_allclose(viewer.fig.data[0].marker.color, expected(viewer, 2, 1, "specific"), atol=1e-6)
    viewer.layer.value = "extractor"
    np.testing.assert_allclose(
        viewer.fig.data[0].marker.color, expected(viewer, 2, 1, "specific", "extractor"), atol=1e-6
    )
    probs = torch.sigmoid(viewer.model(viewer.X[2:3]))[0].detach().numpy()
    np.testing.assert_allclose(viewer.fig.data[3].x, probs, atol=1e-6)
    assert "class1" in viewer.fig.layout.title.text


def test_cams_are_cached_and_the_static_figure_shows_the_same_state(viewer):
    viewer.slider.value = 1
    cached = len(viewer._cams)
    viewer.slider.value = 0
    viewer.slider.value = 1  # back: nothing new computed
    assert len(viewer._cams) == cached
    fig = viewer.static_figure()
    assert viewer.dataset.ids[1] in fig.axes[0].get_title()


def test_the_viewer_opens_a_users_files_on_the_models_axis(tmp_path, shared_data):
    from peakmixer.config import from_dict
    from peakmixer.synth.benchmarks import make_synth
    from peakmixer.train.config import TrainConfig
    from peakmixer.train.loop import train

    data = make_synth("synth-ir17", 200, 0).save(tmp_path / "ir.npz")
    model = {"width": 8, "mixer_layers": 1, "hidden": 16, "ip": {"mode": "trainable"}}
    cfg = {"data": {"path": str(data)}, "model": model, "optim": {"epochs": 1, "batch_size": 32}}
    train(
        from_dict(TrainConfig, cfg | {"progress": False, "precision": "fp32", "out_dir": str(tmp_path / "r")})
    )
    files = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:2] + [
        shared_data / "jcamp_edge_cases" / "1HQuinine.jdx"
    ]
    viewer = GradCamViewer.from_files(tmp_path / "r" / "best.pt", files)
    assert viewer.dataset.ids == [f.name for f in files[:2]]  # the NMR file is left out
    assert viewer.axis[0] == 400 and viewer.axis[-1] == 4000 and len(viewer.fig.data[0].y) == 1024
    viewer.slider.value = 1
    assert files[1].name in viewer.fig.layout.title.text
