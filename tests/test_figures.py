import json

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from peakmixer.data.dataset import toy_dataset
from peakmixer.report.dataset_figures import label_table, plot_dataset_overview, plot_examples
from peakmixer.report.fig1 import plot_fig1
from peakmixer.report.figures import save_figure, save_table


def figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_figure_files_and_sidecar(tmp_path):
    paths = save_figure(figure(), tmp_path, "fig", params={"seed": 3}, data={"d": "a" * 64}, synthetic=True)
    assert [p.name for p in paths] == ["fig.png", "fig.svg", "fig.json"]
    side = json.loads((tmp_path / "fig.json").read_text())
    assert side["parameters"] == {"seed": 3} and side["data_sha256"] == {"d": "a" * 64}
    assert side["synthetic_data"] is True and side["formats"] == ["png", "svg"]
    assert side["git_sha"] and side["packages"]["numpy"] == np.__version__
    assert "SYNTHETIC DATA" in (tmp_path / "fig.svg").read_text()


def test_real_data_figure_is_not_stamped_and_bytes_are_stable(tmp_path):
    save_figure(figure(), tmp_path / "a", "fig", synthetic=False)
    save_figure(figure(), tmp_path / "b", "fig", synthetic=False)
    assert "SYNTHETIC" not in (tmp_path / "a" / "fig.svg").read_text()
    for ext in ("png", "svg"):
        assert (tmp_path / "a" / f"fig.{ext}").read_bytes() == (tmp_path / "b" / f"fig.{ext}").read_bytes()


def test_table_sidecar_marks_synthetic_and_refuses_a_shared_name(tmp_path):
    save_table(pd.DataFrame({"x": [1, 2]}), tmp_path, "t", synthetic=True)
    assert pd.read_csv(tmp_path / "t.csv")["synthetic"].all()
    assert json.loads((tmp_path / "t.json").read_text())["rows"] == 2
    with pytest.raises(FileExistsError, match="t.json already describes another file"):
        save_figure(figure(), tmp_path, "t", synthetic=True)


def test_dataset_figure_helpers():
    ds = toy_dataset(n=30, length=64, n_classes=4)
    table = label_table({"toy": ds})
    assert len(table) == 4 and table["share"].sum() == pytest.approx(1.0)
    assert table["spectra"].tolist() == ds.y.sum(0).tolist()
    assert len(plot_dataset_overview({"toy": ds}).axes) == 2
    assert len(plot_examples(ds, "toy", n_examples=2).axes) == 2
    ds.masks = None
    with pytest.raises(ValueError, match="no ground-truth masks"):
        plot_examples(ds, "toy")
    plt.close("all")


def test_fig1_puts_multilabel_panels_first_aligns_letters_and_marks_single_seeds():
    rows = []
    for dataset, task, metrics in (("bac", "multiclass", ["accuracy"]), ("ir", "multilabel", ["micro_f1",
                                   "hamming_accuracy", "emr"])):  # fmt: skip
        for width, seeds in ((32, 3), (128, 1)):
            for mixer in ("none", "mlp", "mlpmixer"):
                row = {"dataset": dataset, "task": task, "width": width, "mixer": mixer, "n_seeds": seeds,
                       "mixer_layers": 4 if mixer == "mlpmixer" else 0, "gmacs": width / 1000,
                       "params": width * 1e4}  # fmt: skip
                row |= {f"{m}_mean": 0.8 for m in metrics} | {
                    f"{m}_sd": 0.01 if seeds > 1 else np.nan for m in metrics
                }
                rows.append(row)
    summary = pd.DataFrame(rows)  # the store lists the multiclass set first
    grid = summary[(summary["dataset"] == "ir") & (summary["mixer"] == "mlpmixer")]
    fig = plot_fig1(summary, grid, synthetic={"ir": True, "bac": True}, grid_dataset="ir")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["ir (synthetic)", "bac (synthetic)"]  # a: substructures, as in the paper
    letters = {t.get_text(): t.get_position() for t in fig.texts if t.get_text() in {"a", "b", "c", "d"}}
    assert set(letters) == {"a", "b", "d"} and letters["a"][1] == pytest.approx(letters["b"][1])
    # A width with one seed has no sd: its markers are hollow, and the legend says what that means.
    faces = [c.get_facecolors() for ax in fig.axes for c in ax.collections if len(c.get_offsets())]
    assert any(np.allclose(f[:, :3], 1.0) for f in faces if len(f))
    legends = [leg for ax in fig.axes for leg in ax.findobj(mpl.legend.Legend)]
    assert "one seed (no sd)" in [t.get_text() for leg in legends for t in leg.get_texts()]
    plt.close(fig)
