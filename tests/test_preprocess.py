"""Preprocessing: each step against its reference, pipelines as files, the `data preprocess` command, and a
pipeline that travels with the model from import to `explain`."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pybaselines import Baseline
from scipy.signal import savgol_filter

from peakmixer.cli import main
from peakmixer.config import ConfigError, from_dict
from peakmixer.data.dataset import file_sha256, load
from peakmixer.data.preprocess import Pipeline, load_pipeline, save_pipeline
from peakmixer.data.preprocess.steps import (
    BaselineStep,
    Crop,
    Despike,
    Normalize,
    Resample,
    Smooth,
    normalise,
)
from peakmixer.synth.benchmarks import make_synth
from peakmixer.train.config import TrainConfig
from peakmixer.train.loop import train


@pytest.fixture(scope="module")
def raman():
    """Synthetic Raman spectra of cells (synth-bac30): bands on a sloping background, with noise."""
    return make_synth("synth-bac30", 360, 0)


def _real_raman(shared_data) -> tuple[np.ndarray, np.ndarray]:
    """One measured Raman spectrum of a biomolecule (RamanBioLib)."""
    row = pd.read_csv(shared_data / "ramanbiolib" / "raman_spectra_db.csv", nrows=1).iloc[0]
    return np.asarray(json.loads(row["wavenumbers"]), float), np.asarray(json.loads(row["intensity"]), float)


@pytest.mark.parametrize(
    ("method", "params"), [("asls", {"lam": 1e5, "p": 0.01}), ("imodpoly", {"poly_order": 4})]
)
def test_the_baseline_step_is_pybaselines_exactly(raman, method, params):
    x, Y = raman.axis, raman.X[:3].astype(np.float64)
    _, out, details = BaselineStep(method, params).apply_with_details(x, Y)
    for row, got, base in zip(Y, out, details["baseline"], strict=True):
        expected = getattr(Baseline(x_data=x), method)(row, **params)[0]
        assert np.array_equal(base, expected) and np.array_equal(got, row - expected)


def test_despike_finds_planted_spikes_and_leaves_real_bands(raman, shared_data):
    x, clean = _real_raman(shared_data)
    rng = np.random.default_rng(0)
    spiky = np.stack([clean, clean, clean])
    planted = {0: [120, 600], 1: [301, 302], 2: []}  # one-point spikes, a two-point one, none
    for i, where in planted.items():
        for j in where:
            spiky[i, j] += 5 * clean.max() * (0.5 + rng.random())
    _, out, details = Despike().apply_with_details(x, spiky)
    for i, where in planted.items():
        assert sorted(np.flatnonzero(details["spikes"][i])) == where
        keep = np.ones(len(x), bool)
        keep[where] = False
        assert np.array_equal(out[i, keep], clean[keep])  # every other point, bands included, untouched
        assert np.all(np.abs(out[i, where] - clean[where]) < 0.2 * clean.max())
    # band-rich spectra with noise (synth-bac30): no spike found where none is
    assert not Despike().apply_with_details(raman.axis, raman.X.astype(np.float64))[2]["spikes"].any()


def test_despike_guards_against_zero_spread():
    x = np.arange(200.0)
    flat = np.zeros((2, 200))
    flat[0, 50] = 1.0  # a spike on a constant spectrum: MAD of the differences is 0
    _, out, details = Despike().apply_with_details(x, flat)
    assert np.flatnonzero(details["spikes"][0]).tolist() == [50] and not details["spikes"][1].any()
    assert np.isfinite(out).all() and out[0, 50] == 0


def test_savitzky_golay_crop_resample_and_normalisations_by_hand(raman):
    x, Y = raman.axis, raman.X[:4].astype(np.float64)
    assert np.array_equal(Smooth(11, 3).apply(x, Y)[1], savgol_filter(Y, 11, 3, axis=-1))
    cx, cY = Crop(600, 1200).apply(x, Y)
    assert cx.min() >= 600 and cx.max() <= 1200 and np.array_equal(cY, Y[:, (x >= 600) & (x <= 1200)])
    rx, rY = Resample(400, 1700, 131).apply(x, Y)
    assert np.array_equal(rx, np.linspace(400, 1700, 131)) and rY.shape == (4, 131)
    y = np.array([[1.0, 3.0, 2.0, 5.0]])
    xs = np.array([0.0, 1.0, 2.0, 4.0])
    assert np.allclose(normalise(xs, y, "minmax"), [[0, 0.5, 0.25, 1]])
    area = 0.5 * (1 + 3) * 1 + 0.5 * (3 + 2) * 1 + 0.5 * (2 + 5) * 2  # trapezoids over the uneven axis
    assert np.allclose(normalise(xs, y, "area"), y / area)
    assert np.allclose(normalise(xs, y, "vector"), y / np.sqrt(1 + 9 + 4 + 25))
    assert np.allclose(normalise(xs, y, "snv"), (y - 2.75) / np.std([1, 3, 2, 5]))
    assert np.isnan(Normalize("snv").apply(xs, np.ones((1, 4)))[1]).all()  # no spread: refused downstream


def test_a_pipeline_round_trips_through_yaml_and_json(tmp_path):
    pipeline = load_pipeline("raman-cells")
    path = save_pipeline(pipeline, tmp_path / "mine.yaml")
    again = load_pipeline(path)
    assert again.to_spec() == pipeline.to_spec() and again.digest == pipeline.digest
    (tmp_path / "mine.json").write_text(json.dumps(pipeline.to_spec()))
    assert load_pipeline(tmp_path / "mine.json").digest == pipeline.digest


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ([{"step": "smoth"}], "unknown step 'smoth'; the steps are crop, despike, smooth"),
        ([{"step": "smooth", "windw": 5}], "has no parameter windw; it takes window, polyorder"),
        ([{"step": "baseline", "method": "nope"}], "unknown method 'nope'; pybaselines has"),
        (
            [{"step": "baseline", "method": "asls", "params": {"lamb": 1}}],
            "unknown parameter(s) lamb; it takes lam",
        ),
    ],
)
def test_a_bad_step_or_parameter_is_one_line_naming_it(spec, says, raman, tmp_path, capsys):
    with pytest.raises(ConfigError, match=re.escape(says)):
        Pipeline.from_spec(spec)
    data = raman.save(tmp_path / "in.npz")
    (tmp_path / "bad.yaml").write_text(json.dumps(spec))
    code = main(
        [
            "data",
            "preprocess",
            str(data),
            "--pipeline",
            str(tmp_path / "bad.yaml"),
            "--out",
            str(tmp_path / "o.npz"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err


def test_data_preprocess_keeps_the_input_records_the_pipeline_and_plots(raman, tmp_path, capsys):
    src = raman.save(tmp_path / "raw.npz")
    before = file_sha256(src)
    out, fig = tmp_path / "done.npz", tmp_path / "fig.png"
    args = ["data", "preprocess", str(src), "--pipeline", "raman-cells", "--out", str(out), "--keep-raw"]
    assert main([*args, "--plot", str(fig)]) == 0
    assert file_sha256(src) == before  # the input is never changed
    done = load(out)
    recorded = done.provenance["preprocess"]
    assert {k: recorded[k] for k in ("name", "steps", "digest")} == {
        k: load_pipeline("raman-cells").record()[k] for k in ("name", "steps", "digest")
    }
    assert recorded["input"] == {"axis": list(raman.axis), "normalize": "minmax"}  # where it started
    assert np.array_equal(done.extras["raw_X"], raman.X) and done.provenance["raw_axis"] == list(raman.axis)
    assert done.X.shape == (360, 1000) and np.allclose(done.X.max(1), 1) and done.masks.shape == (30, 1000)
    assert (
        fig.stat().st_size > 10_000
        and json.loads(fig.with_suffix(".json").read_text())["synthetic_data"] is True
    )
    assert (
        main(["data", "preprocess", str(out), "--pipeline", "raman-cells", "--out", str(tmp_path / "x.npz")])
        == 2
    )
    assert "already preprocessed" in capsys.readouterr().err  # processing twice is refused
    assert main(["data", "preprocess", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "raman-cells:" in listed and "ir-absorbance:" in listed and "despike: threshold=6.0" in listed


def _raw_files(raman, folder, classes, intensity) -> Path:
    """Eight CSV files per class of `raman`'s spectra, each `intensity(spectrum, r)`, named CLASS__r.csv."""
    folder.mkdir()
    for k in classes:
        for r, i in enumerate(np.flatnonzero(raman.y == k)[:8]):
            y = intensity(raman.X[i].astype(float), r)
            lines = "".join(f"{a},{b}\n" for a, b in zip(raman.axis, y, strict=True))
            (folder / f"{raman.label_names[k].replace(' ', '_')}__{r}.csv").write_text(lines)
    return folder


