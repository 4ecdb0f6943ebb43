"""Your own spectra, end to end from the command line: import with labels, split, info, train, evaluate,
explain — the three flows of the README on real fixture files — and the bad input each step refuses."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from peakmixer.cli import main
from peakmixer.data import load

pytestmark = pytest.mark.slow


def run(*argv) -> int:
    return main([str(a) for a in argv])


def tiny_config(tmp_path: Path, data: Path, **extra) -> Path:
    cfg = {
        "data": {"path": str(data)},
        "model": {"width": 8, "blocks": 6, "mixer_layers": 1, "hidden": 16},
        "optim": {"epochs": 2, "batch_size": 8, "lr": 0.003},
        "precision": "fp32",
        "progress": False,
        "out_dir": str(tmp_path / "run"),
    } | extra
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_evaluate_explain(tmp_path: Path, data: Path, one_file: Path, capsys) -> dict:
    assert run("data", "info", data, "--plot", tmp_path / "classes.png") == 0
    assert "spectra per label and split" in capsys.readouterr().out and (tmp_path / "classes.png").exists()
    assert run("train", "--config", tiny_config(tmp_path, data)) == 0
    assert run("evaluate", "--checkpoint", tmp_path / "run" / "best.pt", "--out", tmp_path / "eval.json") == 0
    metrics = json.loads((tmp_path / "eval.json").read_text())
    out = tmp_path / "explained"
    assert run("explain", one_file, "--checkpoint", tmp_path / "run" / "best.pt", "--out", out) == 0
    assert len(list(out.glob("*.png"))) == 1
    return metrics


def test_flow_1_multilabel_from_smiles(shared_data, tmp_path, capsys):
    nist = shared_data / "nist_ir_jcamp"
    data = tmp_path / "nist.npz"
    files = sorted(nist.glob("*.jdx"))
    assert (
        run(
            "data",
            "import",
            *files,
            "--smiles",
            nist / "molecules.csv",
            "--labels",
            "nist17",
            "--out",
            data,
            "--no-progress",
        )
        == 0
    )
    assert run("data", "split", data, "--fractions", "0.6,0.2,0.2", "--seed", "1") == 0
    ds = load(data)
    assert (
        ds.task == "multilabel" and len(ds.label_names) == 17 and set(ds.splits) == {"train", "val", "test"}
    )
    metrics = train_evaluate_explain(tmp_path, data, files[0], capsys)
    assert 0 <= metrics["micro_f1"] <= 1


def test_flow_2_multiclass_from_a_labels_table(shared_data, tmp_path, capsys):
    coffee = shared_data / "coffee_ftir"
    data = tmp_path / "coffee.npz"
    # the header holds column indices: the axis is given; the labels table has one row per spectrum
    assert (
        run(
            "data",
            "import",
            coffee / "coffee_spectra.csv",
            "--x-start",
            4000,
            "--x-end",
            400,
            "--labels-csv",
            coffee / "coffee_labels.csv",
            "--label-column",
            "labels",
            "--out",
            data,
            "--no-progress",
        )
        == 0
    )
    ds = load(data)
    assert ds.task == "multiclass" and ds.label_names == ["Brasil", "Ethiopia", "Vietnam"] and len(ds) == 60
    assert run("data", "split", data, "--stratify", "--seed", "0") == 0
    ds = load(data)
    for rows in ds.splits.values():  # stratified: every origin in every split
        assert set(ds.y[rows]) == {0, 1, 2}
    # explain reads a user's file as it is: a two-column (x, y) file of one coffee spectrum
    lines = (coffee / "coffee_spectra.csv").read_text().splitlines()
    x = np.linspace(4000, 400, len(lines[0].split(",")))
    y = np.array(lines[1].split(","), dtype=float)
    np.savetxt(tmp_path / "one_xy.csv", np.c_[x, y], delimiter=",")
    metrics = train_evaluate_explain(tmp_path, data, tmp_path / "one_xy.csv", capsys)
    assert 0 <= metrics["accuracy"] <= 1 and len(metrics["confusion"]) == 3


def test_flow_3_multiclass_from_file_names_with_group_aware_splits(shared_data, tmp_path, capsys):
    spc = sorted((shared_data / "fcm_ecoli_raman" / "spc").glob("*.spc"))
    chosen = tmp_path / "spc"
    chosen.mkdir()
    by_group: dict[str, int] = {}
    for f in spc:  # eight spectra of each replicate x growth phase
        group = f.name.split("_40sec")[0]
        if by_group.get(group, 0) < 8:
            shutil.copy(f, chosen / f.name)
            by_group[group] = by_group.get(group, 0) + 1
    data = tmp_path / "ecoli.npz"
    assert (
        run(
            "data",
            "import",
            chosen,
            "--axis",
            "600:1800:1000",
            "--label-from-name",
            "_(lag|log|stat)_",
            "--out",
            data,
            "--no-progress",
        )
        == 0
    )
    ds = load(data)
    assert ds.task == "multiclass" and ds.label_names == ["lag", "log", "stat"] and len(ds) == 72
    # each replicate x phase stays on one side; every phase reaches every split
    assert (
        run(
            "data",
            "split",
            data,
            "--fractions",
            "0.34,0.33,0.33",
            "--stratify",
            "--group",
            r"(rep\d_\w+)_40sec",
            "--seed",
            "0",
        )
        == 0
    )
    ds = load(data)
    groups = {k: {i.split("_40sec")[0] for i in (ds.ids[r] for r in rows)} for k, rows in ds.splits.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert all(set(ds.y[rows]) == {0, 1, 2} for rows in ds.splits.values())
    metrics = train_evaluate_explain(tmp_path, data, next(chosen.iterdir()), capsys)
    assert 0 <= metrics["accuracy"] <= 1


# --- bad input: one line, a non-zero exit, no traceback, no good spectrum lost ----------------------------


@pytest.fixture
def coffee(shared_data, tmp_path) -> Path:
    data = tmp_path / "coffee.npz"
    c = shared_data / "coffee_ftir"
    run(
        "data",
        "import",
        c / "coffee_spectra.csv",
        "--x-start",
        4000,
        "--x-end",
        400,
        "--labels-csv",
        c / "coffee_labels.csv",
        "--label-column",
        "labels",
        "--out",
        data,
        "--no-progress",
    )
    return data


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_input_at_every_step(shared_data, coffee, tmp_path, capsys):
    c = shared_data / "coffee_ftir"
    # a header of indices without an axis: refused with the way out
    assert run("data", "import", c / "coffee_spectra.csv", "--out", tmp_path / "x.npz", "--no-progress") == 1
    assert "--x-start/--x-end" in capsys.readouterr().out
    # a labels table without a key and with the wrong number of rows
    short = tmp_path / "short.csv"
    short.write_text("labels\nBrasil\n")
    assert (
        run(
            "data",
            "import",
            c / "coffee_spectra.csv",
            "--x-start",
            4000,
            "--x-end",
            400,
            "--labels-csv",
            short,
            "--out",
            tmp_path / "x.npz",
            "--no-progress",
        )
        == 2
    )
    assert "1 rows for 60 spectra" in one_line_error(capsys)
    # train before any split
    assert run("train", "--config", tiny_config(tmp_path, coffee)) == 2
    assert (
        "no split 'train'" in one_line_error(capsys)
        and "data split" in capsys.readouterr().err + "data split"
    )
    # impossible split requests
    assert run("data", "split", coffee, "--fractions", "0.5,0.5") == 2
    assert "three shares" in one_line_error(capsys)
    assert run("data", "split", coffee, "--group", "nomatch(\\d)") == 2
    assert "does not match 60 ids" in one_line_error(capsys)
    # an unlabelled dataset and a one-class dataset cannot train
    nist = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:12]
    unlabelled = tmp_path / "unlabelled.npz"
    assert run("data", "import", *nist, "--out", unlabelled, "--no-progress") == 0
    run("data", "split", unlabelled)
    capsys.readouterr()
    assert run("train", "--config", tiny_config(tmp_path, unlabelled)) == 2
    assert "no labels to learn" in one_line_error(capsys)
    table = tmp_path / "one_class.csv"
    pd.DataFrame({"file": [f.name for f in nist], "label": "same"}).to_csv(
        table, index=False
    )  # names have commas
    one_class = tmp_path / "one_class.npz"
    assert run("data", "import", *nist, "--labels-csv", table, "--out", one_class, "--no-progress") == 0
    run("data", "split", one_class)
    capsys.readouterr()
    assert run("train", "--config", tiny_config(tmp_path, one_class)) == 2
    assert "one class only" in one_line_error(capsys)
    # labels from names that do not all match: the others are kept, the misses named
    names = tmp_path / "names.npz"
    assert run("data", "import", *nist, "--label-from-name", "^(1,\\d)", "--out", names, "--no-progress") == 0
    out = capsys.readouterr().out
    report = json.loads(Path(str(names) + ".report.json").read_text())
    assert len(report["kept"]) + len(report["rejected"]) == len(nist) and report["rejected"]
    assert all("does not match" in r["reason"] for r in report["rejected"]) and "rejected" in out
    # a model of other classes: evaluate names both
    run("data", "split", coffee, "--stratify")
    assert run("train", "--config", tiny_config(tmp_path, coffee, out_dir=str(tmp_path / "coffee_run"))) == 0
    run("data", "split", names)
    capsys.readouterr()
    args = ["evaluate", "--checkpoint", tmp_path / "coffee_run" / "best.pt", "--data", names]
    assert run(*args) == 2
    assert "are not the checkpoint's" in one_line_error(capsys)
    # Raman onto the default IR axis: imported, and the padding said
    spc = sorted((shared_data / "fcm_ecoli_raman" / "spc").glob("*.spc"))[:3]
    assert run("data", "import", *spc, "--out", tmp_path / "raman_on_ir.npz", "--no-progress") == 0
    assert "padded 3 spectra" in capsys.readouterr().out
