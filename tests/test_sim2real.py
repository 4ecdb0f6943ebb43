"""Sim-to-real: synthetic-trained models scored on real IR spectra, its scoring, the textbook rule, the
store's tables and the README section made from them."""

import itertools
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import line_with, numbers_in

from peakmixer.commands.sim2real import write_outputs
from peakmixer.config import ConfigError
from peakmixer.data.dataset import DatasetError, SpectraDataset, file_sha256, named_axis
from peakmixer.data.labels import NIST17_NAMES
from peakmixer.studies.sim2real import (
    RealSet,
    Sim2RealConfig,
    import_real,
    label_set,
    read_predictions,
    run_sim2real,
    store_result,
)
from peakmixer.studies.sim2real_scoring import baselines, fit_thresholds, ranking, score, threshold_ceiling
from peakmixer.studies.sim2real_summary import (
    bootstrap_micro_f1,
    label_free_errors,
    machines,
    readme_sim2real,
    summary,
    verdict,
    weak_labels,
)
from peakmixer.studies.textbook_rule import marker_windows, textbook_rule, textbook_scores
from peakmixer.synth import benchmarks
from peakmixer.train.identity import machine

IR = {name: k for k, name in enumerate(NIST17_NAMES)}


def readme_table(table: pd.DataFrame, tmp_path) -> str:
    store = tmp_path / "store" / "sim2real.csv"
    store.parent.mkdir(exist_ok=True)
    table.to_csv(store, index=False)
    return readme_sim2real(store)


def test_weak_labels_average_recall_over_seeds_and_name_a_missing_table():
    s = pd.DataFrame({"real_set": ["r", "r"], "scorer": ["model"] * 2, "version": ["3", "4"],
                      "n_synthetic": 4000, "micro_f1_mean": [0.5, 0.6]})  # fmt: skip
    rows = [  # version 4 is the best; two seeds
        ("4", 0, "a", 0.4, 6), ("4", 1, "a", 0.7, 6),  # mean 0.55: fine
        ("4", 0, "b", 0.2, 5), ("4", 1, "b", 0.6, 5),  # mean 0.40: weak
        ("4", 0, "c", 0.0, 4), ("4", 1, "c", 0.0, 4),  # too few positives to count
        ("3", 0, "a", 0.0, 6),  # not the best version
    ]  # fmt: skip
    labels = pd.DataFrame(rows, columns=["version", "seed", "label", "recall", "support"])
    labels["real_set"], labels["scorer"], labels["n_synthetic"] = "r", "model", 4000
    (line,) = weak_labels(s, labels)
    assert line == (
        "- r, synth-ir17 v4: recall below 0.5 on 1 of the 2 labels with at least 5 positives "
        "(recall, positives): b 0.40 (5)."
    )
    labels["version"] = labels["version"].astype(int)  # read back without string dtypes: still found
    assert weak_labels(s, labels) == [line]
    assert "not in the per-label table" in weak_labels(s, labels[labels["version"] == 3])[0]
    labels.loc[labels["label"] == "b", "recall"] = 0.9
    assert weak_labels(s, labels) == [
        "- r, synth-ir17 v4: recall >= 0.5 on every label with at least 5 positives."
    ]


