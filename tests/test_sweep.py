import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import peakmixer
from peakmixer.cli import main
from peakmixer.config import ConfigError
from peakmixer.data.dataset import file_sha256, toy_dataset
from peakmixer.studies.store import read_results
from peakmixer.studies.sweep import SweepConfig, SweepDataset, load_sweep, plan, run_sweep
from peakmixer.studies.workers import run_workers
from peakmixer.train.checkpoint import load_checkpoint
from peakmixer.train.device import cpu_kernels

TRAIN = {
    "model": {"blocks": 2, "input_length": 128, "hidden": 16, "mlp_hidden": 16, "mlp_layers": 1},
    "optim": {"epochs": 2, "batch_size": 16, "lr": 0.003},
    "precision": "fp32",
}


def sweep_config(tmp_path, **changes) -> SweepConfig:
    ml = toy_dataset(n=64, length=128, n_classes=4, seed=0).save(tmp_path / "ml.npz")
    data = {
        "datasets": [{"name": "toy-ml", "path": str(ml)}],
        "widths": [8],
        "mixers": ["none", "mlpmixer"],
        "mixer_layers": [1],
        "seeds": [0, 1],
        "train": TRAIN,
        "out_dir": str(tmp_path / "sweep"),
    } | changes
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return load_sweep(path)


def run_dir(runs: Path, name: str) -> Path:
    """The one run folder of `name` (a run's folder carries its settings' digest: NAME-xxxxxxxx)."""
    (found,) = runs.glob(f"{name}-*")
    return found


def test_plan_covers_the_grid_once():
    ds = SweepDataset(name="d", path="d.npz")
    cfg = SweepConfig(
        datasets=[ds],
        widths=[8, 16],
        mixers=["none", "mlp", "mlpmixer"],
        mixer_layers=[0, 2],
        seeds=[0, 1, 2],
    )
    runs = plan(cfg)
    # none and mlp have no mixer layers: (1 + 1 + 2) models x 2 widths x 3 seeds
    assert len(runs) == 4 * 2 * 3
    assert len({r.run_id for r in runs}) == len(runs)


def test_sweep_table_and_resume_without_redoing_runs(tmp_path, capsys):
    cfg = sweep_config(tmp_path)
    first = run_sweep(cfg, progress=False)
    assert len(first) == 4
    assert set(first["mixer"]) == {"none", "mlpmixer"} and set(first["seed"]) == {0, 1}
    for col in (
        "params",
        "macs",
        "train_seconds",
        "spectra_per_second",
        "micro_f1",
        "emr",
        "best_epoch",
        "git_sha",
    ):
        assert first[col].notna().all(), col
    # the table's MACs are what `python -m peakmixer profile` says for the same model
    row = first[first["mixer"] == "mlpmixer"].iloc[0]
    argv = [
        "profile",
        "--mixer",
        "mlpmixer",
        "--width",
        "8",
        "--blocks",
        "2",
        "--mixer-layers",
        "1",
        "--n-classes",
        "4",
        "--input-length",
        "128",
        "--hidden",
        "16",
        "--json",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == row["macs"]

    # a finished sweep is not redone: no checkpoint is touched when it runs again
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "runs").rglob("*.pt")}
    assert run_sweep(cfg, progress=False).equals(first)
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())


def test_a_run_cut_short_writes_no_row_and_resumes_mid_epoch_to_the_same_result(tmp_path):
    whole = run_sweep(sweep_config(tmp_path / "a", mixers=["mlpmixer"], seeds=[0]), progress=False)
    cut = sweep_config(tmp_path / "b", mixers=["mlpmixer"], seeds=[0])
    cut.train = {**cut.train, "max_steps": 3, "checkpoint_every": 1}  # of 2 epochs x 2 steps
    assert run_sweep(cut, progress=False).empty  # a run stopped by max_steps is not a result
    last = load_checkpoint(
        run_dir(tmp_path / "b" / "sweep" / "runs" / "toy-ml" / "w8-mlpmixer1", "seed0") / "last.pt"
    )
    assert last["state"]["epoch"] == 1 and last["state"]["step_in_epoch"] == 1  # stopped mid-epoch
    cut.train = {k: v for k, v in cut.train.items() if k not in ("max_steps", "checkpoint_every")}
    resumed = run_sweep(cut, progress=False)
    assert len(resumed) == 1
    cols = ["config_id", "micro_f1", "macro_f1", "emr", "best_val", "best_epoch", "epochs_run"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols])


