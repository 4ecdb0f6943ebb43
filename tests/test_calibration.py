"""The calibration table: the default training budget on each synthetic benchmark case, from the store."""

import json

import pandas as pd
import pytest
from conftest import line_with, numbers_in

from peakmixer.data.dataset import DatasetError, load, toy_dataset
from peakmixer.studies.calibration import BAC30_STAGES, Case, calibrate, linear_baseline, readme_calibration

TINY = ["optim.epochs=1", "model.width=8"]


def test_calibration_rows_are_reused_and_make_the_readme_table(tmp_path):
    cases = [Case("synth-ir17", 300), Case("synth-bac30", 600, (("separation", 1.0),))]
    kw = {"data_dir": tmp_path / "data", "runs_dir": tmp_path / "runs", "extra": TINY, "progress": False}
    table = calibrate(cases, [0, 1], **kw)
    bac = table[table["case"] == "synth-bac30, n = 600"]
    assert bac.groupby("seed")["stage"].apply(tuple).tolist() == [BAC30_STAGES] * 2
    trained = table[table["config_id"] != ""]
    assert table["value"].between(0, 1).all() and (trained["precision"] != "").all()
    assert trained.groupby("stage")["config_id"].nunique().min() == 2  # each seed its own run
    # the knobs reach the data
    made = load(tmp_path / "data" / "synth-bac30_calibration_separation1_n600_s0.npz")
    assert made.provenance["knobs"]["separation"] == 1.0
    # the fine-tuned run starts from that seed's pre-trained model; "before" is the pre-trained model's test
    for _, rows in bac.groupby("seed"):
        pre, fine = (rows.set_index("stage").loc[s] for s in (BAC30_STAGES[1], BAC30_STAGES[2]))
        (fine_dir,) = (tmp_path / "runs").glob(f"*/synth_bac30_finetune-{fine['config_id']}")
        (pre_dir,) = (tmp_path / "runs").glob(f"*/synth_bac30_pretrain-{pre['config_id']}")
        assert json.loads((fine_dir / "metrics.json").read_text())["init_id"] == f"{pre['config_id']}:best"
        assert json.loads((pre_dir / "metrics.json").read_text())["test"]["accuracy"] == pre["value"]
    # a second call reuses the finished runs (same ids), so the table is the same
    best = sorted((tmp_path / "runs").rglob("best.pt"))
    before = [p.stat().st_mtime_ns for p in best]
    again = calibrate(cases, [0, 1], **kw)
    assert [p.stat().st_mtime_ns for p in best] == before
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))
    # the README's table is made from the stored rows: mean ± sd over the seeds, on synthetic data
    store = tmp_path / "calibration.csv"
    table.to_csv(store, index=False)
    text = readme_calibration(store)
    f1 = table[(table["stage"] == "default budget, test") & (table["metric"] == "micro_f1")]["value"]
    (ir_row,) = [x for x in text.splitlines() if x.startswith("| synth-ir17")]
    assert {round(f1.mean(), 3), round(f1.std(), 3)} <= set(numbers_in(ir_row))
    assert "**synthetic**" in text and "[0, 1]" in text  # on synthetic data, over these seeds
    assert line_with(text, "| synth-bac30, n = 600 (150 test) | separation 1 |")
    assert "No calibration" in readme_calibration(tmp_path / "missing.csv")
    # under the table: the network against the linear baseline trained on the same spectra, per seed
    acc = bac[bac["metric"] == "accuracy"].set_index(["stage", "seed"])["value"]
    diff = acc[BAC30_STAGES[2]] - acc[BAC30_STAGES[4]]
    got = numbers_in(line_with(text, "- synth-bac30, n = 600, separation 1:"))
    assert got[-3:] == [round(diff.mean(), 3), round(diff[0], 3), round(diff[1], 3)]
    # a table without a stage the README needs names the file and what is missing
    table[table["stage"] != "fine-tuned, test (other day)"].to_csv(store, index=False)
    with pytest.raises(DatasetError, match="calibration.csv: synth-bac30, n = 600, separation 1 has no"):
        readme_calibration(store)
    pd.DataFrame({"case": ["x"]}).to_csv(store, index=False)
    with pytest.raises(DatasetError, match="not a calibration table"):
        readme_calibration(store)


def test_the_default_knobs_are_named_with_their_value():
    assert Case("synth-bac30", 10).knob_text == "defaults (separation 2.5)"
    assert Case("synth-bac30", 10, (("separation", 1.0),)).knob_text == "separation 1"


def test_the_linear_baseline_learns_a_separable_task_and_not_noise():
    easy = toy_dataset(n=200, length=64, n_classes=3, task="multiclass", seed=0)
    assert linear_baseline(easy, ["train"]) > 0.8
    noise = toy_dataset(n=200, length=64, n_classes=3, task="multiclass", seed=0)
    noise.y = noise.y[pd.Series(range(len(noise.y))).sample(frac=1, random_state=0).to_numpy()]
    assert linear_baseline(noise, ["train"]) < 0.6