def _predictions(truth: np.ndarray, runs: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    names = [f"g{k}" for k in range(truth.shape[1])]
    rows = [
        {"version": version, "n_synthetic": 4000, "seed": seed, "real_set": "r", "spectrum": i,
         "truth": label_set(truth[i], names), "predicted": label_set(pred[i], names)}
        for (version, seed), pred in runs.items()
        for i in range(len(truth))
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_bootstrap_resamples_spectra_alike_for_every_model_and_centres_on_the_score():
    rng = np.random.default_rng(0)
    truth = rng.random((120, 5)) < 0.2
    truth[:, 0] = np.arange(120) < 60  # exactly half the set: the majority baseline predicts it
    truth[:, 1] = np.arange(120) % 10 < 7  # 70%: predicted too
    noisy = truth ^ (rng.random(truth.shape) < 0.2)
    other = truth ^ (rng.random(truth.shape) < 0.2)  # a second seed: its own errors
    worse = truth ^ (rng.random(truth.shape) < 0.4)
    table = _predictions(truth, {("2", 0): noisy, ("2", 1): other, ("3", 0): worse, ("4", 0): truth})
    boot = bootstrap_micro_f1(table, "r", draws=500)
    assert set(boot) == {"2", "3", "4", "majority"} and all(len(b) == 500 for b in boot.values())
    assert (boot["4"] == 1.0).all()  # a perfect model is perfect on every resample
    names = [f"g{k}" for k in range(5)]
    for version, pred in (("3", worse), ("4", truth)):
        full = score(truth, pred, names)["micro_f1"]
        lo, hi = np.percentile(boot[version], [2.5, 97.5])
        assert lo <= full <= hi and hi - lo < 0.2 and abs(np.median(boot[version]) - full) < 0.02
    # A version's score on a resample is the mean over its seeds (on that same resample).
    seed0, seed1 = (bootstrap_micro_f1(_predictions(truth, {("2", 0): p}), "r", draws=500)["2"] for p in
                    (noisy, other))  # fmt: skip
    assert np.allclose(boot["2"], (seed0 + seed1) / 2) and not np.allclose(seed0, seed1)
    # The majority baseline predicts the labels of at least half of the whole set (g0 at 50%, g1 at 70%).
    majority = baselines(truth, names)["majority"]["micro_f1"]
    assert majority > 0.5 and np.median(boot["majority"]) == pytest.approx(majority, abs=0.02)
    # Paired: the same resamples for every model, so a model against a copy of itself differs by 0 on every
    # resample.
    twice = _predictions(truth, {("2", 0): noisy, ("5", 0): noisy})
    again = bootstrap_micro_f1(twice, "r", draws=500)
    assert (again["2"] == again["5"]).all() and (again["2"] == seed0).all()


def test_labels_named_on_spectra_without_any_group_are_counted_per_generator():
    truth = np.array([[0, 0], [0, 0], [1, 0]], bool)  # two spectra carry no label
    named = {("4", 0): np.array([[1, 1], [1, 0], [1, 0]], bool),
             ("4", 1): np.array([[0, 1], [0, 0], [1, 1]], bool),
             ("5", 0): np.zeros((3, 2), bool)}  # fmt: skip
    (line,) = label_free_errors(_predictions(truth, named))
    # v4: 3 labels on the two label-free spectra with seed 0, 1 with seed 1; the third spectrum does not count
    assert line == (
        "- r: labels named on its 2 spectra that carry none of the groups (every one wrong), mean (range) "
        "over 2 seeds: 2.0 (1-3) with v4, 0.0 (0-0) with v5."
    )
    assert label_free_errors(_predictions(~truth, named)) == []


def test_the_bootstrap_refuses_predictions_it_cannot_pair():
    truth = np.eye(4, 3, dtype=bool)
    table = _predictions(truth, {("2", 0): truth, ("3", 0): truth})
    shifted = table.copy()
    shifted.loc[(shifted["version"] == "3") & (shifted["spectrum"] == 1), "spectrum"] = 0  # 0 twice, no 1
    relabelled = table.copy()
    relabelled.loc[(relabelled["version"] == "3") & (relabelled["spectrum"] == 2), "truth"] = ""
    for bad in (shifted, relabelled, table.drop(index=7)):
        with pytest.raises(DatasetError, match=r"r: v3 seed 0 does not hold spectra 0\.\.3 once each"):
            bootstrap_micro_f1(bad, "r")
    with pytest.raises(DatasetError, match="no spectrum of the real set 'nist'"):
        bootstrap_micro_f1(table, "nist")
    with pytest.raises(ConfigError, match="hold ';'"):
        label_set(np.ones(2), ["a;b", "c"])


def test_the_verdict_gives_each_comparison_its_interval_and_says_when_it_includes_0():
    rng = np.random.default_rng(1)
    truth = rng.random((80, 4)) < 0.5
    good = truth ^ (rng.random(truth.shape) < 0.1)
    close = truth ^ (rng.random(truth.shape) < 0.11)
    names = [f"g{k}" for k in range(4)]
    f2, f3 = (score(truth, p, names)["micro_f1"] for p in (close, good))
    fm = baselines(truth, names)["majority"]["micro_f1"]
    table = pd.DataFrame({"real_set": "r", "scorer": ["model", "model", "majority"],
                          "version": ["2", "3", "2"], "n_synthetic": 4000, "seed": 0, "spectra": 80,
                          "micro_f1": [f2, f3, fm]})  # fmt: skip
    lines = verdict(summary(table), _predictions(truth, {("2", 0): close, ("3", 0): good}))
    assert lines[0].startswith("- r:") and "synth-ir17 v3" in lines[0]
    # the best score, the baseline's and the margin, each stated; the margin's interval lies above 0
    assert {round(f3, 3), round(fm, 3), round(f3 - fm, 3)} <= set(numbers_in(lines[0]))
    margin = numbers_in(lines[0])[numbers_in(lines[0]).index(round(f3 - fm, 3)) + 1]
    assert margin > 0
    assert lines[0].count("95% interval") == 3 and "paired" in lines[1]
    # v3 against v2: two nearly equal models, so the paired interval includes 0, and the line says so (and
    # only there: the margin over the baseline is clear).
    assert lines[0].endswith(", which includes 0).") and lines[0].count("includes 0") == 1
    # From three versions on, the newest is also set against the one before it.
    three = pd.concat([table, table[table["version"] == "3"].assign(version="4")])
    lines = verdict(summary(three), _predictions(truth, {("2", 0): close, ("3", 0): good, ("4", 0): good}))
    assert lines[0].endswith("; v4 against v3: +0.000 (95% interval +0.000 to +0.000, which includes 0).")
    # Without the predictions: the same sentence without intervals.
    assert verdict(summary(table)) == [
        f"- r: best micro-F1 {f3:.3f} (synth-ir17 v3), above the majority baseline ({fm:.3f}); "
        f"v3 against v2: {f3 - f2:+.3f}."
    ]


def test_thresholds_are_the_f1_best_on_the_data_given():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.3, 0.9], [0.35, 0.8], [0.1, 0.7], [0.2, 0.6]])
    t = fit_thresholds(y, probs)
    assert 0.2 < t[0] <= 0.3  # separates 0.3/0.35 from 0.1/0.2
    assert t[1] == 0.5  # no positive: the default