def test_ids_are_read_as_text(tmp_path):
    path = tmp_path / "results.csv"
    pd.DataFrame({"run_id": ["0123"], "config_id": ["1234e5678901"], "seed": [0]}).to_csv(path, index=False)
    table = read_results(path)
    assert table["run_id"].tolist() == ["0123"] and table["config_id"].tolist() == ["1234e5678901"]


def test_rows_from_before_the_ip_column_read_as_ip_off(tmp_path):
    # a row written before ip_mode existed must summarise with the IP-off rows, not as a group of its own
    path = tmp_path / "results.csv"
    pd.DataFrame({"run_id": ["a", "b"], "seed": [0, 1], "ip_mode": [None, "off"]}).to_csv(path, index=False)
    assert read_results(path)["ip_mode"].tolist() == ["off", "off"]


def test_pretrain_finetune_protocol(tmp_path):
    cfg = sweep_config(tmp_path, datasets=[toy_pretrain_dataset(tmp_path)], mixers=["mlpmixer"])
    table = run_sweep(cfg, progress=False)
    assert len(table) == 2 and table["accuracy"].between(0, 1).all() and table["micro_f1"].isna().all()
    runs = tmp_path / "sweep" / "runs" / "toy-mc" / "w8-mlpmixer1"
    assert (run_dir(runs, "pretrain-seed0") / "best.pt").exists()  # one pre-training, shared by both seeds
    for seed in (0, 1):
        cfg_used = (run_dir(runs, f"seed{seed}") / "config.yaml").read_text()
        assert "init_from: " + str(run_dir(runs, "pretrain-seed0") / "best.pt") in cfg_used
    assert table["init_id"].nunique() == 1 and (table["pretrain_seconds"] > 0).all()

    # another seed list shares the same pre-training (its folder does not depend on the seeds)
    cfg.seeds = [1, 2]
    assert set(run_sweep(cfg, progress=False)["init_id"]) == set(table["init_id"])
    assert sorted(p.name.rsplit("-", 1)[0] for p in runs.iterdir()) == [
        "pretrain-seed0",
        "seed0",
        "seed1",
        "seed2",
    ]

    # one pre-training per seed: independent seeds, each fine-tuned from its own
    per_seed = sweep_config(
        tmp_path,
        datasets=[toy_pretrain_dataset(tmp_path)],
        mixers=["mlpmixer"],
        pretrain_per_seed=True,
        out_dir=str(tmp_path / "per-seed"),
    )
    independent = run_sweep(per_seed, progress=False)
    assert independent["init_id"].nunique() == 2
    runs = tmp_path / "per-seed" / "runs" / "toy-mc" / "w8-mlpmixer1"
    for seed in (0, 1):
        cfg_used = (run_dir(runs, f"seed{seed}") / "config.yaml").read_text()
        assert "init_from: " + str(run_dir(runs, f"pretrain-seed{seed}") / "best.pt") in cfg_used

    # another pre-training is another run for every fine-tuned seed: its old rows are not reused
    cfg.datasets[0].train = {**cfg.datasets[0].train, "optim": {"lr": 0.001}}
    with pytest.raises(ConfigError, match="already holds toy-mc/w8-mlpmixer1/seed1 made with other settings"):
        run_sweep(cfg, progress=False)


def test_a_changed_study_replaces_its_old_rows_only_when_asked(tmp_path, capsys):
    cfg = sweep_config(tmp_path, datasets=[toy_pretrain_dataset(tmp_path)], mixers=["mlpmixer"])
    shared = run_sweep(cfg, progress=False)
    assert shared["init_id"].nunique() == 1

    # the study now pre-trains once per seed: seed 0's pre-training is the shared one, seed 1's row is
    # another run
    sweep_config(
        tmp_path, datasets=[toy_pretrain_dataset(tmp_path)], mixers=["mlpmixer"], pretrain_per_seed=True
    )
    config = str(tmp_path / "sweep.yaml")
    assert main(["sweep", "--config", config]) == 2
    assert "sweep --replace-changed" in capsys.readouterr().err
    assert read_results(cfg.results_path)["config_id"].tolist() == shared["config_id"].tolist()

    assert main(["sweep", "--config", config, "--replace-changed"]) == 0
    assert "trained again to replace it" in capsys.readouterr().out
    table = read_results(cfg.results_path)
    assert sorted(table["run_id"]) == sorted(shared["run_id"])  # replaced in place, none added
    ids = table.set_index("run_id")["config_id"].sort_index()
    old = shared.set_index("run_id")["config_id"].sort_index()
    assert table["init_id"].nunique() == 2 and (ids != old).tolist() == [False, True]
    assert main(["sweep", "--config", config]) == 0  # valid now: kept without the flag
    assert read_results(cfg.results_path).equals(table)


