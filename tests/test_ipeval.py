"""Table 1, the ground-truth tables, the trainable-vs-frozen verdict and the re-scoring spot checks."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import line_with, numbers_in

from peakmixer.paths import REPO_ROOT
from peakmixer.studies.ipeval import (
    against_linear_text,
    ground_truth_table,
    readme_ip_results,
    rescore_check,
    rescore_text,
    table1,
    table1_over_seeds,
)
from peakmixer.studies.results import load_study, read_store
from peakmixer.studies.store import read_results
from peakmixer.studies.sweep import run_sweep
from peakmixer.train.checkpoint import export_model

SCORES = {"n_spectra": 5, "score": {"n_perturb_samples": 2, "sensitivity_samples": 2}}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A tiny IP study, trained and scored into its own store."""
    root = tmp_path_factory.mktemp("ipeval")
    study = {
        "datasets": [{"name": "synth-ir17", "kind": "synth-ir17", "n": 200}],
        "widths": [8],
        "blocks": 6,
        "mixers": ["mlpmixer"],
        "mixer_layers": [1],
        "ip_modes": ["trainable", "frozen"],
        "seeds": [0, 1],
        "train": {
            "model": {"hidden": 16, "ip": {"channels": 34}},
            "optim": {"epochs": 1, "batch_size": 32},
            "precision": "fp32",
        },
        "scores": SCORES,
        "out_dir": str(root / "runs"),
        "results": str(root / "store" / "tiny.csv"),
        "data_dir": str(root / "data"),
    }
    (root / "studies").mkdir()
    (root / "studies" / "tiny.yaml").write_text(json.dumps(study))
    cfg = load_study("tiny", studies_dir=root / "studies")
    run_sweep(cfg, progress=False)
    return root, cfg


RUN = "synth-ir17/w8x6-mlpmixer1-iptrainable/seed0"


def test_a_stored_run_is_rescored_exactly_from_its_own_model_or_a_shipped_copy(stored):
    root, cfg = stored
    rows = read_store({"tiny": cfg}).rows
    checks = rescore_check({"tiny": cfg}, rows, [RUN], tolerance=0.0, models_dir=root / "models")
    assert checks.iloc[0]["agrees"] and checks.iloc[0]["model_from"] == "run directory"
    assert checks.iloc[0]["scores_compared"] >= 10

    # a fresh clone has no run directory: the shipped copy with the row's run identity is found by it
    (run_dir,) = (root / "runs" / "runs").glob(f"{RUN}-*")
    export_model(run_dir / "best.pt", root / "models" / "whatever_name.pt")
    shutil.move(run_dir, root / "away")
    try:
        checks = rescore_check({"tiny": cfg}, rows, [RUN], tolerance=0.0, models_dir=root / "models")
        assert checks.iloc[0]["agrees"] and checks.iloc[0]["model_from"] == "models/whatever_name.pt"
        # neither: said, not a crash
        checks = rescore_check({"tiny": cfg}, rows, [RUN], tolerance=0.0, models_dir=root / "nothing")
        assert not checks.iloc[0]["checked"] and "its model is not here" in rescore_text(checks)
    finally:
        shutil.move(root / "away", run_dir)


def test_a_stored_score_the_model_does_not_give_is_a_disagreement(stored, tmp_path):
    root, cfg = stored
    rows = read_store({"tiny": cfg}).rows.copy()
    rows.loc[rows["run_id"] == RUN, "sensitivity_mean"] += 0.01
    checks = rescore_check({"tiny": cfg}, rows, [RUN], tolerance=1e-6, models_dir=tmp_path)
    assert not checks.iloc[0]["agrees"] and checks.iloc[0]["worst_score"] == "sensitivity_mean"
    assert "DISAGREE" in rescore_text(checks)
    rows.loc[rows["run_id"] == RUN, "sensitivity_mean"] = np.nan  # stored missing, live a number
    checks = rescore_check({"tiny": cfg}, rows, [RUN], tolerance=1e-6, models_dir=tmp_path)
    assert not checks.iloc[0]["agrees"] and np.isinf(checks.iloc[0]["max_abs_delta"])