def test_the_threshold_ceiling_is_the_best_micro_f1_any_per_label_thresholds_reach():
    names = ["a", "b", "c"]
    for seed in range(4):
        rng = np.random.default_rng(seed)
        y = (rng.random((8, 3)) < 0.4).astype(np.uint8)
        y[0] = 1  # every label present
        probs = np.round(0.3 * y + 0.7 * rng.random((8, 3)), 1)  # ties, as sigmoid outputs may have
        cuts = [np.append(np.unique(probs[:, k]), np.inf) for k in range(3)]  # each label's scores, "never"
        brute = max(score(y, probs >= np.array(c), names)["micro_f1"] for c in itertools.product(*cuts))
        ceiling = threshold_ceiling(y, probs)
        assert ceiling == pytest.approx(brute, abs=1e-12)
        # No higher than the best of every choice, so no lower than any one: the F1-best grid thresholds.
        assert ceiling >= score(y, probs >= fit_thresholds(y, probs), names)["micro_f1"] - 1e-12
    assert threshold_ceiling(y, 0.1 + 0.8 * y) == 1.0  # scores that rank perfectly
    # One score for all: the best label set to name for every spectrum. Here {a} (3 of 4 right, one missed:
    # 6 / 8), not {a, b} (8 / 12) nor nothing.
    y = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
    assert threshold_ceiling(y, np.zeros((4, 2))) == pytest.approx(0.75)


def test_baselines_use_the_label_shares_of_the_set():
    y = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]])
    b = baselines(y, ["a", "b", "c"], draws=400)
    assert (
        b["majority"]["per_label"]["a"]["recall"] == 1.0 and b["majority"]["per_label"]["b"]["recall"] == 0.0
    )
    # Random guessing at each label's share: recall of a label is about its share.
    assert abs(b["prevalence"]["per_label"]["a"]["recall"] - 0.75) < 0.06


def test_ranking_is_the_per_label_roc_auc_where_a_set_has_enough_of_both_classes():
    y = np.zeros((20, 3), dtype=np.uint8)
    y[:10, 0] = 1  # 10 with, 10 without
    y[:10, 1] = 1
    y[:4, 2] = 1  # 4 positives: too few to rank
    probs = np.zeros((20, 3))
    probs[:, 0] = np.linspace(1, 0, 20)  # every positive above every negative
    probs[:, 1] = np.linspace(0, 1, 20)  # every positive below
    probs[:, 2] = np.linspace(1, 0, 20)
    auc = ranking(y, probs, ["up", "down", "rare"])
    assert auc["up"] == 1.0 and auc["down"] == 0.0 and np.isnan(auc["rare"])
    probs[:, 0] = 0.3  # one score for all: ties count one half
    assert ranking(y, probs, ["up", "down", "rare"])["up"] == 0.5