@pytest.mark.parametrize(
    "change",
    [{"optim": {**TRAIN["optim"], "epochs": 3}}, {"model": {**TRAIN["model"], "hidden": 32}}],
    ids=["budget", "model"],
)
def test_a_stored_row_is_reused_and_a_changed_configuration_is_not(tmp_path, change):
    cfg = sweep_config(tmp_path, mixers=["mlpmixer"], seeds=[0])
    first = run_sweep(cfg, progress=False)
    assert run_sweep(cfg, progress=False).equals(first)  # reused, not retrained
    cfg.train = {**cfg.train, **change}
    with pytest.raises(ConfigError, match="already holds toy-ml/w8-mlpmixer1/seed0 made with other settings"):
        run_sweep(cfg, progress=False)


def test_a_sweep_can_run_one_datasets_runs_alone(tmp_path):
    cfg = sweep_config(
        tmp_path,
        mixers=["none"],
        seeds=[0],
        datasets=[
            {
                "name": "toy-ml",
                "path": str(toy_dataset(n=64, length=128, n_classes=4, seed=0).save(tmp_path / "a.npz")),
            },
            {
                "name": "toy-b",
                "path": str(toy_dataset(n=64, length=128, n_classes=4, seed=1).save(tmp_path / "b.npz")),
            },
        ],
    )
    assert list(run_sweep(cfg, progress=False, datasets=["toy-b"])["dataset"]) == ["toy-b"]
    assert list(read_results(cfg.results_path)["dataset"]) == ["toy-b"]
    run_sweep(cfg, progress=False, datasets=["toy-ml"])
    sidecar = json.loads(cfg.results_path.with_suffix(".json").read_text())
    assert sidecar["data_sha256"] == {  # the table holds both datasets' rows: its sidecar names both
        name: file_sha256(tmp_path / f"{f}.npz") for name, f in (("toy-ml", "a"), ("toy-b", "b"))
    }
    with pytest.raises(ConfigError, match="no dataset 'toy-c' in this sweep"):
        run_sweep(cfg, progress=False, datasets=["toy-c"])


def test_the_returned_table_holds_only_the_planned_runs(tmp_path):
    cfg = sweep_config(tmp_path, mixers=["none"], seeds=[0, 1])
    assert len(run_sweep(cfg, progress=False)) == 2
    cfg.seeds = [1]
    assert run_sweep(cfg, progress=False)["seed"].tolist() == [1]


def test_the_sweep_axes_cannot_be_hidden_inside_train_model(tmp_path):
    # `train.model.blocks` would be overwritten by the sweep's own `blocks` without a word
    cfg = sweep_config(tmp_path, mixers=["none"], seeds=[0], blocks=2)
    cfg.train = {**cfg.train, "model": {**cfg.train["model"], "blocks": 3}}
    with pytest.raises(ConfigError, match="train.model.blocks is set by the sweep itself"):
        run_sweep(cfg, progress=False)