def test_table1_and_the_ground_truth_table_summarise_the_rows(stored):
    root, cfg = stored
    rows = read_results(cfg.results_path)
    t = table1(rows)
    assert set(t["score"]) == {"infidelity", "sensitivity"} and set(t["correlation"]) == {
        "trainable",
        "frozen",
    }
    assert (t["seeds"] == 2).all()
    trainable = rows[rows["ip_mode"] == "trainable"]["infidelity_mean"]
    got = t[(t["score"] == "infidelity") & (t["correlation"] == "trainable")].iloc[0]
    assert got["mean"] == pytest.approx(trainable.mean()) and got["sd_over_seeds"] == pytest.approx(
        trainable.std()
    )
    gt = ground_truth_table(rows)
    assert set(gt["channels"]) == {"all", "specific", "complement"} and gt["mean"].between(0, 1).all()


def test_table1_over_seeds_counts_lower_as_better_and_leaves_the_truth_to_the_pairs():
    def rows(score, trainable, frozen):
        return pd.DataFrame(
            [
                {"dataset": "d", "ip_mode": m, score: v}
                for m, vs in (("trainable", trainable), ("frozen", frozen))
                for v in vs
            ]
        )

    lower = table1_over_seeds(rows("infidelity_mean", [0.10, 0.11, 0.12], [0.50, 0.52, 0.51]))
    assert lower.iloc[0]["outcome"] == "supported" and lower.iloc[0]["better"] == "lower"
    higher = table1_over_seeds(rows("infidelity_share_mean", [0.50, 0.52, 0.51], [0.10, 0.11, 0.12]))
    assert higher.iloc[0]["outcome"] == "contradicted" and higher.iloc[0]["score"] == "infidelity_share"
    unclear = table1_over_seeds(rows("sensitivity_mean", [0.1, 0.5, 0.3], [0.2, 0.4, 0.3]))
    assert unclear.iloc[0]["outcome"] == "not resolved at this sample size"
    # a score against the true bands is judged pair by pair, against chance (ip_pairs), not here
    assert table1_over_seeds(rows("mass_accuracy_specific", [0.1, 0.1, 0.1], [0.5, 0.5, 0.5])).empty


def test_the_readme_section_is_made_from_the_rows(stored):
    root, cfg = stored
    rows = read_results(cfg.results_path)
    text = readme_ip_results("tiny", cfg)
    t = table1(rows)
    got = t[(t["score"] == "infidelity") & (t["correlation"] == "trainable")].iloc[0]
    cell = numbers_in(line_with(text, "| infidelity | trainable |"))
    assert cell[:2] == [round(got["mean"], 4), round(got["sd_over_seeds"], 4)]
    assert cell[-1] == 0.6813  # the paper's NIST-IR value beside its synthetic stand-in
    f1 = rows.loc[rows["ip_mode"] == "frozen", "micro_f1"]
    metric_row = numbers_in(next(x for x in text.splitlines() if x.startswith("| ") and "(seeds)" in x))
    assert round(f1.mean(), 4) in metric_row and round(f1.std(), 4) in metric_row
    assert "**synthetic**" in text and "**Table 1's columns over seeds**" in text
    assert "**The verdict on the path" in text and "Tally against frozen" in text
    # the pair-level parts come from the detail tables the sweep wrote beside the rows
    from peakmixer.studies.ip_pairs import fidelity_table
    from peakmixer.studies.ipeval import study_details

    pairs, channels = study_details(cfg, rows)
    fid = fidelity_table(pairs).set_index(["ip_mode", "rule"]).loc[("trainable", "argmax")]
    line = line_with(text, "- synth-ir17, trainable, argmax: infidelity share")
    assert numbers_in(line)[:3] == [
        round(fid["share_mean"], 3),
        round(fid["share_ci_low"], 3),
        round(fid["share_ci_high"], 3),
    ]
    assert "**Channel ownership**" in text and len(channels) > 0


def test_the_readme_section_names_the_committed_table_relative_to_the_clone():
    # An absolute path would make the README differ between clones (and CI's check fail).
    text = readme_ip_results()
    assert "From `results/ip_table1.csv`" in text or text.startswith("No finished run")
    assert str(REPO_ROOT) not in text