def test_the_textbook_rule_scores_the_height_where_the_band_table_puts_each_group():
    # Every marker names bands of its own group in the band table; a group with two needs both.
    assert marker_windows("nitriles") == [[(2210, 2260)]]
    assert marker_windows("aromatics") == [[(3000, 3100)], [(1470, 1520), (1585, 1615)]]
    assert all(marker_windows(label) for label in NIST17_NAMES if label != "alkyl halides")
    axis = named_axis("ir")

    def line(centre, height=1.0):  # centred on a grid point, so that its sampled top is `height`
        on_grid = axis[np.argmin(np.abs(axis - centre))]
        return height * np.exp(-0.5 * ((axis - on_grid) / 6.0) ** 2)

    # 6 nitriles (a C#N band, weaker than their strongest), 6 without it; 2 aromatics with the aryl C-H
    # band only, so they lack the ring band the label also needs.
    X = np.stack(
        [line(1000) + line(2235, 0.2 + 0.1 * i) for i in range(6)]
        + [line(1000) + line(2400, 0.9) for _ in range(6)]
        + [line(1000) + line(3050, 0.8) for _ in range(2)]
    ).astype(np.float32)
    y = np.zeros((len(X), len(NIST17_NAMES)), dtype=np.uint8)
    y[:6, IR["nitriles"]] = 1
    y[12:, IR["aromatics"]] = 1
    ds = SpectraDataset(X, axis, y, "multilabel", list(NIST17_NAMES), [str(i) for i in range(len(X))])
    scores = textbook_scores(ds)
    assert scores["nitriles"][:6] == pytest.approx(0.2 + 0.1 * np.arange(6), abs=1e-3)
    assert np.abs(scores["nitriles"][6:]).max() < 1e-3  # a band outside the range does not count
    assert np.abs(scores["aromatics"][12:]).max() < 1e-3  # the ring band is missing: the least is 0
    t = textbook_rule(ds, "made").set_index("label")
    assert t.loc["nitriles", "auc"] == 1.0 and t.loc["nitriles", "positives"] == 6
    assert np.isnan(t.loc["aromatics", "auc"])  # 2 positives: too few to rank
    assert t.loc["aromatics", "bands_cm1"] == "3000-3100 and 1470-1520/1585-1615"
    assert "alkyl halides" not in t.index and (t["set"] == "made").all() and (t["spectra"] == 14).all()


def test_the_textbook_rule_names_a_wrong_marker_and_ranks_nothing_it_cannot_score(monkeypatch):
    from peakmixer.studies import textbook_rule as rule

    monkeypatch.setitem(rule.MARKERS, "aldehydes", (("C-H stretch (Fermi doublet)", "C-H strech"),))
    with pytest.raises(
        ConfigError, match=r"MARKERS\['aldehydes'\]: \['C-H strech'\] are not aldehydes bands"
    ):
        marker_windows("aldehydes")
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    y = (rng.random((20, 2)) < 0.5).astype(np.uint8)
    other = SpectraDataset(rng.random((20, 50)), np.linspace(400, 4000, 50), y, "multilabel", ["a", "b"],
                           [str(i) for i in range(20)])  # fmt: skip
    assert textbook_rule(other, "other").empty  # no label it has markers for
    # An axis that stops at 1800 cm-1 misses every stretch range: those labels are not ranked.
    short = np.linspace(400, 1800, 200)
    y = np.zeros((20, len(NIST17_NAMES)), dtype=np.uint8)
    y[:10, [IR["nitriles"], IR["ketones"]]] = 1
    ds = SpectraDataset(rng.random((20, 200)), short, y, "multilabel", list(NIST17_NAMES),
                        [str(i) for i in range(20)])  # fmt: skip
    t = textbook_rule(ds, "short").set_index("label")["auc"]
    assert np.isnan(t["nitriles"]) and np.isfinite(t["ketones"])


def _textbook_inputs(nist_auc):
    """A summary, per-label table and textbook table as the store holds them: two versions at the main size
    (v8 better on "r"), v9 at a larger size, two seeds; the rule on "r" and on v9's validation split."""
    rows = [
        {"real_set": "r", "scorer": "model", "version": v, "n_synthetic": n, "seed": seed, "spectra": 30,
         "micro_f1": f1}
        for v, n, f1 in (("7", 4000, 0.5), ("8", 4000, 0.6), ("9", 20000, 0.9)) for seed in (0, 1)
    ]  # fmt: skip
    s = summary(pd.DataFrame(rows))
    labels = pd.DataFrame(
        [{"real_set": "r", "scorer": "model", "version": v, "n_synthetic": n, "seed": seed, "label": lab,
          "auc": auc + 0.1 * seed}
         for v, n, auc in (("7", 4000, 0.2), ("8", 4000, 0.6), ("9", 20000, 0.3))
         for seed in (0, 1) for lab in ("methyl", "ether")]
    )  # fmt: skip
    bands = pd.DataFrame(
        {"set": ["r", "r", "synth-ir17 v8 validation (n = 4000)", "synth-ir17 v8 validation (n = 4000)"],
         "kind": ["real", "real", "synthetic", "synthetic"], "label": ["methyl", "ether"] * 2,
         "bands_cm1": ["2865-2885/2950-2975", "1070-1150/1200-1275"] * 2,
         "auc": [nist_auc, 0.53, 0.75, 0.67]}
    )  # fmt: skip
    return bands, s, labels