def _trained_and_scored(data, tmp_path) -> tuple[Path, pd.DataFrame]:
    """A tiny CNN-Peak trained one epoch on `data` (split 50/25/25), and its probabilities per spectrum of
    the whole dataset from `evaluate`."""
    assert main(["data", "split", str(data), "--fractions", "0.5,0.25,0.25", "--seed", "0"]) == 0
    cfg = from_dict(
        TrainConfig,
        {
            "data": {"path": str(data)},
            "model": {"extractor": "cnnpeak", "width": 8, "mixer_layers": 1, "hidden": 16},
            "optim": {"epochs": 1, "batch_size": 8},
            "precision": "fp32",
            "progress": False,
            "out_dir": str(tmp_path / "run"),
        },
    )
    train(cfg)
    ckpt = tmp_path / "run" / "best.pt"
    scored = tmp_path / "scored.csv"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--split", "all", "--allow-changed-splits",
                 "--out", str(scored)]) == 0  # fmt: skip
    return ckpt, pd.read_csv(scored).set_index("spectrum").filter(like="p(")


def _explained_as_expected(raw, ckpt, expected: pd.DataFrame, out) -> int:
    """`explain` the raw files; each explained spectrum's probabilities match `expected`; how many."""
    assert main(["explain", str(raw), "--checkpoint", str(ckpt), "--out", str(out), "--no-progress"]) == 0
    facts = [json.loads(p.read_text()) for p in out.glob("*.json")]
    facts = [f for f in facts if "probabilities" in f]
    for f in facts:
        want = expected.loc[f["spectrum"]]
        got = pd.Series({f"p({k})": v for k, v in f["probabilities"].items()})[want.index]
        assert np.abs(got.to_numpy() - want.to_numpy()).max() <= 1e-5
    return len(facts)


