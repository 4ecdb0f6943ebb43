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
from peakmixer.data.dataset import load

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
    assert (
        run("evaluate", "--checkpoint", tmp_path / "run" / "best.pt", "--metrics", tmp_path / "eval.json")
        == 0
    )
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
    assert metrics["split_check"] == "the split the run was made with"
    a_run_remembers_its_data(tmp_path, data, coffee, capsys)


def a_run_remembers_its_data(tmp_path: Path, data: Path, coffee: Path, capsys) -> None:
    """Neither a re-import nor a re-split replaces a dataset unasked; a run refuses to be scored on a split
    that holds spectra it trained on, unless asked, and then says so."""
    before = data.read_bytes()
    capsys.readouterr()
    again = ["data", "import", coffee / "coffee_spectra.csv", "--x-start", 4000, "--x-end", 400]
    assert run(*again, "--out", data, "--no-progress") == 2
    assert "exists; --overwrite replaces it" in one_line_error(capsys)
    assert run("data", "split", data, "--seed", 7) == 2
    assert "holds splits already" in one_line_error(capsys) and data.read_bytes() == before
    assert run("data", "split", data, "--seed", 7, "--overwrite") == 0
    capsys.readouterr()
    checkpoint = tmp_path / "run" / "best.pt"
    assert run("evaluate", "--checkpoint", checkpoint) == 2
    err = one_line_error(capsys)
    assert "spectra that" in err and "trained or validated on" in err and "--allow-changed-splits" in err
    assert run("evaluate", "--checkpoint", checkpoint, "--allow-changed-splits", "--json") == 0
    assert "scored anyway" in json.loads(capsys.readouterr().out)["split_check"]
    # the run's own training split is scored as asked, however it was re-split
    assert run("evaluate", "--checkpoint", checkpoint, "--split", "train") == 0
    # the spectrum files themselves, read as `data import` reads them: all 60 spectra, its training ones too
    files = ["--data", coffee / "coffee_spectra.csv", "--x-start", 4000, "--x-end", 400, "--no-progress"]
    files += ["--labels-csv", coffee / "coffee_labels.csv", "--label-column", "labels"]
    capsys.readouterr()
    assert run("evaluate", "--checkpoint", checkpoint, *files) == 2
    assert "split 'all' holds" in one_line_error(capsys)
    assert run("evaluate", "--checkpoint", checkpoint, *files, "--allow-changed-splits", "--json") == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n"] == 60 and scored["split"] == "all" and "scored anyway" in scored["split_check"]


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


def test_flow_4_a_csv_with_its_own_class_column_read_the_same_way_by_every_command(
    shared_data, tmp_path, capsys
):
    coffee = shared_data / "coffee_ftir"
    lines = (coffee / "coffee_spectra.csv").read_text().splitlines()
    origins = pd.read_csv(coffee / "coffee_labels.csv")["labels"].tolist()
    own = tmp_path / "coffee_with_class.csv"
    own.write_text(
        "\n".join([lines[0] + ",class"] + [f"{r},{o}" for r, o in zip(lines[1:], origins, strict=True)])
    )
    read = [own, "--x-start", 4000, "--x-end", 400, "--no-progress"]  # the same options in every command
    data = tmp_path / "own.npz"
    assert run("data", "import", *read, "--out", data) == 0
    ds = load(data)
    assert ds.task == "multiclass" and [ds.label_names[k] for k in ds.y] == origins
    assert run("data", "split", data, "--stratify", "--seed", 0) == 0
    assert run("data", "info", data) == 0
    assert run("train", "--config", tiny_config(tmp_path, data)) == 0
    best = tmp_path / "run" / "best.pt"
    assert run("evaluate", "--checkpoint", best, "--split", "test") == 0
    capsys.readouterr()
    assert run("evaluate", "--checkpoint", best, "--data", *read, "--allow-changed-splits", "--json") == 0
    assert json.loads(capsys.readouterr().out)["n"] == 60
    few = tmp_path / "three.csv"
    few.write_text("\n".join(own.read_text().splitlines()[:4]))
    assert run("explain", few, *read[1:], "--checkpoint", best, "--out", tmp_path / "explained") == 0
    assert len(pd.read_csv(tmp_path / "explained" / "summary.csv")) == 3


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


# --- one input path: the same sources and options in data import and explain ------------------------------


