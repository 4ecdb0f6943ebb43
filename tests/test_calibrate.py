"""The calibration table: the default training budget on each synthetic benchmark case, from the store."""

import pandas as pd

from peakmixer.calibrate import Case, calibrate, linear_baseline, readme_calibration
from peakmixer.data import load, toy_dataset

TINY = ["optim.epochs=1", "model.width=8"]


def test_calibration_rows_are_reused_and_make_the_readme_table(tmp_path):
    cases = [Case("synth-ir17", 300), Case("synth-bac30", 600, (("separation", 1.0),))]
    kw = {"data_dir": tmp_path / "data", "runs_dir": tmp_path / "runs", "extra": TINY, "progress": False}
    table = calibrate(cases, **kw)
    stages = table.groupby("case")["stage"].apply(list).to_dict()
    assert stages["synth-bac30, n = 600"] == [
        "pre-train (same day)",
        "before fine-tuning (other day)",
        "fine-tuned",
        "logistic regression, reference day",
        "logistic regression, + fine-tune spectra",
    ]
    assert (
        table["value"].between(0, 1).all() and (table.loc[table["config_id"] != "", "precision"] != "").all()
    )
    # the knobs reach the data
    made = load(tmp_path / "data" / "synth-bac30_calibration_separation1_n600_s0.npz")
    assert made.provenance["knobs"]["separation"] == 1.0
    # a second call reuses the finished runs (same ids), so the table is the same
    best = sorted((tmp_path / "runs").rglob("best.pt"))
    before = [p.stat().st_mtime_ns for p in best]
    again = calibrate(cases, **kw)
    assert [p.stat().st_mtime_ns for p in best] == before
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))
    # the README's table is made from the stored rows
    store = tmp_path / "calibration.csv"
    table.to_csv(store, index=False)
    text = readme_calibration(store)
    v = table.set_index(["case", "stage", "metric"])["value"]
    assert f"micro-F1 **{v['synth-ir17, n = 300', 'default budget', 'micro_f1']:.3f}**" in text
    assert f"fine-tuned **{v['synth-bac30, n = 600', 'fine-tuned', 'accuracy']:.3f}**" in text
    assert "| synth-bac30, n = 600 | separation 1 |" in text
    assert "No calibration" in readme_calibration(tmp_path / "missing.csv")


def test_the_linear_baseline_learns_a_separable_task_and_not_noise():
    easy = toy_dataset(n=200, length=64, n_classes=3, task="multiclass", seed=0)
    assert linear_baseline(easy, ["train"]) > 0.8
    noise = toy_dataset(n=200, length=64, n_classes=3, task="multiclass", seed=0)
    noise.y = noise.y[pd.Series(range(len(noise.y))).sample(frac=1, random_state=0).to_numpy()]
    assert linear_baseline(noise, ["train"]) < 0.6