def test_a_dataset_recipe_fills_in_the_papers_training_settings(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("datasets: [{name: b, path: b.npz, recipe: bacteria, finetune: {optim: {lr: 0.01}}}]\n")
    ds = load_sweep(path).datasets[0]
    assert ds.protocol == "pretrain_finetune" and ds.train["optim"]["epochs"] == 50
    assert ds.finetune["optim"] == {"lr": 0.01, "batch_size": 8}  # the dataset's own keys win
    path.write_text("datasets: [{name: b, path: b.npz, recipe: nope}]\n")
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_sweep(path)


def test_sweep_cli_rejects_unknown_keys(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("widhts: [8]\n")
    assert main(["sweep", "--config", str(path)]) == 2
    assert "unknown config key 'widhts'" in capsys.readouterr().err


def test_an_ip_sweep_scores_every_run_and_keeps_the_scores_with_their_settings(tmp_path):
    scores = {"n_spectra": 4, "score": {"n_perturb_samples": 2, "sensitivity_samples": 2}}
    cfg = sweep_config(
        tmp_path,
        mixers=["mlpmixer"],
        seeds=[0],
        ip_modes=["trainable", "frozen", "off"],
        train={**TRAIN, "model": {**TRAIN["model"], "ip": {"channels": 12}}},
        scores=scores,
    )
    table = run_sweep(cfg, progress=False).set_index("ip_mode")
    assert list(table["run_id"]) == [
        "toy-ml/w8-mlpmixer1-iptrainable/seed0",
        "toy-ml/w8-mlpmixer1-ipfrozen/seed0",
        "toy-ml/w8-mlpmixer1/seed0",
    ]
    for mode in ("trainable", "frozen"):
        row = table.loc[mode]
        assert row["ip_channels"] == 12 and 0 <= row["pathway_pred_2"] <= 1
        assert np.isfinite(row[["infidelity_mean", "sensitivity_mean"]].astype(float)).all()
        assert 0 <= row["mass_accuracy_specific"] <= 1 and 0 <= row["pointing_game_complement"] <= 1
    off = table.loc["off"]
    assert 0 <= off["mass_accuracy_all"] <= 1 and np.isnan(off["infidelity_mean"])
    assert np.isnan(off["mass_accuracy_specific"]) and np.isnan(off["pathway_pred_2"])
    assert table["scores_id"].str.len().eq(12).all()
    # the scores' settings are part of what a row is: other settings score the trained model again
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "runs").rglob("*.pt")}
    cfg.scores = {**scores, "layer": "extractor"}
    again = run_sweep(cfg, progress=False).set_index("ip_mode")
    assert (again["scores_id"] != table["scores_id"]).all() and len(again) == 3
    assert (again["config_id"] == table["config_id"]).all()
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # nothing retrained
    assert again.loc["trainable", "mass_accuracy_all"] != table.loc["trainable", "mass_accuracy_all"]
    # ...which needs the model: without its run directory that is an error that says so
    for folder in (tmp_path / "sweep" / "runs").rglob("seed0-*"):
        (folder / "best.pt").unlink()
    cfg.scores = {**scores, "layer": "features"}
    with pytest.raises(ConfigError, match="scored otherwise .* its model is not here"):
        run_sweep(cfg, progress=False)
    # ... or, asked, trained again here: the same run (config id), its row replaced with today's scores
    third = run_sweep(cfg, progress=False, retrain_missing=True).set_index("ip_mode")
    assert (third["config_id"] == table["config_id"]).all() and len(third) == 3
    assert not set(third["scores_id"]) & set(again["scores_id"])
    assert len(read_results(cfg.results_path)) == 3