def test_the_readme_sets_the_textbook_rule_beside_the_best_model_at_the_main_size():
    from peakmixer.studies.sim2real_summary import readme_textbook

    lines = readme_textbook(*_textbook_inputs(0.97))
    header = "| label | bands (cm-1) | r: rule | r: model v8 | synth-ir17 v8 validation: rule |"
    assert header in lines
    # The model column: v8 (the best micro-F1 at the main size, not v9 at n = 20000), mean over its seeds.
    assert "| methyl | 2865-2885/2950-2975 | 0.97 | 0.65 | 0.75 |" in lines
    assert "| mean (labels) | | 0.75 (2) | 0.65 (2) | 0.71 (2) |" in lines
    # One-sided: a label ranked at or below 0.55 is named, whatever side of 0.5 it is on.
    (poor,) = [x for x in lines if x.startswith("- r:")]
    assert "ranks 1 of its 2 ranked labels at ROC-AUC 0.55 or below (ether 0.53)" in poor
    bands, s, labels = _textbook_inputs(0.45)
    assert "(methyl 0.45, ether 0.53)" in readme_textbook(bands, s, labels)[-1]
    # A real set the rule ranks nothing on, or no column at all: no crash.
    bands["auc"] = np.where(bands["kind"] == "real", np.nan, bands["auc"])
    lines = readme_textbook(bands, s, None)
    assert "| label | bands (cm-1) | r: rule | synth-ir17 v8 validation: rule |" in lines
    assert not any(x.startswith("- r:") for x in lines)
    assert readme_textbook(bands[bands["kind"] == "real"].assign(set="elsewhere"), s, labels) == []


def test_measured_gas_spectra_show_methyl_and_aromatic_bands_where_the_tables_put_them(shared_data):
    ds, _ = import_real(RealSet("nist-gas", shared_data / "nist_ir_jcamp"))
    auc = textbook_rule(ds, "nist-gas").set_index("label")["auc"]
    assert auc["methyl"] > 0.9 and auc["aromatics"] > 0.85