def test_the_pipeline_travels_from_import_through_training_to_explain(raman, tmp_path, capsys):
    """Raw files with a baseline and spikes, imported with a preset; a model trained on them; `explain` of
    the same raw files applies the pipeline itself and gives the probabilities of the processed dataset."""
    rng = np.random.default_rng(1)

    def counts(x: np.ndarray, r: int) -> np.ndarray:
        y = x * 100 + 0.05 * raman.axis + 20  # counts on a sloping background
        y[rng.integers(50, 950)] += 400  # a cosmic-ray spike
        return y

    raw = _raw_files(raman, tmp_path / "raw", [0, 1, 2], counts)
    data = tmp_path / "cells.npz"
    code = main(["data", "import", str(raw), "--axis", "ho", "--preprocess", "raman-light",
                 "--label-from-name", r"^(.*)__\d+", "--out", str(data), "--no-progress"])  # fmt: skip
    assert code == 0
    ds = load(data)
    assert ds.provenance["preprocess"]["name"] == "raman-light" and ds.n_classes == 3
    ckpt, expected = _trained_and_scored(data, tmp_path)
    assert _explained_as_expected(raw, ckpt, expected, tmp_path / "explained") == 24
    predicted = tmp_path / "predicted.csv"
    assert main(["predict", str(raw), "--model", str(ckpt), "--out", str(predicted), "--no-progress"]) == 0
    got = pd.read_csv(predicted).set_index("spectrum").filter(like="p(").loc[expected.index]
    assert np.abs(got.to_numpy() - expected.to_numpy()).max() <= 1e-5
    # data processed by another pipeline are refused in one line, as their provenance says so
    other = tmp_path / "other.npz"
    assert main(["data", "import", str(raw), "--axis", "ho", "--label-from-name", r"^(.*)__\d+",
                 "--out", str(tmp_path / "plain.npz"), "--no-progress"]) == 0  # fmt: skip
    assert (
        main(
            [
                "data",
                "preprocess",
                str(tmp_path / "plain.npz"),
                "--pipeline",
                "raman-cells",
                "--out",
                str(other),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(other), "--split", "all"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "preprocessed with raman-cells, but the model expects raman-light" in err


def test_a_model_trained_on_unscaled_imports_reads_raw_files_unscaled(raman, tmp_path, capsys):
    """Imported with ``--normalize none`` (absorbance kept as measured): `predict` and `explain` of the same
    raw files read them the same way and give the probabilities `evaluate` gives on the dataset; a dataset
    min-max scaled at import is refused."""
    # each spectrum at its own height: min-max would change it
    raw = _raw_files(raman, tmp_path / "raw", [0, 1], lambda x, r: x * (1 + 5 * r) + 0.2)
    data = tmp_path / "unscaled.npz"
    assert main(["data", "import", str(raw), "--axis", "ho", "--normalize", "none",
                 "--label-from-name", r"^(.*)__\d+", "--out", str(data), "--no-progress"]) == 0  # fmt: skip
    assert load(data).X.max() > 1.0  # kept as measured
    ckpt, expected = _trained_and_scored(data, tmp_path)
    predicted = tmp_path / "predicted.csv"
    for engine in ("torch", "onnxruntime"):
        args = ["predict", str(raw), "--model", str(ckpt), "--engine", engine, "--out", str(predicted)]
        assert main([*args, "--no-progress"]) == 0
        got = pd.read_csv(predicted).set_index("spectrum").filter(like="p(").loc[expected.index]
        assert np.abs(got.to_numpy() - expected.to_numpy()).max() <= 1e-5, engine
    # a dataset of the same files min-max scaled at import is not what the model reads: refused by name
    scaled = tmp_path / "scaled.npz"
    assert main(["data", "import", str(raw), "--axis", "ho", "--label-from-name", r"^(.*)__\d+",
                 "--out", str(scaled), "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["predict", str(scaled), "--model", str(ckpt), "--out", str(tmp_path / "no.csv")]) != 0
    said = capsys.readouterr()
    assert "scaled.npz" in said.out + said.err and "min-max scaled at import" in said.out + said.err
    assert _explained_as_expected(raw, ckpt, expected, tmp_path / "explained") == 16


def test_the_docs_list_every_step_with_its_parameters_and_defaults():
    from peakmixer.data.preprocess import PRESETS, step_parameters
    from peakmixer.paths import REPO_ROOT

    text = (REPO_ROOT / "docs" / "own_data.md").read_text()
    for name, params in step_parameters().items():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
        for key, default in params.items():
            assert f"`{key}` {default!r}" in row
    assert all(f"`{preset}`" in text for preset in PRESETS)


def test_a_pipeline_given_to_a_dataset_is_repeated_from_the_same_start_on_raw_files(raman, tmp_path, capsys):
    """`data preprocess` runs on an imported dataset (its axis, min-max): `predict` of the raw files puts
    them there first, so a model trained on the processed set sees the same inputs from its raw files."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in (0, 1):
        for r, i in enumerate(np.flatnonzero(raman.y == k)[:6]):
            y = raman.X[i] * 50 + 0.02 * raman.axis + 5
            lines = "".join(f"{a},{b}\n" for a, b in zip(raman.axis, y, strict=True))
            (raw / f"{raman.label_names[k].replace(' ', '_')}__{r}.csv").write_text(lines)
    plain, done = tmp_path / "plain.npz", tmp_path / "done.npz"
    assert main(["data", "import", str(raw), "--axis", "ho", "--label-from-name", r"^(.*)__\d+",
                 "--out", str(plain), "--no-progress"]) == 0  # fmt: skip
    assert main(["data", "split", str(plain), "--fractions", "0.5,0.25,0.25", "--seed", "0"]) == 0
    assert main(["data", "preprocess", str(plain), "--pipeline", "raman-cells", "--out", str(done)]) == 0
    assert load(done).provenance["preprocess"]["input"]["normalize"] == "minmax"
    cfg = {
        "data": {"path": str(done)},
        "model": {"extractor": "cnnpeak", "width": 8, "mixer_layers": 1, "hidden": 16},
        "optim": {"epochs": 1, "batch_size": 4},
        "precision": "fp32",
        "progress": False,
        "out_dir": str(tmp_path / "run"),
    }
    train(from_dict(TrainConfig, cfg))
    ckpt = str(tmp_path / "run" / "best.pt")
    scored, predicted = tmp_path / "scored.csv", tmp_path / "predicted.csv"
    args = ["--checkpoint", ckpt, "--split", "all", "--allow-changed-splits"]
    assert main(["evaluate", *args, "--out", str(scored)]) == 0
    assert main(["predict", str(raw), "--model", ckpt, "--out", str(predicted), "--no-progress"]) == 0
    expected = pd.read_csv(scored).set_index("spectrum").filter(like="p(")
    got = pd.read_csv(predicted).set_index("spectrum").filter(like="p(").loc[expected.index]
    assert np.abs(got.to_numpy() - expected.to_numpy()).max() <= 1e-5
    # the raw dataset itself is put through the same start and pipeline by `evaluate --data`
    again = tmp_path / "again.csv"
    assert main(["evaluate", *args, "--data", str(plain), "--out", str(again)]) == 0
    redone = pd.read_csv(again).set_index("spectrum").filter(like="p(").loc[expected.index]
    assert np.abs(redone.to_numpy() - expected.to_numpy()).max() <= 1e-5


def test_reading_through_a_pipeline_checks_the_files_own_coverage_and_refuses_bad_rows(raman, tmp_path):
    from peakmixer.data.io.batch import read_spectra

    x = raman.axis
    short = tmp_path / "short.csv"  # 1500-1792 cm-1 of a 382-1792 axis: 21%, below the 80% needed
    short.write_text("".join(f"{a},{b}\n" for a, b in zip(x[x >= 1500], raman.X[0][x >= 1500], strict=True)))
    holey = tmp_path / "holey.csv"
    values = raman.X[1].astype(float)
    values[10] = np.nan
    holey.write_text("".join(f"{a},{b}\n" for a, b in zip(x, values, strict=True)))
    good = tmp_path / "good.csv"
    good.write_text("".join(f"{a},{b}\n" for a, b in zip(x, raman.X[2], strict=True)))
    read = read_spectra([short, holey, good], x, normalize=None, preprocess=load_pipeline("raman-cells"))
    assert read.ids == ["good.csv"] and read.coverage == [pytest.approx(1.0)]
    reasons = {r.source: r.reason for r in read.rejected}
    assert reasons["short.csv"].startswith("covers 21% of the target axis")
    assert "NaN" in reasons["holey.csv"]