def test_a_scored_sweep_keeps_every_pair_and_the_channels_each_class_owns(tmp_path):
    from peakmixer.studies.store import detail_table, read_details

    scores = {"n_spectra": 4, "score": {"n_perturb_samples": 2, "sensitivity_samples": 2}}
    cfg = sweep_config(
        tmp_path,
        mixers=["mlpmixer"],
        seeds=[0],
        ip_modes=["trainable", "off"],
        train={**TRAIN, "model": {**TRAIN["model"], "ip": {"channels": 12}}},
        scores=scores,
    )
    table = run_sweep(cfg, progress=False)
    pairs = read_details(cfg.results_path, "pairs", table)
    channels = read_details(cfg.results_path, "channels", table)
    for row in table.itertuples():
        mine = pairs[pairs["run_id"] == row.run_id]
        maps = 5 if row.ip_mode == "trainable" else 1  # all, and specific/complement under two rules
        assert len(mine) == row.scored_pairs * maps and (mine["scores_id"] == row.scores_id).all()
    trainable = table[table["ip_mode"] == "trainable"].iloc[0]
    mine = pairs[
        (pairs["run_id"] == trainable.run_id)
        & (pairs["channels"] == "specific")
        & (pairs["rule"] == "argmax")
    ]
    assert mine["infidelity"].mean() == pytest.approx(trainable.infidelity_mean, rel=1e-4)
    assert list(channels["run_id"].unique()) == [trainable.run_id]  # the IP run's 4 classes
    assert channels["channels_argmax"].sum() == 12 and len(channels) == 4
    from peakmixer.data.dataset import load

    assert list(channels["label"]) == list(load(tmp_path / "ml.npz").label_names)  # read without the data
    # scored again: the run's pairs are replaced, not added to
    cfg.scores = {**scores, "layer": "extractor"}
    again = run_sweep(cfg, progress=False)
    assert len(pd.read_csv(detail_table(cfg.results_path, "pairs"))) == len(pairs)
    assert len(read_details(cfg.results_path, "pairs", table)) == 0  # the old scores id no longer counts
    assert len(read_details(cfg.results_path, "pairs", again)) == len(pairs)
    # a row made elsewhere (another training of the same run): the model here is not its model, so its scores
    # are not mixed into that row; asked, the row is made whole again from the run here, nothing retrained
    from peakmixer.studies.store import replace_row

    run_id = trainable.run_id
    replace_row(cfg.results_path, run_id, {"finished_at": "2020-01-01T00:00:00Z", "micro_f1": 0.123})
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "runs").rglob("*.pt")}
    cfg.scores = {**scores, "layer": "features"}
    with pytest.raises(ConfigError, match="its model is not here"):
        run_sweep(cfg, progress=False)
    run_sweep(cfg, progress=False, retrain_missing=True)
    row = read_results(cfg.results_path).set_index("run_id").loc[run_id]
    assert row["finished_at"] != "2020-01-01T00:00:00Z" and row["micro_f1"] == pytest.approx(
        trainable.micro_f1
    )
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # evaluated, not trained again
    # a row dropped (with its pairs) is made again from the run here, as if never stored
    from peakmixer.studies.store import drop_rows

    assert drop_rows(cfg.results_path, [run_id]) == 1
    assert run_id not in set(read_results(cfg.results_path)["run_id"])
    assert run_id not in set(pd.read_csv(detail_table(cfg.results_path, "pairs"))["run_id"])
    run_sweep(cfg, progress=False)
    assert run_id in set(read_results(cfg.results_path)["run_id"])
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())


def test_a_pre_training_pinned_to_another_precision_keeps_its_rows_valid(tmp_path):
    from peakmixer.studies.results import validate

    data = toy_pretrain_dataset(tmp_path)
    data["train"] = {**data["train"], "precision": "bf16"}  # pre-training in bf16, fine-tuning in fp32
    data["finetune"] = {**data["finetune"], "precision": "fp32"}
    cfg = sweep_config(tmp_path, datasets=[data], mixers=["none"], seeds=[0])
    table = run_sweep(cfg, progress=False)
    assert table["precision"].tolist() == ["fp32"]  # the row records the fine-tuning's precision
    checked = validate(cfg, table)
    assert checked["valid"].all(), checked["why"].tolist()


def test_a_row_made_in_another_precision_than_the_study_pins_is_trained_again_in_place(tmp_path):
    import shutil

    from peakmixer.studies.sweep import run_identity, stage_configs

    ml = {
        "name": "toy-ml",
        "path": str(toy_dataset(n=64, length=128, n_classes=4, seed=0).save(tmp_path / "m")),
    }
    cfg = sweep_config(tmp_path, datasets=[ml, toy_pretrain_dataset(tmp_path)], mixers=["none"], seeds=[0, 1])
    made = run_sweep(cfg, progress=False)
    # as if the store had been made in bf16 elsewhere: valid rows in another precision than the pinned fp32
    table = read_results(cfg.results_path)
    old = {}
    for run in plan(cfg):
        if run.seed == 0:
            pre, tc = stage_configs(cfg, run, run.dataset.path)
            ds = peakmixer.data.dataset.load(run.dataset.path)
            old[run.run_id] = run_identity(pre, tc, ds, device_type="cpu", precision="bf16")
    at = table["run_id"].isin(old)
    table.loc[at, "precision"] = "bf16"
    table.loc[at, "config_id"] = table.loc[at, "run_id"].map(old)
    table.to_csv(cfg.results_path, index=False)
    # and a run directory that holds another run's checkpoints (the old precision's): set aside, not lost
    runs = Path(cfg.out_dir) / "runs"
    seed0 = run_dir(runs / "toy-ml" / "w8-none0", "seed0")
    shutil.rmtree(seed0)
    shutil.copytree(run_dir(runs / "toy-ml" / "w8-none0", "seed1"), seed0)
    other = load_checkpoint(seed0 / "last.pt")["config_id"]

    again = run_sweep(cfg, progress=False)
    assert again["run_id"].tolist() == made["run_id"].tolist()  # each row in its place
    assert (again["precision"] == "fp32").all()
    assert again["config_id"].tolist() == made["config_id"].tolist()
    pd.testing.assert_frame_equal(again[["micro_f1", "accuracy"]], made[["micro_f1", "accuracy"]])
    assert (seed0.with_name(f"{seed0.name}.{other}") / "last.pt").exists()
    # the rows no longer stale are left alone next time
    stamp = (seed0 / "last.pt").stat().st_mtime_ns
    run_sweep(cfg, progress=False)
    assert (seed0 / "last.pt").stat().st_mtime_ns == stamp