def test_real_sets_name_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="expected NAME=PATH"):
        RealSet.parse("no-equals-sign")
    with pytest.raises(FileNotFoundError, match="nist: .*missing"):
        import_real(RealSet("nist", tmp_path / "missing"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """sim2real on a tiny budget (versions 2 and 3, one seed, one epoch) on both real fixture sets."""
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data fixtures unavailable")
    root = tmp_path_factory.mktemp("sim2real")
    cfg = Sim2RealConfig(
        real=[
            RealSet("nist-gas", SHARED_DATA / "nist_ir_jcamp"),
            RealSet("multimodal", SHARED_DATA / "ibm_ir_example" / "example_data_1.parquet"),
        ],
        versions=["2", "3"],
        seeds=[0],
        n=300,
        overrides=["optim.epochs=1", "model.width=8"],
        data_dir=root / "data",
        runs_dir=root / "runs",
    )
    return cfg, run_sim2real(cfg, progress=False)


def test_sim2real_on_a_tiny_budget_writes_scores_predictions_and_a_figure(tiny_run, tmp_path):
    cfg, result = tiny_run
    t = result.table
    assert set(t["scorer"]) == {"model", "majority", "prevalence"} and set(t["version"]) == {"2", "3"}
    assert t[["micro_f1", "macro_f1", "emr"]].apply(lambda c: c.between(0, 1).all()).all()
    assert set(t["spectra"]) == {50, 100}
    # Ranking: the model's mean ROC-AUC is the mean of its per-label ones (defined labels only); the baselines
    # give no scores, so none.
    assert t.loc[t["scorer"] != "model", "mean_auc"].isna().all()
    for row in t[t["scorer"] == "model"].itertuples():
        mine = result.labels[
            (result.labels["version"] == row.version) & (result.labels["real_set"] == row.real_set)
            & (result.labels["scorer"] == "model")
        ]  # fmt: skip
        assert mine["auc"].notna().sum() >= 3 and mine["auc"].dropna().between(0, 1).all()
        assert row.mean_auc == pytest.approx(mine["auc"].mean())
    # The majority baseline predicts the labels shared by half the set: on the drug-like set that includes
    # alkane, methyl and aromatics, so its recall there is 1.
    maj = result.labels[(result.labels["scorer"] == "majority") & (result.labels["real_set"] == "multimodal")]
    assert (maj.set_index("label").loc[["alkane", "aromatics"], "recall"] == 1.0).all()
    # Every per-label row names the run it scored, as the table's row for the same version and seed does.
    ids = t.set_index(["version", "seed", "real_set", "scorer"])["config_id"]
    keys = ["version", "seed", "real_set", "scorer"]
    assert (
        result.labels["config_id"].to_numpy() == ids.loc[pd.MultiIndex.from_frame(result.labels[keys])]
    ).all()
    # The predictions table holds what was scored: every real spectrum once per model, and the scores
    # recomputed from its label sets are the table's.
    pr = result.predictions
    assert len(pr) == 2 * (50 + 100) and set(pr.groupby(["version", "real_set"]).size()) == {50, 100}
    for (version, real_set), part in pr.groupby(["version", "real_set"]):
        y, pred = (np.array([[n in set(x.split(";")) for n in NIST17_NAMES] for x in part[c]]) for c in
                   ("truth", "predicted"))  # fmt: skip
        row = t[(t["version"] == version) & (t["real_set"] == real_set) & (t["scorer"] == "model")].iloc[0]
        assert score(y, pred, NIST17_NAMES)["micro_f1"] == pytest.approx(row["micro_f1"], abs=1e-12)
        assert (part["config_id"] == row["config_id"]).all()
    paths = write_outputs(result, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"sim2real.csv", "sim2real.json", "sim2real_figure.png", "sim2real_labels.csv"} <= names
    assert "sim2real_predictions.csv" in names and "sim2real_bands.csv" in names
    # The textbook rule: on each real set and each version's validation split, once per set.
    assert result.bands.groupby("set").size().to_dict() == {
        s: 16 for s in ["nist-gas", "multimodal", *(f"synth-ir17 v{v} validation (n = 300)" for v in "23")]
    }
    # Read back (a synthetic-trained model's table, marked so), a spectrum with no label (the NIST set has a
    # few) keeps an empty set, not NaN, and the ids stay text.
    back = read_predictions(tmp_path / "out" / "sim2real_predictions.csv")
    assert back.pop("synthetic").all() and back.equals(pr.astype({"id": str})) and (back["truth"] == "").any()
    side = json.loads((tmp_path / "out" / "sim2real.json").read_text())
    assert side["synthetic_data"] and "synth-ir17-v3" in side["data_sha256"]
    # A second call reuses the finished runs (same identity) instead of training again.
    (best,) = (cfg.runs_dir / "v3_n300").glob("seed0-*/best.pt")
    before = best.stat().st_mtime_ns
    run_sim2real(cfg, progress=False)
    assert best.stat().st_mtime_ns == before


def test_the_readme_section_of_a_tiny_sim2real_run_shows_its_scores_and_weak_labels(tiny_run, tmp_path):
    _, result = tiny_run
    t = result.table
    store = tmp_path / "sim2real.csv"
    t.to_csv(store, index=False)
    text = readme_sim2real(store)
    got = t[(t["real_set"] == "nist-gas") & (t["scorer"] == "model") & (t["version"] == "3")].iloc[0]
    assert f"| nist-gas (50) | model | synth-ir17 v3 | {got['micro_f1']:.3f} |" in text
    cells = [got[m] for m in ("macro_f1", "emr", "mean_auc", "ceiling_micro_f1", "synthetic_test_micro_f1")]
    assert " | ".join(f"{c:.3f}" for c in cells) in text
    # A baseline ranks nothing and has no synthetic score of its own; the majority's ceiling is the best fixed
    # label set's, the prevalence scorer's none.
    rows = [x.split(" | ") for x in text.splitlines() if "| majority |" in x or "| prevalence |" in x]
    assert len(rows) == 4 and all(r[2] == "–" and r[6] == "–" and r[8] == "– |" for r in rows)
    assert all((r[7] == "–") == (r[1] == "prevalence") for r in rows)
    # Beside the table, the per-label store names every weak label (>= 5 positives, recall < 0.5) of the
    # best generator per set, with its recall and ROC-AUC: recomputed here from the per-label rows.
    labels = result.labels
    labels.to_csv(tmp_path / "sim2real_labels.csv", index=False)
    text = readme_sim2real(store)
    model = t[(t["scorer"] == "model") & (t["real_set"] == "multimodal")]
    best = model.set_index("version")["micro_f1"].idxmax()
    mine = labels[
        (labels["scorer"] == "model") & (labels["real_set"] == "multimodal") & (labels["version"] == best)
    ]
    weak = mine[(mine["support"] >= 5) & (mine["recall"] < 0.5)]
    line = next(x for x in text.splitlines() if x.startswith(f"- multimodal, synth-ir17 v{best}: recall"))
    auc = [f"; ROC-AUC {r.auc:.2f})" if np.isfinite(r.auc) else ")" for r in weak.itertuples()]
    shown = [f"{r.label} {r.recall:.2f} ({r.support}{a}" for r, a in zip(weak.itertuples(), auc, strict=True)]
    assert all(x in line for x in shown)
    assert line.count("(") == (len(weak) + 1 if len(weak) else 0)
    assert pd.read_csv(store)["scorer"].tolist() == t["scorer"].tolist()
    # With the predictions beside the store, the verdict gives its intervals over the real spectra.
    assert "95% interval" not in text
    result.predictions.to_csv(tmp_path / "sim2real_predictions.csv", index=False)
    assert "- Intervals: 95% percentile bootstrap" in readme_sim2real(store)
    # Predictions of other models than the table's (a table rewritten alone): refused, not mixed.
    result.predictions.assign(config_id="0" * 12).to_csv(tmp_path / "sim2real_predictions.csv", index=False)
    with pytest.raises(DatasetError, match="sim2real_predictions.csv: its models .* are not those of"):
        readme_sim2real(store)


def test_the_store_keeps_other_set_sizes_and_the_readme_sets_them_against_the_main_one(tmp_path):
    small, _ = _sim2real_on_own_set(tmp_path)
    # The same version on twice the spectra, here made a perfect model (what is tested is the merge and the
    # README, not the training), under its own size and model id.
    model = small.table["scorer"] == "model"
    other = {"n_synthetic": 400, "config_id": "b" * 12}
    large = replace(
        small,
        table=small.table.assign(
            **other,
            micro_f1=small.table["micro_f1"].where(~model, 1.0),
            ceiling_micro_f1=small.table["ceiling_micro_f1"].where(~model, 1.0),
            device_name="Other CPU",
        ),
        labels=small.labels.assign(**other),
        predictions=small.predictions.assign(**other, predicted=small.predictions["truth"]),
    )
    store = tmp_path / "results" / "sim2real.csv"
    store_result(small, store)
    store_result(large, store)
    store_result(small, store)  # a rerun replaces its own rows and keeps the other size's
    table = pd.read_csv(store, dtype={"version": str})
    assert table.groupby("n_synthetic").size().to_dict() == {200: 3, 400: 3}
    assert table["n_synthetic"].is_monotonic_increasing  # in size order, though n = 200 was stored last
    assert len(pd.read_csv(store.with_name("sim2real_predictions.csv"))) == 2 * 40
    text = readme_sim2real(store)
    assert "n = 200 synthetic spectra" in text and "| own (40) | model | synth-ir17 v3 at n = 400 | " in text
    # The verdict is about the main size (the smallest here, without the default's): its best is v3 at
    # n = 200, not the perfect model; the other size is set against it, paired over the same spectra.
    small_f1 = small.table.loc[model, "micro_f1"].iloc[0]
    assert round(small_f1, 3) in numbers_in(line_with(text, "- own: best micro-F1"))
    line = line_with(text, "- own: synth-ir17 v3 at n = 400")
    assert [1.0, round(1 - small_f1, 3)] == numbers_in(line)[:2] and numbers_in(line)[2] > 0
    assert "includes 0" not in line
    small_ceiling = small.table.loc[model, "ceiling_micro_f1"].iloc[0]
    assert f"; ceiling 1.000 against {small_ceiling:.3f}; machines:" in line
    here = small.table["device_name"].iloc[0]  # trained on other machines: the line names both
    assert line.endswith(f"; machines: n = 400 Other CPU, n = 200 {here}.")
    # A per-label table written before the size was recorded takes it from the table's row of its model.
    labels = pd.read_csv(store.with_name("sim2real_labels.csv"))
    labels.drop(columns="n_synthetic").to_csv(store.with_name("sim2real_labels.csv"), index=False)
    assert readme_sim2real(store) == text
    # The textbook rule's table, per set; the README sets its ROC-AUC per label beside the model's on each
    # real set (mean over seeds, the set's best generator) and the newest generator's validation split.
    bands = pd.read_csv(store.with_name("sim2real_bands.csv"))
    assert bands["set"].drop_duplicates().tolist() == ["own", "synth-ir17 v3 validation (n = 200)"]
    header = "| label | bands (cm-1) | own: rule | own: model v3 | synth-ir17 v3 validation: rule |"
    assert header in text
    own = bands[bands["set"] == "own"].set_index("label")
    model_auc = small.labels[small.labels["scorer"] == "model"].set_index("label")["auc"]
    ranked = own["auc"].dropna()
    assert len(ranked) >= 3
    for label, rule in ranked.items():
        assert f"| {label} | {own.loc[label, 'bands_cm1']} | {rule:.2f} | {model_auc[label]:.2f} | " in text
    # A rerun of one set replaces its rows only.
    store_result(replace(small, bands=small.bands[small.bands["set"] == "own"].assign(auc=0.5)), store)
    again = pd.read_csv(store.with_name("sim2real_bands.csv"))
    assert len(again) == len(bands) and (again.loc[again["set"] == "own", "auc"] == 0.5).all()
    synthetic = bands["kind"] == "synthetic"
    assert again.loc[synthetic.to_numpy(), "auc"].equals(bands.loc[synthetic, "auc"])
    assert "- own: the rule ranks" in readme_sim2real(store)  # every ranked label at 0.5: chance, named


def _sim2real_on_own_set(tmp_path):
    """Sim2real on a tiny budget (v3, n = 200), scored on a real set made here, so it needs no ../shared
    and runs in CI too: a small parquet file in the multimodal layout (1800-point spectra + SMILES) of
    synthetic v3 spectra of real molecules. The result, and the dataset the file holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = benchmarks.make_synth("synth-ir17", 40, 11, "3")
    grid = np.linspace(400.0, 4000.0, 1800)
    spectra = [np.interp(grid, ds.axis, x).tolist() for x in ds.X]
    path = tmp_path / "set.parquet"
    pq.write_table(pa.table({"smiles": list(ds.extras["smiles"]), "ir_spectra": spectra}), path)
    cfg = Sim2RealConfig(
        real=[RealSet("own", path)],
        versions=["3"],
        n=200,
        overrides=["optim.epochs=1", "model.width=8"],
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
    )
    return run_sim2real(cfg, progress=False), ds


def test_sim2real_scores_a_parquet_set_it_was_given_on_any_checkout(tmp_path):
    result, ds = _sim2real_on_own_set(tmp_path)
    model = result.table[result.table["scorer"] == "model"].iloc[0]
    assert model["spectra"] == 40 and model["refused"] == 0 and 0 <= model["micro_f1"] <= 1
    assert model["precision"] in {"fp32", "bf16"} and 0 <= model["synthetic_test_micro_f1"] <= 1
    # The ceiling: the synthetic thresholds are one choice of thresholds, and the majority's label set one
    # fixed label set, so neither passes its ceiling; the prevalence scorer has none.
    t = result.table.set_index("scorer")
    assert t.loc["model", "micro_f1"] <= t.loc["model", "ceiling_micro_f1"] <= 1
    assert t.loc["majority", "micro_f1"] <= t.loc["majority", "ceiling_micro_f1"]
    assert np.isnan(t.loc["prevalence", "ceiling_micro_f1"])
    line = next(x for x in readme_table(result.table, tmp_path).splitlines() if "own: thresholds fit" in x)
    m, fixed = t.loc["model"], t.loc["majority", "ceiling_micro_f1"]
    assert line == (
        "- own: thresholds fitted on its own labels would give the models at most "
        f"{m['ceiling_micro_f1']:.3f} (synth-ir17 v3, mean over seeds, against {m['micro_f1']:.3f} at its "
        "synthetic thresholds; the only generator at n = 200 scored with it); the best label set to name for "
        f"every spectrum, chosen the same way, {fixed:.3f}: the scores add "
        f"{m['ceiling_micro_f1'] - fixed:+.3f} to what the label shares alone allow."
    )
    # The row says where the model trained: the same seed trains another model on another kind of CPU.
    here = machine()
    assert model["device_name"] == (here["gpu"] or here["cpu"]) and model["threads"] == here["threads"]
    assert f"on {model['device_name']})" in readme_table(result.table, tmp_path)
    # Labels come from the SMILES: the set's label counts are those of its molecules.
    own = result.labels[(result.labels["scorer"] == "model")].set_index("label")["support"]
    assert own.to_dict() == dict(zip(NIST17_NAMES, ds.y.sum(0).tolist(), strict=True))
    # The textbook rule's rows are not a model's: each names the data it was computed on by its hash.
    by_set = result.bands.groupby("set")["data_sha256"].unique().map(list).to_dict()
    assert by_set == {
        "own": [file_sha256(tmp_path / "set.parquet")],
        "synth-ir17 v3 validation (n = 200)": [result.hashes["synth-ir17-v3"]],
    }


def test_the_readme_names_the_machines_and_the_rows_made_before_they_were_recorded():
    old = pd.DataFrame({"version": ["6", "6", "8"]})
    assert machines(old) == "machine not recorded"
    mixed = old.assign(device_name=["Intel Xeon", None, "AMD EPYC"])
    assert machines(mixed) == "on AMD EPYC, Intel Xeon; machine not recorded for 1 of 3 rows"
    assert machines(mixed.fillna("AMD EPYC")) == "on AMD EPYC, Intel Xeon"
    # A verdict that compares versions trained on other machines names them; on one machine it does not.
    table = pd.DataFrame({"real_set": "r", "scorer": ["model", "model", "majority"],
                          "version": ["6", "8", "8"], "n_synthetic": 4000, "seed": 0, "spectra": 10,
                          "micro_f1": [0.5, 0.6, 0.4],
                          "device_name": ["Intel Xeon", "AMD EPYC", "AMD EPYC"]})  # fmt: skip
    mixed_line = verdict(summary(table))[0]
    assert 0.1 in numbers_in(mixed_line)
    assert "v8 AMD EPYC" in mixed_line and "v6 Intel Xeon" in mixed_line
    same = verdict(summary(table.assign(device_name="AMD EPYC")))[0]
    assert 0.1 in numbers_in(same) and "machines" not in same
