"""The results store read back: validation against the code, spot checks, claims, the README section."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import line_with, numbers_in
from scipy import stats

from peakmixer.data.dataset import toy_dataset
from peakmixer.metrics import within
from peakmixer.report import docs as readme
from peakmixer.studies import results_section
from peakmixer.studies.claims import claims, verdict_text, welch_interval
from peakmixer.studies.results import load_study, read_store, rows_of, run_studies, store_report
from peakmixer.studies.spot_check import machine_label, spot_check, spot_check_text
from peakmixer.studies.store import read_results
from peakmixer.studies.sweep import run_sweep
from peakmixer.train.device import cpu_kernels

TRAIN = {
    "model": {"input_length": 128, "hidden": 16, "mlp_hidden": 16, "mlp_layers": 1},
    "optim": {"epochs": 2, "batch_size": 16, "lr": 0.003},
    "precision": "fp32",
}


def write_study(tmp_path, name="toy", **changes) -> dict:
    """A tiny study YAML in tmp_path/studies whose table lies in tmp_path/store."""
    data = tmp_path / "toy.npz"
    if not data.exists():
        toy_dataset(n=64, length=128, n_classes=4, seed=0).save(data)
    study = {
        "datasets": [{"name": "toy-ml", "path": str(data)}],
        "widths": [8],
        "blocks": 2,
        "mixers": ["none", "mlpmixer"],
        "mixer_layers": [1],
        "seeds": [0, 1],
        "train": TRAIN,
        "out_dir": str(tmp_path / "runs"),
        "results": str(tmp_path / "store" / f"{name}.csv"),
    } | changes
    (tmp_path / "studies").mkdir(exist_ok=True)
    (tmp_path / "studies" / f"{name}.yaml").write_text(json.dumps(study))
    return study


def study(tmp_path, name="toy", **kw):
    return load_study(name, studies_dir=tmp_path / "studies", **kw)


@pytest.fixture
def stored(tmp_path):
    """A finished tiny study in its own store."""
    write_study(tmp_path)
    cfg = study(tmp_path)
    run_sweep(cfg, progress=False)
    return cfg


def test_a_run_another_table_holds_counts_only_when_it_is_the_same_run(tmp_path, stored):
    # "same": the study as `toy` under another name (a run two studies need is trained once); "longer":
    # the same run names with another budget: toy's rows are not its rows
    write_study(tmp_path, name="same")
    write_study(tmp_path, name="longer", train={**TRAIN, "optim": {**TRAIN["optim"], "epochs": 3}})
    studies = {name: study(tmp_path, name) for name in ("toy", "same", "longer")}
    view = read_store(studies, allow_missing=True)
    assert len(rows_of(view.rows, studies["same"])) == 4 and rows_of(view.rows, studies["longer"]).empty
    assert sorted(m.split(":")[0] for m in view.missing) == ["longer"] * 4


def test_stored_rows_are_valid_until_the_study_changes(tmp_path, stored):
    view = read_store({"toy": stored})
    assert len(view.rows) == 4 and view.stale.empty and view.missing == []
    assert view.wall_seconds["toy"] > 0 and view.machines["toy"]["cores"] >= 1

    # another model configuration: its rows are left out, with the reason, and the runs are missing
    write_study(tmp_path, train={**TRAIN, "model": {**TRAIN["model"], "hidden": 32}})
    view = read_store({"toy": study(tmp_path)})
    assert view.rows.empty and len(view.stale) == 4 and len(view.missing) == 4
    assert view.stale["why"].str.contains("settings, code or data changed").all()

    # a row of a run the study no longer plans is left out too
    write_study(tmp_path, seeds=[0])
    view = read_store({"toy": study(tmp_path)})
    assert set(view.rows["seed"]) == {0} and set(view.stale["seed"]) == {1}
    assert (view.stale["why"] == "not a run of the study as configured now").all()


def test_a_missing_table_says_how_to_make_it(tmp_path):
    write_study(tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m peakmixer sweep --config params/sweeps/toy.yaml"):
        read_store({"toy": study(tmp_path)})
    # a notebook drawing what exists: no rows, every planned run missing, and the report says why
    view = read_store({"toy": study(tmp_path)}, allow_missing=True)
    assert view.rows.empty and len(view.missing) == 4
    assert "NOTE:" in store_report(view) and "params/sweeps/toy.yaml" in store_report(view)


def test_spot_check_agrees_exactly_and_reports_a_disagreement(tmp_path, stored):
    store = read_store({"toy": stored}).rows
    run_id = "toy-ml/w8x2-mlpmixer1/seed1"
    checks = spot_check({"toy": stored}, store, [run_id], tolerance=0.01, runs_dir=tmp_path, progress=False)
    c = checks.iloc[0]
    assert c["abs_delta"] == 0.0 and c["agrees"] and c["same_config_id"]  # same CPU, same seed: identical
    assert "all agree" in spot_check_text(checks)

    # a stored number that the code does not reproduce is reported, never swallowed
    table = read_results(stored.results_path)
    table.loc[table["run_id"] == run_id, "micro_f1"] += 0.05
    table.to_csv(stored.results_path, index=False)
    store = read_store({"toy": stored}).rows
    checks = spot_check({"toy": stored}, store, [run_id], tolerance=0.01, runs_dir=tmp_path, progress=False)
    assert not checks.iloc[0]["agrees"] and checks.iloc[0]["abs_delta"] == pytest.approx(0.05)
    text = spot_check_text(checks)
    assert "1 DISAGREE" in text and f"{run_id}: micro_f1 stored" in text and "beyond the tolerance" in text
    assert "stored on" not in text and "another kind of CPU" not in text  # made on this machine
    kernels = table.loc[table["run_id"] == run_id, "cpu_kernels"].iloc[0]
    assert kernels == cpu_kernels()  # the row records the instruction sets its CPU computed with
    # a row stored from another kind of CPU: the line names both machines, the summary says how many
    table.loc[table["run_id"] == run_id, "device_name"] = "Other CPU"
    table.to_csv(stored.results_path, index=False)
    store = read_store({"toy": stored}).rows
    checks = spot_check({"toy": stored}, store, [run_id], tolerance=0.01, runs_dir=tmp_path, progress=False)
    text = spot_check_text(checks)
    assert f"; stored on Other CPU [{kernels}] ({table['precision'].iloc[0]}" in text and ", live on " in text
    # the same CPU name with other instruction sets (an EPYC with AVX512 or without) is another machine too,
    # and so is a row older than the sets' column: not known to be this one
    here = machine_label({"device": "cpu", "device_name": "AMD EPYC", "cpu_kernels": "avx2 fma"})
    for other in ("avx2 fma avx512f", ""):
        label = machine_label({"device": "cpu", "device_name": "AMD EPYC", "cpu_kernels": other})
        assert label != here and label.startswith("AMD EPYC [")
    assert machine_label({"device": "cpu", "device_name": "AMD EPYC"}) == "AMD EPYC [sets not recorded]"
    assert machine_label({"device": "cuda", "device_name": "NVIDIA H100", "cpu_kernels": ""}) == "NVIDIA H100"
    assert (
        "1 DISAGREE — the stored numbers are not reproduced here (1 of them stored from another kind" in text
    )


def test_recompute_trains_into_its_own_table_and_leaves_the_store_alone(tmp_path, stored):
    before = stored.results_path.read_bytes()
    private = study(tmp_path, runs_dir=tmp_path / "recomputed", overrides=["seeds=[2]"])
    assert private.results_path == tmp_path / "recomputed" / "toy.csv"
    view = run_studies({"toy": private}, progress=False)
    assert len(view.rows) == 2 and set(view.rows["seed"]) == {2} and view.rows["valid"].all()
    assert (
        len(list((tmp_path / "recomputed" / "runs" / "toy-ml" / "w8x2-none0").glob("seed2-*/best.pt"))) == 1
    )
    assert stored.results_path.read_bytes() == before


def test_updating_the_store_replaces_a_row_the_study_now_plans_otherwise(tmp_path, stored):
    # a table written before the store recorded the CPU's instruction sets: a new text column arrives with the
    # first replaced row
    read_results(stored.results_path).drop(columns="cpu_kernels").to_csv(stored.results_path, index=False)
    old = read_results(stored.results_path).set_index("run_id")
    write_study(tmp_path, train={**TRAIN, "optim": {**TRAIN["optim"], "epochs": 3}})  # a longer budget
    longer = study(tmp_path)
    assert not read_store({"toy": longer}).rows["valid"].any()  # every stored row is stale now
    view = run_studies({"toy": longer}, progress=False)  # what the full profile does
    new = read_results(longer.results_path).set_index("run_id")
    assert sorted(new.index) == sorted(old.index) and (new["epochs_run"] == 3).all()
    assert (new.loc[old.index, "config_id"] != old["config_id"]).all() and view.rows["valid"].all()
    assert (new["cpu_kernels"] == cpu_kernels()).all()
    assert read_store({"toy": longer}).rows["valid"].all()


def hand_table(gap: float, sd: float, width: int = 64, mixers=("none", "mlpmixer")) -> pd.DataFrame:
    rows = []
    for mixer in mixers:
        base = 0.80 + (gap if mixer == "mlpmixer" else 0.0)
        for seed, noise in enumerate((-sd, 0.0, sd)):
            rows.append(
                {
                    "dataset": "synth",
                    "task": "multilabel",
                    "width": width,
                    "mixer": mixer,
                    "mixer_layers": 4 if mixer in ("mlpmixer", "transformer") else 0,
                    "seed": seed,
                    "macs": 2e7 if mixer == "mlp" else 1e7,
                    "micro_f1": base + noise,
                }
            )
    return pd.DataFrame(rows)


def test_welch_interval_matches_scipy():
    a, b = np.array([0.91, 0.93, 0.92, 0.95]), np.array([0.90, 0.89, 0.93])
    diff, lo, hi = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean()) and (lo, hi) == pytest.approx((ci.low, ci.high))
    assert np.isnan(welch_interval(a, b[:1])[1])  # one seed: no interval


def test_claims_follow_the_table():
    classes = {"synth": 17}
    judged = {
        (gap, sd): claims(hand_table(gap, sd), classes)[["outcome", "reason"]].iloc[0].tolist()
        for gap, sd in ((0.05, 0.005), (-0.05, 0.005), (0.005, 0.02), (0.0, 0.0), (0.05, 0.0))
    }
    assert judged == {
        (0.05, 0.005): ["supported", ""],
        (-0.05, 0.005): ["contradicted", ""],
        (0.005, 0.02): ["not resolved at this sample size", ""],
        (0.0, 0.0): ["not resolved at this sample size", "every run scored the same"],  # a tie: no winner
        # each arm's seeds agree exactly but the arms differ: a t interval is undefined, not a certainty
        (0.05, 0.0): ["not resolved at this sample size", "no spread within either arm: no t interval"],
    }
    one = hand_table(0.05, 0.005)
    assert claims(one[one["seed"] == 0], classes)["reason"].iloc[0] == "1 seed: no interval"
    # below 2K pooled features the comparison is marked confounded and reported apart; the test is named
    # whether or not the data are synthetic, and the tally counts the three outcomes only
    narrow = claims(hand_table(0.05, 0.005, width=32), classes)
    assert not narrow["fair"].iloc[0]
    tied = claims(hand_table(0.0, 0.0), classes)
    text = verdict_text(
        pd.concat([claims(hand_table(0.05, 0.005), classes), narrow, tied]), synthetic=["synth"]
    )
    assert text.index("Widths with C >= 2K") < text.index("Confounded widths") and "SYNTHETIC" in text
    assert "Welch t interval" in verdict_text(narrow) and "SYNTHETIC" not in verdict_text(narrow)
    assert text.splitlines()[-1] == (
        "Tally at fair widths: supported 1, not resolved at this sample size 1 (of 2 claim tests)."
    )


def test_claims_use_converged_runs_and_test_the_mlp_claim_at_lower_macs():
    classes = {"synth": 17}
    table = hand_table(0.05, 0.005, mixers=("none", "mlpmixer"))
    table["run_id"] = [f"synth/{m}/seed{s}" for m, s in zip(table["mixer"], table["seed"], strict=True)]
    table["ended_by"] = "early_stop"
    table.loc[table["run_id"] == "synth/none/seed2", "ended_by"] = "epoch_cap"
    (c,) = claims(table, classes).itertuples(index=False)
    assert (c.n_mlpmixer, c.n_other, c.left_out) == (3, 2, "synth/none/seed2")
    assert c.other == pytest.approx(0.80 - 0.0025)  # the mean of the two converged seeds
    assert "left out, not converged: synth/none/seed2" in verdict_text(claims(table, classes))
    table["ended_by"] = table["mixer"].map({"none": "epoch_cap", "mlpmixer": "early_stop"})  # none converged
    (c,) = claims(table, classes).itertuples(index=False)
    assert (c.outcome, c.reason, c.n_other) == (
        "not resolved at this sample size",
        "no converged run in the other arm",
        0,
    )
    assert "nan" not in verdict_text(claims(table, classes))
    # The MLP claim "at lower MACs" across widths: each MLPMixer against the narrowest MLP with at least its
    # MACs. Here the MLP is cheaper at either width, so only the MLPMixer at 32 has a costlier MLP (at 64).
    mlp = pd.concat(
        [hand_table(0.05, 0.005, width=w, mixers=("mlp", "mlpmixer")) for w in (32, 64)], ignore_index=True
    )
    macs = {("mlp", 32): 1.0e7, ("mlpmixer", 32): 1.1e7, ("mlp", 64): 4.0e7, ("mlpmixer", 64): 4.2e7}
    mlp["macs"] = [macs[m, w] for m, w in zip(mlp["mixer"], mlp["width"], strict=True)]
    mlp["params"] = 1e6
    got = claims(mlp, {"synth": 8})
    pareto = got[got["claim"] == "MLPMixer beats an MLP mixer of at least its MACs"]
    assert pareto[["width", "other_width", "gmacs_mlpmixer", "gmacs_other"]].values.tolist() == [
        [32, 64, 0.011, 0.04]
    ]
    same = got[got["claim"] == "MLPMixer beats the MLP mixer at the same width"]
    assert same["width"].tolist() == [32, 64] and (same["other_width"] == same["width"]).all()
    assert "(the MLP at width 64)" in verdict_text(pareto)
    # An MLP that costs more at the MLPMixer's own width: the same-width test is that test, not run twice;
    # the MLPMixer at 32 still meets the wider MLP, the one at 64 has no wider MLP.
    mlp.loc[mlp["mixer"] == "mlp", "macs"] *= 10
    got = claims(mlp, {"synth": 8})
    pareto = got[got["claim"] == "MLPMixer beats an MLP mixer of at least its MACs"]
    assert pareto[["width", "other_width"]].values.tolist() == [[32, 64]] and len(got) == 3


def test_the_readme_shows_panel_d_and_sets_its_0_layer_runs_against_the_panels_no_mixer(tmp_path, stored):
    # the grid study holds MLPMixer runs only: its no-mixer partner comes from the panels' study
    write_study(tmp_path, name="grid", mixers=["mlpmixer"], mixer_layers=[0, 1], seeds=[0])
    studies = {"toy": stored, "grid": study(tmp_path, "grid")}
    run_sweep(studies["grid"], progress=False)
    text = results_section.readme_results(studies, grid_study="grid", mixer_layers=1)
    rows = read_store(studies).rows.set_index("run_id")["micro_f1"]
    zero, one, none = (rows[f"toy-ml/w8x2-{m}/seed0"] for m in ("mlpmixer0", "mlpmixer1", "none0"))
    lines = text.splitlines()
    grid_row = lines[lines.index("| width | 0 layers | 1 layer |") + 2]  # under the header and its rule
    assert grid_row.startswith("| 8 |") and numbers_in(grid_row) == [round(zero, 4), round(one, 4)]
    neck = numbers_in(line_with(text, "| toy-ml | 8 | 4 | 8 / "))
    assert neck[-3:] == [round(none, 4), round(zero, 4), round(none - zero, 4)]


@pytest.mark.slow
def test_the_readme_results_agree_with_the_store():
    # `python -m peakmixer results --readme` writes this section; the store changes only through sweeps
    for section, text in readme.readme_sections().items():
        assert readme.readme_section(section=section) == text, section


def test_a_spot_check_does_not_retrain_a_bf16_row_on_a_cpu_that_only_emulates_bf16(
    tmp_path, stored, monkeypatch
):
    import peakmixer.train.device

    store = read_store({"toy": stored}).rows.copy()
    run_id = "toy-ml/w8x2-none0/seed0"
    store.loc[store["run_id"] == run_id, "precision"] = "bf16"
    monkeypatch.setattr(peakmixer.train.device, "cpu_has_native_bf16", lambda *a, **k: False)
    checks = spot_check({"toy": stored}, store, [run_id], tolerance=0.01, runs_dir=tmp_path, progress=False)
    assert not checks["checked"].any()
    assert f"{run_id}: NOT CHECKED, stored in bf16, which this CPU only emulates" in spot_check_text(checks)


def test_the_spot_check_tolerance_widens_to_the_seed_spread_and_two_workers_agree_with_one(tmp_path, stored):
    store = read_store({"toy": stored}).rows
    ids = ["toy-ml/w8x2-none0/seed0", "toy-ml/w8x2-mlpmixer1/seed1"]
    one = spot_check(
        {"toy": stored}, store, ids, tolerance=0.0, seed_sds=3.0, runs_dir=tmp_path, progress=False
    )
    two = spot_check(
        {"toy": stored}, store, ids, tolerance=0.0, seed_sds=3.0, runs_dir=tmp_path, progress=False, workers=2
    )
    pd.testing.assert_frame_equal(one.drop(columns="live_seconds"), two.drop(columns="live_seconds"))
    for c in one.itertuples(index=False):
        model = store[store["run_id"].str.rsplit("/", n=1).str[0] == c.run_id.rsplit("/", 1)[0]]
        assert c.tolerance == pytest.approx(3.0 * model["micro_f1"].std(ddof=1))
        assert c.abs_delta == 0.0 and c.agrees  # the same machine: identical


def test_a_difference_of_as_many_spectra_as_the_tolerance_agrees_and_one_more_does_not():
    # three seeds at 120, 121, 122 of 150 spectra right: 3 sds is 3 spectra; a live 117 against a stored 120
    sd = pd.Series([120 / 150, 121 / 150, 122 / 150]).std(ddof=1)
    assert within(117 / 150 - 120 / 150, 3 * sd)  # in floats: 0.020000000000000018 > 0.019999999999999962
    assert not within(116 / 150 - 120 / 150, 3 * sd)
    assert within(0.0, 0.0) and not within(1e-6, 0.0)


def test_a_spot_check_of_a_run_without_a_stored_row_says_so(tmp_path, stored):
    store = read_store({"toy": stored}).rows
    store = store[store["run_id"] != "toy-ml/w8x2-none0/seed0"]
    checks = spot_check(
        {"toy": stored}, store, ["toy-ml/w8x2-none0/seed0"], tolerance=0.01, runs_dir=tmp_path, progress=False
    )
    assert not checks["checked"].any()
    assert "toy-ml/w8x2-none0/seed0: NOT CHECKED" in spot_check_text(checks)