def test_a_study_with_precision_auto_keeps_a_row_made_in_another_precision(tmp_path):
    cfg = sweep_config(tmp_path, mixers=["none"], seeds=[0], train={**TRAIN, "precision": "auto"})
    run_sweep(cfg, progress=False)
    table = read_results(cfg.results_path)
    table["precision"] = "bf16" if table["precision"].iloc[0] == "fp32" else "fp32"
    from peakmixer.studies.sweep import run_identity, stage_configs

    run = plan(cfg)[0]
    pre, tc = stage_configs(cfg, run, run.dataset.path)
    ds = peakmixer.data.dataset.load(run.dataset.path)
    table["config_id"] = run_identity(pre, tc, ds, device_type="cpu", precision=table["precision"].iloc[0])
    table.to_csv(cfg.results_path, index=False)
    assert run_sweep(cfg, progress=False)["config_id"].tolist() == table["config_id"].tolist()


def toy_pretrain_dataset(tmp_path) -> dict:
    mc = toy_dataset(n=120, length=128, n_classes=3, task="multiclass", seed=0)
    mc.splits = {
        "reference": mc.splits["train"],
        "val": mc.splits["val"],
        "finetune": mc.splits["train"][:40],
        "test": mc.splits["test"],
    }
    return {
        "name": "toy-mc",
        "path": str(mc.save(tmp_path / "mc.npz")),
        "protocol": "pretrain_finetune",
        "train": {"data": {"train_split": "reference"}},
        "finetune": {"data": {"train_split": "finetune", "val_fraction": 0.25}, "optim": {"lr": 0.0003}},
    }


