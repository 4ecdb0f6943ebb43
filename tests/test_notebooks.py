"""The notebooks: committed clean, parameters that exist, and headless smoke runs (what CI executes)."""

import json
from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import pytest
import yaml
from conftest import run_all_smoke

from peakmixer.paths import REPO_ROOT as REPO
from peakmixer.report.notebooks import NOTEBOOK_DIR, PARAMS_DIR, PROFILES, available_notebooks, run_notebooks

NOTEBOOKS = available_notebooks()


def test_the_paper_notebooks_exist():
    assert {"01_data", "02_mixer_eval"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs_with_a_parameters_cell(name):
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_line_of_the_parameters_cell_is_a_parameter(name):
    # papermill silently skips a line it cannot parse (an "=" in a comment is enough): it would not be
    # injectable, and not listed by `papermill --help-notebook`
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    lines = [ln for ln in nb.cells[1].source.splitlines() if ln.strip() and not ln.startswith("#")]
    declared = pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    assert len(declared) == len(lines), [ln for ln in lines if ln.split(":")[0] not in declared]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_params_key_is_a_notebook_parameter(profile, name):
    # papermill only warns about unknown parameters: a typo in a params file would silently do nothing.
    declared = set(pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb")))
    path = PARAMS_DIR / profile / f"{name}.yaml"
    assert path.exists(), f"{path} is missing"
    keys = set(yaml.safe_load(path.read_text()) or {}) | {"profile", "out_dir"}
    assert keys <= declared, f"{path}: not parameters of {name}: {sorted(keys - declared)}"


def test_unknown_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        run_notebooks("smoke", ["99_nothing"], out_root=tmp_path)


def assert_figure(figs: Path, name: str) -> None:
    assert (figs / f"{name}.png").stat().st_size > 5_000 and (figs / f"{name}.svg").exists()
    assert_sidecar(figs / f"{name}.png")


def assert_sidecar(path: Path, synthetic: bool = True) -> None:
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["file"] == path.name and side["synthetic_data"] is synthetic
    assert side["git_sha"] and side["packages"]["torch"] and side["parameters"]["profile"] == "smoke"
    assert side["data_sha256"] and all(len(h) == 64 for h in side["data_sha256"].values())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_all_smoke_01_data(smoke):
    figs = smoke
    for name in ("datasets", "examples_synth-ir17", "examples_synth-bac30"):
        assert_figure(figs, name)
    assert_sidecar(figs / "label_stats.csv")
    table = pd.read_csv(figs / "label_stats.csv")
    assert set(table["dataset"]) == {"synth-ir17", "synth-bac30"} and table["synthetic"].all()
    assert len(table) == 17 + 30


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_01_data_includes_a_real_dataset_from_data_dir(tmp_path, shared_data):
    from peakmixer.data.io import import_files

    nist = shared_data / "nist_ir_jcamp"
    import_files(
        sorted(nist.glob("*.jdx")),
        out=tmp_path / "data" / "nist-fixtures.npz",
        smiles_csv=nist / "molecules.csv",
        labels="nist17",
        axis="ir",
        progress=False,
    )
    figs = run_all_smoke(tmp_path, "01_data")
    table = pd.read_csv(figs / "label_stats.csv")
    real = table[table["dataset"] == "nist-fixtures"]
    assert len(real) == 17 and not real["synthetic"].any() and real["spectra"].sum() > 50
    side = json.loads((figs / "datasets.json").read_text())
    assert set(side["data_sha256"]) == {"synth-ir17", "synth-bac30", "nist-fixtures"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_all_smoke_02_mixer_eval(smoke):
    figs = smoke
    assert_figure(figs, "mixer_fig1")
    for table in ("mixer_runs", "mixer_summary", "mixer_claims"):
        assert_sidecar(figs / f"{table}.csv")
    runs = pd.read_csv(figs / "mixer_runs.csv")
    params = yaml.safe_load((PARAMS_DIR / "smoke" / "02_mixer_eval.yaml").read_text())
    assert set(runs["mixer"]) == {"none", "mlp", "mlpmixer", "transformer"}
    assert set(runs["dataset"]) == {"synth-ir17", "synth-bac30"} and runs["synthetic"].all()
    assert set(runs["seed"]) == {0, 1} and set(runs["width"]) == {4, 8}
    # the smoke overrides reach the models (blocks=3 at input 256: 16 positions, not 6 blocks' 8)
    assert set(runs["blocks"]) == {3} and params["recompute"] is True
    assert (figs.parents[1] / "runs" / "fig1_mixers.csv").exists()  # recomputed into runs_dir, not results/
    # synth-ir17 is learnt even in seconds: far above the all-negative F1 of 0. synth-bac30 is not at this
    # budget (4 epochs of tiny models on 600 spectra, each seed with its own pre-training: 0.007-0.067 over
    # 16 runs, chance 1/30), so only its scores are checked here; test_sweep trains its protocol
    assert runs.loc[runs["dataset"] == "synth-ir17", "micro_f1"].max() > 0.5
    bac30 = runs.loc[runs["dataset"] == "synth-bac30", "accuracy"]
    assert len(bac30) == 16 and bac30.between(0, 1).all()
    verdict = (figs / "mixer_verdict.txt").read_text()
    assert verdict.startswith("On SYNTHETIC data") and "MLPMixer beats no mixer" in verdict
    # every run trained now keeps its outcome per test spectrum (the smoke runs end at their epoch cap, so
    # no claim is tested on them and none shows an interval over the spectra)
    study = pd.read_csv(figs.parents[1] / "runs" / "fig1_mixers.csv", dtype={"config_id": str})
    spectra = pd.read_csv(figs.parents[1] / "runs" / "fig1_mixers_spectra.csv", dtype={"config_id": str})
    kept = set(map(tuple, spectra[["run_id", "config_id"]].to_numpy()))
    assert kept == set(map(tuple, study[["run_id", "config_id"]].to_numpy()))
    assert {"spectra", "spectra_ci_low"} <= set(pd.read_csv(figs / "mixer_claims.csv"))
    assert_sidecar(figs / "mixer_verdict.txt")
    side = json.loads((figs / "mixer_fig1.json").read_text())
    assert side["source"] == "recomputed" and side["spot_check"] == []


def test_what_a_reader_sees_never_points_outside_the_clone():
    # a user's clone has no ../shared: the README, the notebooks and the docs must not send them there
    docs = [
        *REPO.glob("*.md"),
        *REPO.glob("*/README.md"),
        *(REPO / "docs").glob("*.md"),
        *NOTEBOOK_DIR.glob("*.ipynb"),
    ]
    offenders = [
        str(p.relative_to(REPO)) for p in docs if "../shared" in p.read_text() or "shared/" in p.read_text()
    ]
    assert offenders == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_all_smoke_03_ip_eval(smoke):
    figs = smoke
    table = pd.read_csv(figs / "ip_table1.csv")
    assert set(table["score"]) == {"infidelity", "sensitivity"}
    assert set(table["correlation"]) == {"trainable", "frozen"}
    assert set(table["dataset"]) == {"synth-ir17", "synth-bac30"} and (table["seeds"] == 2).all()
    assert table["mean"].notna().all() and (table["mean"] >= 0).all()
    for name in ("ip_table1", "ip_table1_vs_paper", "ip_ground_truth", "ip_verdict_table"):
        assert_sidecar(figs / f"{name}.csv")
    beside = pd.read_csv(figs / "ip_table1_vs_paper.csv")  # the paper's four cells, each with a word
    assert len(beside) == 4 and beside["paper_trainable"].notna().all()
    assert set(beside["beside_paper"]) <= {"reproduced", "reversed", "not resolved"}
    assert_figure(figs, "ip_table1_figure")
    assert_figure(figs, "ip_ground_truth_figure")
    side = json.loads((figs / "ip_table1.json").read_text())
    pinned = side["settings"]["scoring"]["score"]
    assert {"noise_sd", "n_perturb_samples", "normalize", "sensitivity_radius", "seed"} <= set(pinned)
    assert side["settings"]["scoring"]["layer"] == "stem" and side["source"] == "recomputed"
    gt = pd.read_csv(figs / "ip_ground_truth.csv")
    assert set(gt["ip_mode"]) == {"trainable", "frozen", "off", "redrawn"}
    assert set(gt["channels"]) == {"all", "specific", "complement"}
    scores = gt[gt["score"].isin(["mass_accuracy", "rank_accuracy", "pointing_game"])]["mean"]
    assert scores.between(0, 1).all()
    verdict = (figs / "ip_verdict.txt").read_text()
    assert verdict.startswith("On SYNTHETIC data") and "scale-free share" in verdict
    assert "Tally against frozen" in verdict and "Tally against redrawn" in verdict
    assert "Table 1's columns over seeds" in verdict
    # beyond the paper: the scale-free fidelity, channel ownership, chance, the arms paired, specific vs all
    for name in ("ip_fidelity", "ip_channels", "ip_chance", "ip_trainable_vs_other", "ip_specific_vs_all"):
        assert_sidecar(figs / f"{name}.csv")
    fidelity = pd.read_csv(figs / "ip_fidelity.csv")
    assert set(fidelity["rule"]) == {"argmax", "topk"} and {"share_mean", "rho_mean", "left_out"} <= set(
        fidelity
    )
    assert fidelity["share_mean"].between(0, 1).all()
    owned = pd.read_csv(figs / "ip_channels.csv")
    assert {"without_channels_argmax", "pairs_left_out_argmax", "pairs_flat_argmax"} <= set(owned)
    assert (owned["pairs_unowned_topk"] == 0).all()  # top-k gives every class channels
    assert (owned["pairs_left_out_topk"] == owned["pairs_flat_topk"]).all()
    assert_figure(figs, "ip_channels_figure")
    chance = pd.read_csv(figs / "ip_chance.csv")
    assert chance["mask_fraction"].between(0, 1).all() and chance["random_map"].notna().all()
    arms = pd.read_csv(figs / "ip_trainable_vs_other.csv")
    assert set(arms["arm_b"]) == {"frozen", "redrawn"} and {"left_out_a", "left_out_b"} <= set(arms)
    assert set(arms["outcome"]) <= {"supported", "contradicted", "not resolved"}
    subsets = pd.read_csv(figs / "ip_specific_vs_all.csv")
    assert set(subsets["versus"]) == {"all", "complement"} and {"left_out", "sd_over_seeds"} <= set(subsets)
    assert "linear" in pd.read_csv(figs / "ip_against_linear.csv")
    # the linear check is the first thing 03 says after its set-up: a reader sees it before any map
    cells = json.loads((figs / "03_ip_eval.ipynb").read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    setup = next(i for i, c in enumerate(code) if "study_page(" in "".join(c["source"]))
    first = code[setup + 1]
    said = "".join("".join(o.get("text", "")) for o in first["outputs"] if o.get("name") == "stdout")
    assert "against_linear_text(" in "".join(first["source"])
    assert "a linear model (logistic regression" in said


def tiny_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile: str = "smoke"\nout_dir: str = ""\nvalue: str = "1"\nfail: bool = False'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from pathlib import Path\n" + body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_failing_notebook_stops_the_run_names_itself_and_keeps_earlier_outputs(tmp_path, monkeypatch):
    from peakmixer.cli import main
    from peakmixer.report import notebooks

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    tiny_notebook(nbdir / "01_a.ipynb", "(Path(out_dir) / 'a.txt').write_text(value)")
    tiny_notebook(
        nbdir / "02_b.ipynb",
        "(Path(out_dir) / 'b.txt').write_text(value)\nif fail:\n    raise RuntimeError('deliberate failure')",
    )
    monkeypatch.setattr(notebooks, "NOTEBOOK_DIR", nbdir)
    monkeypatch.setattr(notebooks, "PARAMS_DIR", tmp_path / "params")
    figures = tmp_path / "figures"
    args = ["notebooks", "--profile", "smoke", "--figures", str(figures)]
    assert main(args + ["--set", "value=first"]) == 0
    out = figures / "smoke"
    assert (out / "a.txt").read_text() == "first" and (out / "b.txt").read_text() == "first"
    assert (out / "02_b.html").exists() and "02_b.html" in (out / "index.html").read_text()

    with pytest.raises(notebooks.NotebookFailed, match=r"02_b failed in cell \d+ \(RuntimeError: deliberate"):
        notebooks.run_notebooks("smoke", out_root=figures, extra={"value": "second", "fail": True})
    assert (out / "a.txt").read_text() == "second"  # the notebook that succeeded is in place
    assert (out / "b.txt").read_text() == "first"  # the failed one left the earlier good output alone
    assert [p.name for p in figures.iterdir()] == ["smoke"]  # no staging left behind
    assert main(args + ["--set", "fail=true"]) == 1  # the CLI: a non-zero exit


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_all_smoke_04_gradcam(smoke):
    for name in ("gradcam_fig2", "gradcam_fig3", "gradcam_mean_ir", "gradcam_mean_bac", "gradcam_viewer"):
        assert_figure(smoke, name)
    side = json.loads((smoke / "gradcam_fig2.json").read_text())
    assert side["model"]["checkpoint"].endswith("models/synth-ir17_ip.pt") and side["model"]["config_id"]
    assert side["spectra"] and side["caption"].startswith("Fig. 2")


def users_run(tmp_path: Path, name: str, data: Path) -> Path:
    """A tiny run of a user's own dataset (split 0.5 / 0.25 / 0.25); returns its best.pt."""
    from peakmixer.data.dataset import load
    from peakmixer.data.splits import split_dataset
    from peakmixer.train.config import load_config
    from peakmixer.train.loop import train

    split_dataset(load(data), [0.5, 0.25, 0.25], seed=0).save(data)
    cfg = {
        "data": {"path": str(data)},
        "model": {"width": 8, "blocks": 6, "mixer_layers": 1, "hidden": 16, "ip": {"mode": "trainable"}},
        "optim": {"epochs": 3, "batch_size": 8, "lr": 0.003},
        "precision": "fp32",
        "progress": False,
        "out_dir": str(tmp_path / name),
    }
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    train(load_config(tmp_path / f"{name}.yaml"))
    return tmp_path / name / "best.pt"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_04_gradcam_on_a_users_own_datasets_and_runs(tmp_path, shared_data):
    """Fig. 2 from a multilabel import of real IR spectra (most have few labels; CO2 none), Fig. 3 from a
    multiclass one, each with the user's own checkpoint, through papermill parameters."""
    from peakmixer.data.dataset import load
    from peakmixer.data.io import import_files
    from peakmixer.data.io.csv import CsvOptions
    from peakmixer.data.io.labelsource import LabelSource

    nist, coffee = shared_data / "nist_ir_jcamp", shared_data / "coffee_ftir"
    ir = tmp_path / "nist.npz"
    import_files([nist], out=ir, smiles_csv=nist / "molecules.csv", labels="nist17")
    bac = tmp_path / "coffee.npz"
    import_files(
        [coffee / "coffee_spectra.csv"],
        out=bac,
        csv=CsvOptions(x_start=4000, x_end=400),
        label_source=LabelSource(coffee / "coffee_labels.csv", "labels"),
    )
    extra = {
        "ir_checkpoint": str(users_run(tmp_path, "ir_run", ir)),
        "ir_data": str(ir),
        "bac_checkpoint": str(users_run(tmp_path, "bac_run", bac)),
        "bac_data": str(bac),
    }
    run_notebooks("smoke", ["04_gradcam"], out_root=tmp_path / "figures", extra=extra, progress=False)
    figs = tmp_path / "figures" / "smoke"
    for name in ("gradcam_fig2", "gradcam_fig3", "gradcam_mean_ir", "gradcam_mean_bac", "gradcam_viewer"):
        assert (figs / f"{name}.png").stat().st_size > 5_000
        assert not json.loads((figs / f"{name}.json").read_text())["synthetic_data"]
    ds = load(ir)
    picked = json.loads((figs / "gradcam_fig2.json").read_text())["spectra"]
    assert picked and all(ds.y[ds.ids.index(i)].sum() > 0 for i in picked)  # spectra with a label to explain
    assert (
        json.loads((figs / "gradcam_fig2.json").read_text())["model"]["checkpoint"] == extra["ir_checkpoint"]
    )


FIGURE_MAP_HEAD = "| paper | notebook | parameters | outputs | what ours shows |"


def figure_map() -> list[dict[str, str]]:
    text = (REPO / "docs" / "running.md").read_text()
    lines = text[text.index(FIGURE_MAP_HEAD) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        paper, notebook, params, outputs, _ = [c.strip() for c in line.strip("|").split("|")]
        rows.append(
            {
                "paper": paper,
                "notebook": notebook.strip("`"),
                "params": params.strip("`"),
                "outputs": [o.strip().strip("`") for o in outputs.split(",")],
            }
        )
    return rows


def test_the_figure_map_names_real_notebooks_and_params():
    rows = figure_map()
    assert {r["notebook"] for r in rows} == set(NOTEBOOKS)
    for r in rows:
        for profile in PROFILES:
            assert (REPO / r["params"].replace("<profile>", profile)).exists(), r


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_smoke_run_writes_every_output_of_the_figure_map_and_an_index(smoke):
    import re

    for row in figure_map():
        for name in row["outputs"]:
            assert (smoke / name).exists(), f"{row['paper']}: {name} missing"
            assert_sidecar(smoke / name)
    for name in NOTEBOOKS:
        assert (smoke / f"{name}.html").stat().st_size > 10_000  # the HTML report of each notebook
    index = (smoke / "index.html").read_text()
    links = set(re.findall(r"(?:href|src)='([^']+)'", index))
    assert links and all((smoke / link).exists() for link in links), sorted(links)
    assert {f"{n}.html" for n in NOTEBOOKS} <= links