def test_import_and_explain_read_the_same_sources(shared_data, tmp_path, capsys):
    nist = shared_data / "nist_ir_jcamp"
    folder = tmp_path / "nist"
    folder.mkdir()
    for f in sorted(nist.glob("*.jdx"))[:12] + [nist / "molecules.csv"]:
        shutil.copy(f, folder / f.name)
    data = tmp_path / "nist.npz"
    imported = ["data", "import", folder, "--smiles", folder / "molecules.csv", "--labels", "nist17"]
    assert run(*imported, "--out", data, "--no-progress") == 0
    assert "names 38 spectra that are not among the sources" in capsys.readouterr().out  # said, not ignored
    assert run("data", "split", data, "--fractions", "0.5,0.25,0.25", "--seed", 0) == 0
    ds = load(data)
    test_ids = [ds.ids[i] for i in ds.splits["test"]]
    # a folder with a molecules table in it: the table is skipped and said, every spectrum explained
    capsys.readouterr()
    assert run("explain", folder, "--out", tmp_path / "folder", "--no-progress") == 0
    assert "note: skipped molecules.csv: not a spectrum table" in capsys.readouterr().out
    assert len(list((tmp_path / "folder").glob("*.png"))) == 12
    # a dataset file's split, in explain and in import (labels and SMILES travel)
    assert run("explain", data, "--split", "test", "--out", tmp_path / "split", "--no-progress") == 0
    explained = pd.read_csv(tmp_path / "split" / "summary.csv")["spectrum"].tolist()
    assert explained == [f"nist.npz#{i}" for i in test_ids]
    sub = tmp_path / "test_only.npz"
    assert run("data", "import", data, "--split", "test", "--labels", "nist17", "--out", sub) == 0
    part = load(sub)
    assert part.ids == [f"nist.npz#{i}" for i in test_ids]
    assert (part.y == ds.y[ds.splits["test"]]).all() and np.allclose(part.X, ds.X[ds.splits["test"]])
    # the csv options and an .npy axis file work in explain as in import
    coffee = shared_data / "coffee_ftir" / "coffee_spectra.csv"
    head = coffee.read_text().splitlines()[:3]
    few = tmp_path / "few.csv"
    few.write_text("\n".join(head) + "\n")
    assert run("explain", few, "--out", tmp_path / "csv_no_axis", "--no-progress") == 2
    assert "--x-start/--x-end" in capsys.readouterr().out
    axis = ["--x-start", 4000, "--x-end", 400]
    assert run("explain", few, *axis, "--out", tmp_path / "csv", "--no-progress") == 0
    assert len(pd.read_csv(tmp_path / "csv" / "summary.csv")) == 2
    matrix = tmp_path / "matrix" / "spectra.npy"
    matrix.parent.mkdir()
    np.save(matrix, part.X[:2])
    np.save(tmp_path / "axis.npy", part.axis)
    assert run("explain", matrix, "--out", tmp_path / "npy_no_axis", "--no-progress") == 2
    assert "--npy-axis" in capsys.readouterr().out
    assert run("explain", matrix, "--npy-axis", tmp_path / "axis.npy", "--out", tmp_path / "npy") == 0
    capsys.readouterr()
    # the kind of spectrum: the files say it, the import keeps it, the model refuses another kind
    assert ds.provenance["spectrum_kind"] == "ir"
    raman = sorted((shared_data / "fcm_ecoli_raman" / "spc").glob("*.spc"))[0]
    assert run("explain", raman, "--out", tmp_path / "raman", "--no-progress") == 2  # the shipped IR model
    assert "a Raman spectrum (so its file says); this model was trained on IR absorbance spectra" in (
        capsys.readouterr().out
    )


def test_refused_rows_do_not_shift_the_labels_of_a_table_without_a_key(shared_data, tmp_path, capsys):
    coffee = shared_data / "coffee_ftir"
    lines = (coffee / "coffee_spectra.csv").read_text().splitlines()
    for row in (3, 10):  # two spectra with a NaN in them
        values = lines[row].split(",")
        values[100] = "nan"
        lines[row] = ",".join(values)
    spectra = tmp_path / "with_nan.csv"
    spectra.write_text("\n".join(lines) + "\n")
    args = ["--x-start", 4000, "--x-end", 400, "--labels-csv", coffee / "coffee_labels.csv"]
    assert run("data", "import", spectra, *args, "--out", tmp_path / "c.npz", "--no-progress") == 0
    out = capsys.readouterr().out
    assert all(f"with_nan.csv#{k}: NaN, Inf, missing or non-numeric values" in out for k in (2, 9))
    ds = load(tmp_path / "c.npz")
    truth = pd.read_csv(coffee / "coffee_labels.csv")["labels"].tolist()
    kept = [k for k in range(60) if k not in (2, 9)]
    assert len(ds) == 58 and [ds.label_names[k] for k in ds.y] == [truth[k] for k in kept]