def test_table1_beside_the_paper_says_reproduced_reversed_or_not_resolved_per_cell():
    from peakmixer.studies.ipeval import beside_paper_text, table1_beside_paper

    def runs(dataset, trainable, frozen):  # three seeds per arm; the paper has trainable lower everywhere
        return [
            {"dataset": dataset, "ip_mode": mode, "infidelity_mean": v + d, "sensitivity_mean": s + d}
            for mode, (v, s) in (("trainable", trainable), ("frozen", frozen))
            for d in (-0.01, 0.0, 0.01)
        ]

    rows = pd.DataFrame(
        runs("synth-ir17", (0.2, 1.0), (0.8, 1.0 + 1e-3))
    )  # infidelity lower; sensitivity tie
    frame = table1_beside_paper(rows).set_index(["score", "dataset"])["beside_paper"]
    assert frame[("infidelity", "synth-ir17")] == "reproduced"
    assert frame[("sensitivity", "synth-ir17")] == "not resolved"
    assert frame[("infidelity", "synth-bac30")] == "no runs"  # no bacteria rows: said, not dropped
    reversed_rows = pd.DataFrame(runs("synth-bac30", (0.9, 2.0), (0.1, 1.0)))
    assert set(
        table1_beside_paper(reversed_rows).set_index("dataset").loc["synth-bac30", "beside_paper"]
    ) == {"reversed"}
    text = beside_paper_text(table1_beside_paper(rows))
    assert len(text) == 4 and text[0].endswith("**reproduced**.") and "no runs yet" in text[1]
    # the pairs each arm leaves out of its means are said beside its cell
    left_out = np.where(rows["ip_mode"] == "trainable", 5.0, 2.0)
    counted = rows.assign(scored_pairs=50.0, degenerate_pairs=left_out)
    line = beside_paper_text(table1_beside_paper(counted))[0]
    assert "pairs left out per run: 5 of 50 trainable, 2 of 50 frozen" in line


def test_the_network_is_held_against_a_linear_model_whose_score_is_stored_once(stored):
    from peakmixer.data.dataset import file_sha256
    from peakmixer.studies.ipeval import against_linear
    from peakmixer.studies.sweep import dataset_path

    root, cfg = stored
    rows = read_results(cfg.results_path)
    table = cfg.results_path.with_name("linear_baselines.csv")
    table.unlink(missing_ok=True)
    assert against_linear(cfg, rows, compute=False).empty  # nothing stored: nothing claimed
    live = against_linear(cfg, rows)
    assert table.exists() and len(pd.read_csv(table)) == 1  # computed once, stored with the data's hash
    stored_row = pd.read_csv(table).iloc[0]
    assert stored_row["data_sha256"] == file_sha256(dataset_path(cfg, cfg.datasets[0]))
    again = against_linear(cfg, rows, compute=False)
    assert again["linear"].tolist() == live["linear"].tolist()
    f1 = rows.loc[rows["ip_mode"] == "trainable", "micro_f1"].mean()
    got = again.set_index("ip_mode").loc["trainable"]
    assert got["network"] == pytest.approx(f1) and got["margin"] == pytest.approx(f1 - stored_row["value"])
    assert got["worth_explaining"] == (f1 - stored_row["value"] >= 0.05)
    ahead = again["worth_explaining"].astype(bool)
    word = "at least 0.05 in every mode" if ahead.all() else ("in NO mode" if not ahead.any() else "only in")
    assert word in against_linear_text(again)


def test_the_linear_check_says_in_which_modes_the_network_is_ahead():
    def table(margins):
        return pd.DataFrame(
            {
                "dataset": "d",
                "ip_mode": list(margins),
                "metric": "accuracy",
                "network": [0.8 + m for m in margins.values()],
                "seeds": 3,
                "linear": 0.8,
                "margin": list(margins.values()),
                "required": 0.05,
                "worth_explaining": [m >= 0.05 for m in margins.values()],
            }
        )

    assert "ahead by at least 0.05 in every mode" in against_linear_text(table({"trainable": 0.06}))
    none = against_linear_text(table({"trainable": 0.0, "frozen": -0.03}))
    assert "ahead by 0.05 in NO mode" in none and "trainable 0.800 (+0.000), frozen 0.770 (-0.030)" in none
    some = against_linear_text(table({"trainable": 0.07, "frozen": 0.01}))
    assert "ahead by 0.05 only in trainable" in some