def test_parallel_workers_write_the_same_rows_as_one_worker(tmp_path):
    ml = {
        "name": "toy-ml",
        "path": str(toy_dataset(n=64, length=128, n_classes=4, seed=0).save(tmp_path / "m")),
    }
    datasets = [ml, toy_pretrain_dataset(tmp_path)]  # a shared pre-training: one worker makes it, once
    one = sweep_config(
        tmp_path, datasets=datasets, out_dir=str(tmp_path / "one"), results=str(tmp_path / "1.csv")
    )
    two = sweep_config(
        tmp_path, datasets=datasets, out_dir=str(tmp_path / "two"), results=str(tmp_path / "2.csv")
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each of the two workers gets
    try:
        serial = run_sweep(one, progress=False)
    finally:
        torch.set_num_threads(threads)
    parallel = run_workers(two, 2, progress=False, threads=1)
    table = read_results(two.results_path)  # every planned run once: no lost or doubled rows
    assert sorted(table["run_id"]) == sorted(r.run_id for r in plan(two)) == sorted(serial["run_id"])
    cols = ["run_id", "config_id", "micro_f1", "accuracy", "best_val", "best_epoch", "epochs_run", "threads"]
    pd.testing.assert_frame_equal(
        parallel[cols].sort_values("run_id").reset_index(drop=True),
        serial[cols].sort_values("run_id").reset_index(drop=True),
    )
    assert len(list((tmp_path / "two" / "runs" / "toy-mc").glob("*/pretrain-seed0-*/best.pt"))) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_stopping_a_parallel_sweep_stops_its_workers(tmp_path):
    # Long runs, so that the workers are still training when the sweep is stopped.
    train = TRAIN | {"optim": {**TRAIN["optim"], "epochs": 100_000, "patience": 100_000}}
    sweep_config(tmp_path, train=train)
    env = os.environ | {"PYTHONPATH": str(Path(peakmixer.__file__).parents[1])}  # this checkout's package
    command = [sys.executable, "-m", "peakmixer", "sweep", "--config", str(tmp_path / "sweep.yaml")]
    sweep = subprocess.Popen([*command, "--workers", "2"], env=env, stdout=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.5)
            workers = [pid for pid in _children(sweep.pid) if b"spawn_main" in _command(pid)]
        assert len(workers) == 2, "the sweep did not start its two workers"
        # Past their start-up (which ends by itself when the sweep dies): each has claimed a run to train.
        while len(list((tmp_path / "sweep").rglob(".lock"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(list((tmp_path / "sweep").rglob(".lock"))) == 2, "the workers did not start training"
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_running(pid) for pid in workers), "a worker outlived its stopped sweep"
    finally:
        for pid in [sweep.pid, *workers]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _command(pid: int) -> bytes:
    """The command line of `pid` (a spawned worker's runs ``spawn_main``; its resource tracker's does not)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, not a zombie awaiting its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_rescoring_a_row_keeps_a_row_another_worker_appends_meanwhile(tmp_path, monkeypatch):
    from contextlib import contextmanager

    from peakmixer.studies import store

    path, ready = tmp_path / "table.csv", tmp_path / "ready"
    store.append_row(path, dict.fromkeys(store.COLUMNS, "") | {"run_id": "run1", "config_id": "c1"})
    other = (  # another worker process appends run2 once it is ready
        "import pathlib, sys\nfrom peakmixer.studies import store\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        f"store.append_row(pathlib.Path({str(path)!r}), dict.fromkeys(store.COLUMNS, '') | "
        "{'run_id': 'run2', 'config_id': 'c2'})\n"
    )
    lib = str(Path(store.__file__).parents[2])
    real = store.atomic

    @contextmanager
    def rewrite_late(target):  # the re-scoring worker has read the table; the other one appends now
        proc = subprocess.Popen([sys.executable, "-c", other], env={**os.environ, "PYTHONPATH": lib})
        for _ in range(600):
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        try:  # without the table's lock the append lands (and the process ends) before this write
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # with the lock it waits for this write
            pass
        rewrite_late.proc = proc
        with real(target) as tmp:
            yield tmp

    monkeypatch.setattr(store, "atomic", rewrite_late)
    store.replace_row(path, "run1", {"scores_id": "new"})
    monkeypatch.setattr(store, "atomic", real)
    assert rewrite_late.proc.wait(timeout=120) == 0
    table = store.read_results(path)
    assert (
        sorted(table["run_id"]) == ["run1", "run2"]
        and table.set_index("run_id").loc["run1", "scores_id"] == "new"
    )


def test_a_row_made_on_another_device_type_is_kept_where_the_code_computes_it(tmp_path, monkeypatch):
    cfg = sweep_config(tmp_path, mixers=["none"], seeds=[0])
    first = run_sweep(cfg, progress=False)
    assert first["device"].tolist() == ["cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the store travels to a GPU machine
    # `device: auto` plans a CUDA run there (another id), but the CPU row is what the code computes on a
    # CPU: kept, nothing trained (training would fail here, this GPU is not real)
    assert run_sweep(cfg, progress=False).equals(first)
    table = read_results(cfg.results_path)
    table["config_id"] = "0" * 12  # a row that no device's plan has: still refused
    table.to_csv(cfg.results_path, index=False)
    with pytest.raises(ConfigError, match="already holds toy-ml/w8-none0/seed0 made with other settings"):
        run_sweep(cfg, progress=False)


def test_a_run_another_study_reuses_keeps_where_and_when_it_was_trained(tmp_path):
    import time

    first = run_sweep(sweep_config(tmp_path, mixers=["none"], seeds=[0]), progress=False)
    time.sleep(1.1)  # finished_at has whole seconds
    other = sweep_config(tmp_path, mixers=["none"], seeds=[0], results=str(tmp_path / "other.csv"))
    reused = run_sweep(other, progress=False)  # the same run folder: evaluated again, not trained
    made = ["finished_at", "git_sha", "threads", "device_name", "cpu_kernels", "train_seconds", "micro_f1"]
    assert reused[made].equals(first[made])


def test_a_reused_run_whose_record_predates_its_keys_takes_the_time_it_was_written_and_no_cpu_sets(tmp_path):
    import json
    import os

    first = run_sweep(sweep_config(tmp_path, mixers=["none"], seeds=[0]), progress=False)
    record = next(tmp_path.rglob("metrics.json"))
    old = json.loads(record.read_text())
    del old["finished_at"], old["cpu_kernels"]  # as runs made before the keys were kept wrote it
    record.write_text(json.dumps(old))
    written = 1_700_000_000  # 2023-11-14T22:13:20Z
    os.utime(record, (written, written))
    other = sweep_config(tmp_path, mixers=["none"], seeds=[0], results=str(tmp_path / "other.csv"))
    reused = run_sweep(other, progress=False)
    assert reused["finished_at"].tolist() == ["2023-11-14T22:13:20Z"]
    assert first["finished_at"].tolist() != reused["finished_at"].tolist()
    # the instruction sets of the CPU that evaluates it again are not those it was trained with: not recorded
    assert reused["cpu_kernels"].tolist() == [""] and first["cpu_kernels"].tolist() == [cpu_kernels()]


def test_one_run_name_at_two_budgets_gets_two_folders_and_two_valid_rows(tmp_path):
    short = sweep_config(tmp_path, mixers=["none"], seeds=[0], results=str(tmp_path / "short.csv"))
    long = sweep_config(
        tmp_path, mixers=["none"], seeds=[0], results=str(tmp_path / "long.csv"),
        train={**TRAIN, "optim": {**TRAIN.get("optim", {}), "epochs": 3}},
    )  # fmt: skip
    assert short.out_dir == long.out_dir and plan(short)[0].run_id == plan(long)[0].run_id
    a, b = run_sweep(short, progress=False), run_sweep(long, progress=False)
    assert a["config_id"].iloc[0] != b["config_id"].iloc[0] and b["epochs_run"].iloc[0] <= 3
    folders = sorted((Path(short.out_dir) / "runs" / "toy-ml" / "w8-none0").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("seed0-") for f in folders)
    assert {load_checkpoint(f / "best.pt")["config_id"] for f in folders} == {
        a["config_id"].iloc[0],
        b["config_id"].iloc[0],
    }


def test_a_sweep_keeps_each_test_spectrums_outcome_and_adds_it_to_older_rows(tmp_path):
    from peakmixer.studies.outcomes import metric_of
    from peakmixer.studies.store import detail_table

    cfg = sweep_config(tmp_path, datasets=[toy_pretrain_dataset(tmp_path)], mixers=["mlpmixer"])
    multilabel = sweep_config(tmp_path, out_dir=str(tmp_path / "ml"))
    for study, task, metric in ((cfg, "multiclass", "accuracy"), (multilabel, "multilabel", "micro_f1")):
        table = run_sweep(study, progress=False)
        path = detail_table(study.results_path, "spectra")
        spectra = pd.read_csv(path, dtype={"run_id": str, "config_id": str})
        for row in table.itertuples(index=False):
            mine = spectra[(spectra["run_id"] == row.run_id) & (spectra["config_id"] == row.config_id)]
            assert len(mine) > 0 and mine["spectrum"].is_unique
            # the counts make the stored metric again, as training evaluated it
            assert metric_of(mine, task)[0] == pytest.approx(getattr(row, metric), abs=1e-12)
        # rows made before outcomes were kept get them from their models, without training again
        models = {p: p.stat().st_mtime_ns for p in Path(study.out_dir).rglob("best.pt")}
        path.unlink()
        again = run_sweep(study, progress=False)
        assert again["config_id"].tolist() == table["config_id"].tolist()
        assert {p: p.stat().st_mtime_ns for p in models} == models
        pd.testing.assert_frame_equal(
            pd.read_csv(path, dtype={"run_id": str, "config_id": str})
            .sort_values(["run_id", "spectrum"])
            .reset_index(drop=True),
            spectra.sort_values(["run_id", "spectrum"]).reset_index(drop=True),
        )
