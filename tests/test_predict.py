"""`python -m peakmixer predict`: a model's predictions for unlabelled spectrum files, torch or ONNX."""

import numpy as np
import pandas as pd
import pytest

from peakmixer.cli import main
from peakmixer.deploy import open_model, predict_files
from peakmixer.paths import MODELS_DIR
from peakmixer.synth.benchmarks import model_data

IR_PT, IR_ONNX, IR_INT8 = (MODELS_DIR / f"synth-ir17_ip{s}" for s in (".pt", ".onnx", ".int8.onnx"))


@pytest.fixture(scope="module")
def spectrum_files(tmp_path_factory):
    """Three synthetic test spectra as two-column csv files (one covers 85% of the axis), a broken JCAMP."""
    folder = tmp_path_factory.mktemp("spectra")
    ds = model_data(IR_PT).split("test")
    for i in range(3):
        keep = ds.axis >= (400 + 0.15 * 3600 if i == 2 else 0)
        lines = "".join(f"{x},{y}\n" for x, y in zip(ds.axis[keep], ds.X[i][keep], strict=True))
        (folder / f"s{i}.csv").write_text("wavenumber,absorbance\n" + lines)
    (folder / "broken.jdx").write_text(
        "##TITLE=cut short\n##JCAMP-DX=4.24\n##XYDATA=(X++(Y..Y))\n4000 0.1 x\n"
    )
    return folder


def test_predict_scores_every_good_file_and_names_the_broken_one(spectrum_files, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert (
        main(["predict", str(spectrum_files), "--model", str(IR_INT8), "--out", str(out), "--no-progress"])
        == 1
    )
    table = pd.read_csv(out)
    assert list(table["file"]) == ["s0.csv", "s1.csv", "s2.csv"]
    names = open_model(IR_INT8).label_names
    assert list(table.columns[6:]) == [f"p({n})" for n in names]
    probs = table[[f"p({n})" for n in names]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    for row, p in zip(table.itertuples(index=False), probs, strict=True):  # predicted = labels at >= 0.5
        said = row.predicted.split("; ") if isinstance(row.predicted, str) else []  # empty cells read as NaN
        assert said == [n for n, q in zip(names, p, strict=True) if q >= 0.5]
    err = capsys.readouterr().err
    assert err.count("refused broken.jdx: ") == 1 and "warning: s2.csv: covers 85%" in err
    assert table.loc[2, "coverage"] == pytest.approx(0.85, abs=0.01)


def test_torch_and_onnx_runtime_give_the_same_probabilities(spectrum_files, tmp_path):
    files = sorted(spectrum_files.glob("s*.csv"))
    runs = {
        name: predict_files(files, open_model(model, engine), tmp_path / f"{name}.csv").table
        for name, model, engine in (("torch", IR_PT, None), ("onnx", IR_ONNX, None))
    }
    p = {k: t.filter(like="p(").to_numpy() for k, t in runs.items()}
    assert np.abs(p["onnx"] - p["torch"]).max() <= 1e-5
    assert (runs["onnx"]["predicted"].fillna("") == runs["torch"]["predicted"].fillna("")).all()


def test_predict_on_real_jcamp_files_with_the_onnx_model(shared_data, tmp_path, capsys):
    nist = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:4]
    nmr = shared_data / "jcamp_edge_cases" / "1HQuinine.jdx"  # an NMR spectrum: no IR axis to score
    out = tmp_path / "p.csv"
    code = main(
        ["predict", *map(str, [*nist, nmr]), "--model", str(IR_ONNX), "--out", str(out), "--no-progress"]
    )
    assert code == 1
    table = pd.read_csv(out)
    assert list(table["file"]) == [p.name for p in nist]
    assert "refused 1HQuinine.jdx: " in capsys.readouterr().err
    torch_table = predict_files(nist, open_model(IR_PT), tmp_path / "t.csv").table
    assert np.abs(table.filter(like="p(").to_numpy() - torch_table.filter(like="p(").to_numpy()).max() <= 1e-5
