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
import yaml

import peakmixer.train.device as train_device
from peakmixer.cli import main
from peakmixer.config import ConfigError
from peakmixer.data.dataset import DatasetError, SpectraDataset, toy_dataset
from peakmixer.train.checkpoint import load_checkpoint, model_from_checkpoint, shipped_weights
from peakmixer.train.config import load_config
from peakmixer.train.device import cpu_has_native_bf16, cpu_kernels, cpu_supports_bf16
from peakmixer.train.distributed import CrossProcessBatchNorm1d
from peakmixer.train.evaluate import evaluate_checkpoint
from peakmixer.train.loop import train

TINY = {
    "model": {
        "width": 8,
        "blocks": 2,
        "mixer_layers": 1,
        "input_length": 128,
        "hidden": 16,
        "mlp_hidden": 16,
    },
    "optim": {"epochs": 3, "batch_size": 8, "lr": 0.003, "patience": 100},
    "precision": "fp32",
    "progress": False,
}


def write_setup(tmp_path: Path, task: str = "multilabel", n: int = 96, **changes) -> Path:
    data = toy_dataset(n=n, length=128, n_classes=4, task=task, seed=0).save(tmp_path / "toy.npz")
    cfg = {**TINY, "data": {"path": str(data)}, "out_dir": str(tmp_path / "run")}
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg[section] = {**cfg.get(section, {}), leaf: value}
        else:
            cfg[section] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    assert worst <= atol, f"weights differ by up to {worst}"


def cpuinfo(vendor: str, *flags: str) -> str:
    """Two processors' blocks of /proc/cpuinfo, as Linux writes them."""
    block = f"processor\t: {{}}\nvendor_id\t: {vendor}\nflags\t\t: fpu sse2 avx2 avx512f {' '.join(flags)}\n"
    return block.format(0) + "\n" + block.format(1)


def test_auto_precision_takes_bf16_on_the_cpus_where_it_pays_off():
    # The flags alone decide here: no oneDNN cap from the environment (on a CPU without bf16 one is set to
    # stand in for it).
    # Measured (BENCHMARKS.md): AMX and AMD's AVX512-BF16 train faster in bf16; an Intel without AMX not.
    assert cpu_supports_bf16(cpuinfo("GenuineIntel", "avx512_bf16", "amx_bf16", "amx_tile"), isa_cap="")
    assert not cpu_supports_bf16(cpuinfo("GenuineIntel", "avx512_bf16"), isa_cap="")
    assert cpu_supports_bf16(cpuinfo("AuthenticAMD", "avx512_bf16"), isa_cap="")
    assert not cpu_supports_bf16(cpuinfo("AuthenticAMD")) and not cpu_supports_bf16("")
    # oneDNN capped below bf16 instructions emulates them: not worth it either
    assert not cpu_supports_bf16(cpuinfo("AuthenticAMD", "avx512_bf16"), isa_cap="AVX512_CORE")


def test_native_bf16_needs_the_instructions_and_onednn_allowed_to_use_them():
    amd_bf16 = cpuinfo("AuthenticAMD", "avx512_bf16")
    assert cpu_has_native_bf16(amd_bf16, isa_cap="")
    assert cpu_has_native_bf16(cpuinfo("GenuineIntel", "amx_bf16"), isa_cap="avx512_core_amx")
    assert not cpu_has_native_bf16(cpuinfo("AuthenticAMD"), isa_cap="")  # an EPYC without AVX512-BF16
    assert not cpu_has_native_bf16(amd_bf16, isa_cap="AVX2")
    assert not cpu_has_native_bf16(amd_bf16, isa_cap="AVX512_CORE_VNNI")


def test_a_run_records_the_instruction_sets_its_cpu_kernels_are_chosen_by():
    epyc = cpuinfo("AuthenticAMD").replace(" avx512f", "")
    assert cpu_kernels(epyc, isa_cap="") == "avx2"
    amd_bf16 = cpuinfo("AuthenticAMD", "fma", "avx512_bf16")
    assert cpu_kernels(amd_bf16, isa_cap="") == "avx2 fma avx512f avx512_bf16"
    capped = cpuinfo("GenuineIntel", "amx_tile")  # oneDNN told to use no more than AVX2
    assert cpu_kernels(capped, isa_cap="AVX2") == "avx2 avx512f amx_tile cap=AVX2"
    assert cpu_kernels("", isa_cap="") == ""


def test_loss_falls_and_run_dir_is_complete(tmp_path):
    cfg = load_config(write_setup(tmp_path), ["optim.epochs=6", "optim.lr=0.02"])
    summary = train(cfg)
    losses = [h["train_loss"] for h in summary["history"]]
    assert losses[-1] < 0.7 * losses[0]
    run = Path(cfg.out_dir)
    assert {"config.yaml", "last.pt", "best.pt", "metrics.json"} <= {p.name for p in run.iterdir()}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == max(range(6), key=lambda e: (summary["history"][e]["val_micro_f1"], -e))
    assert metrics["test"]["n"] == 24 and 0 <= metrics["test"]["micro_f1"] <= 1
    assert metrics["params"] > 0 and metrics["macs"] > 0
    ckpt = load_checkpoint(run / "best.pt")  # weights_only=True
    assert {"model", "optimizer", "scheduler", "rng", "config", "state", "model_spec"} <= ckpt.keys()
    again = evaluate_checkpoint(run / "best.pt", "test")
    assert again["micro_f1"] == pytest.approx(metrics["test"]["micro_f1"])


def test_multiclass_task_uses_accuracy(tmp_path):
    summary = train(load_config(write_setup(tmp_path, task="multiclass")))
    assert summary["metric"] == "accuracy" and "accuracy" in summary["test"]
    assert len(summary["test"]["confusion"]) == 4


def test_same_seed_same_weights(tmp_path):
    path = write_setup(tmp_path)
    train(load_config(path, [f"out_dir={tmp_path / 'a'}"]))
    train(load_config(path, [f"out_dir={tmp_path / 'b'}"]))
    assert_same_weights(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    train(load_config(path, [f"out_dir={tmp_path / 'c'}", "seed=1"]))
    with pytest.raises(AssertionError):
        assert_same_weights(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "c" / "last.pt"))


def test_resume_after_max_steps_equals_uninterrupted(tmp_path):
    path = write_setup(tmp_path, model__dropout=0.2)  # dropout: the RNG state must be restored too
    full = load_config(path, [f"out_dir={tmp_path / 'full'}"])
    train(full)
    part = load_config(path, [f"out_dir={tmp_path / 'part'}", "max_steps=13"])  # mid-epoch 2 of 3
    assert train(part)["stopped"]
    assert load_checkpoint(tmp_path / "part" / "last.pt")["state"]["global_step"] == 13
    train(load_config(path, [f"out_dir={tmp_path / 'part'}"]), resume=True)
    assert_same_weights(weights(tmp_path / "full" / "last.pt"), weights(tmp_path / "part" / "last.pt"))
    assert_same_weights(weights(tmp_path / "full" / "best.pt"), weights(tmp_path / "part" / "best.pt"))


def test_a_run_resumes_on_the_thread_count_it_began_with(tmp_path, capsys):
    # CPU sums run in another order on another thread count: a run resumed on a busier machine must not
    # quietly become a different run than the one its row describes.
    path = write_setup(tmp_path)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        full = train(load_config(path, [f"out_dir={tmp_path / 'full'}"]))
        assert train(load_config(path, [f"out_dir={tmp_path / 'part'}", "max_steps=13"]))["stopped"]
        torch.set_num_threads(1)
        resumed = train(load_config(path, [f"out_dir={tmp_path / 'part'}"]), resume=True)
        assert torch.get_num_threads() == 1  # the process's own count again afterwards
    finally:
        torch.set_num_threads(threads)
    assert resumed["threads"] == full["threads"] == 2 and "resumed on 2 threads" in capsys.readouterr().out
    assert_same_weights(weights(tmp_path / "full" / "last.pt"), weights(tmp_path / "part" / "last.pt"))


def test_resume_after_a_real_kill_equals_uninterrupted(tmp_path):
    path = write_setup(tmp_path, optim__epochs=12, checkpoint_every=1)
    run = tmp_path / "killed"
    env = os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, "-m", "peakmixer", "train", "--config", str(path), "--set", f"out_dir={run}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(run / "last.pt")["state"]["global_step"]
    assert 0 < killed_at < 12 * 9, "the run should have been killed part-way"
    assert not (run / "metrics.json").exists()
    train(load_config(path, [f"out_dir={run}"]), resume=True)
    train(load_config(path, [f"out_dir={tmp_path / 'whole'}"]))
    assert_same_weights(weights(tmp_path / "whole" / "last.pt"), weights(run / "last.pt"))


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    # SGD: AdamW divides by sqrt(v) and turns rounding noise of exactly-zero gradients (a conv bias before
    # BatchNorm) into +-lr steps; SGD shows the equivalence of data sharding, gradient and BN averaging.
    path = write_setup(tmp_path, optim__optimizer="sgd", optim__lr=0.05, optim__epochs=2)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "peakmixer",
        "train",
        "--config",
        str(path),
        "--set",
        f"out_dir={tmp_path / 'ddp'}",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:  # never leave orphaned workers behind
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-3000:]
    train(load_config(path, [f"out_dir={tmp_path / 'one'}"]))
    ddp, one = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp["state"]["global_step"] == one["state"]["global_step"] == 2 * 6
    assert_same_weights(ddp["model"], one["model"], atol=1e-5)
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["world_size"] == 2


def test_cross_process_batchnorm_is_plain_batchnorm_alone():
    torch.manual_seed(0)
    bn, ref = CrossProcessBatchNorm1d(3), torch.nn.BatchNorm1d(3)
    x = torch.randn(4, 3, 5)
    assert torch.allclose(bn(x), ref(x)) and torch.allclose(bn.running_var, ref.running_var)


def test_finetune_from_a_checkpoint_with_a_new_head(tmp_path):
    path = write_setup(tmp_path)
    train(load_config(path))
    pre = tmp_path / "run" / "best.pt"
    mc = toy_dataset(n=64, length=128, n_classes=3, task="multiclass", seed=1).save(tmp_path / "mc.npz")
    common = [f"data.path={mc}", f"init_from={pre}", f"out_dir={tmp_path / 'ft'}", "optim.lr=1e-4"]
    with pytest.raises(ConfigError, match="does not fit this model .*size mismatch.*new_head: true"):
        train(load_config(path, common))
    summary = train(load_config(path, [*common, "new_head=true"]))
    assert summary["task"] == "multiclass" and summary["model_spec"]["n_classes"] == 3
    tuned = model_from_checkpoint(tmp_path / "ft" / "last.pt")
    pretrained = load_checkpoint(pre)["model"]
    stem = "extractor.stem.0.weight"
    assert tuned.state_dict()[stem].shape == pretrained[stem].shape
    assert not torch.equal(tuned.state_dict()[stem], pretrained[stem])  # it trained further from there


def test_bf16_autocast_trains_on_cpu_where_it_is_native(tmp_path):
    summary = train(load_config(write_setup(tmp_path), ["precision=bf16", "optim.epochs=2"]))
    assert summary["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert np.isfinite([h["train_loss"] for h in summary["history"]]).all()


def test_bf16_asked_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(tmp_path, monkeypatch, capsys):
    # oneDNN capped at AVX2 is what a CPU without AVX512-BF16 gives: bf16 only by emulation, 8-20x slower
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setattr(train_device, "_TOLD", set())
    calls = []
    real = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: calls.append(k) or real(*a, **k))
    path = write_setup(tmp_path)
    summary = train(load_config(path, ["precision=bf16", "optim.epochs=1"]))
    assert summary["precision"] == "fp32"
    assert calls and not any(k["enabled"] for k in calls)  # no step ran under bf16 autocast
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "no native bf16" in notice[0] and "runs in fp32" in notice[0]
    train(load_config(path, ["precision=bf16", "optim.epochs=1", f"out_dir={tmp_path / 'again'}"]))
    assert "bf16" not in capsys.readouterr().err  # once per process, not once per run
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["precision"] == "fp32"


def test_cli_train_and_evaluate(tmp_path, capsys):
    path = write_setup(tmp_path)
    assert main(["train", "--config", str(path), "--set", "optim.epochs=1"]) == 0
    capsys.readouterr()
    out, preds = tmp_path / "eval.json", tmp_path / "predictions.csv"
    best = str(tmp_path / "run" / "best.pt")
    assert main(["evaluate", "--checkpoint", best, "--metrics", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and printed["split"] == "test"
    # for a reader: a table, and the predictions per spectrum
    assert main(["evaluate", "--checkpoint", best, "--out", str(preds)]) == 0
    table = capsys.readouterr().out
    assert f"micro_f1 {printed['micro_f1']:.3f}" in table and "precision  recall     f1  support" in table
    rows = pd.read_csv(preds, keep_default_na=False)
    assert len(rows) == printed["n"] and list(rows.columns[:3]) == ["spectrum", "true", "predicted"]
    probs = rows.filter(like="p(")
    names = [c[2:-1] for c in probs.columns]
    above = ["; ".join(n for n, p in zip(names, row, strict=True) if p >= 0.5) for row in probs.to_numpy()]
    assert above == rows["predicted"].tolist()


def test_cli_bad_config_is_one_clear_line(tmp_path, capsys):
    path = write_setup(tmp_path)
    assert main(["train", "--config", str(path), "--set", "optim.lr_max=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.lr_max'" in err and "Traceback" not in err
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found" in capsys.readouterr().err


def test_missing_data_and_bad_target_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        train(load_config(None, [f"out_dir={tmp_path}"]))
    path = write_setup(tmp_path)
    with pytest.raises(ConfigError, match="no extra 'y_group'"):
        train(load_config(path, ["data.target=y_group"]))


def test_nan_spectrum_never_reaches_training(tmp_path):
    ds = toy_dataset(n=16, length=128)
    X = ds.X.copy()
    X[2, 0] = np.inf
    with pytest.raises(ValueError, match="toy2"):
        SpectraDataset(X=X, axis=ds.axis, y=ds.y, task=ds.task, label_names=ds.label_names, ids=ds.ids)


def test_resuming_an_early_stopped_run_trains_no_further(tmp_path):
    path = write_setup(tmp_path, optim__epochs=30, optim__patience=1, optim__lr=0.05)
    first = train(load_config(path))
    assert first["epochs_run"] < 30  # it stopped early
    again = train(load_config(path), resume=True)
    assert again["epochs_run"] == first["epochs_run"] and again["global_step"] == first["global_step"]


def test_resume_refuses_other_settings(tmp_path):
    path = write_setup(tmp_path)
    train(load_config(path, ["max_steps=3"]))
    with pytest.raises(ConfigError, match="made with other settings, code, data"):
        train(load_config(path, ["optim.lr=0.1"]), resume=True)
    train(load_config(path, ["progress=true"]), resume=True)  # how a run is watched is not a new run


def test_history_records_the_rate_each_epoch_trained_with(tmp_path):
    summary = train(load_config(write_setup(tmp_path), ["optim.lr=0.004"]))
    assert summary["history"][0]["lr"] == pytest.approx(0.004)
    assert summary["history"][-1]["lr"] < 0.004


def test_class_count_of_an_extra_target_comes_from_the_whole_dataset(tmp_path):
    ds = toy_dataset(n=96, length=128, n_classes=4, task="multiclass", seed=0)
    group = np.arange(96, dtype=np.int64) % 2  # groups 0 and 1 everywhere
    group[ds.splits["test"][:3]] = 2  # the highest group occurs only in the test split
    ds.extras["y_group"] = group
    path = write_setup(tmp_path)
    summary = train(load_config(path, ["data.target=y_group", "optim.epochs=1"]), dataset=ds)
    assert summary["model_spec"]["n_classes"] == 3 and len(summary["test"]["confusion"]) == 3


def test_an_exported_model_is_slim_and_rebuilds_the_same_model(tmp_path):
    path = write_setup(tmp_path)
    train(load_config(path))
    best = tmp_path / "run" / "best.pt"
    assert main(["export", "--checkpoint", str(best), "--out", str(tmp_path / "models" / "m.pt")]) == 0
    slim = tmp_path / "models" / "m.pt"
    assert slim.stat().st_size < 0.6 * best.stat().st_size  # no optimiser moments
    assert "optimizer" not in load_checkpoint(slim) and load_checkpoint(slim)["config_id"]
    assert all(
        v.dtype == torch.float16 for v in load_checkpoint(slim)["model"].values() if v.is_floating_point()
    )
    # it rebuilds the trained model with its weights rounded to fp16, exactly as the store's scores see it
    ckpt = load_checkpoint(best)
    rounded = model_from_checkpoint(ckpt | {"model": shipped_weights(ckpt["model"])}).eval()
    x = torch.randn(3, 1, 128)
    assert torch.equal(model_from_checkpoint(slim).eval()(x), rounded(x))
    torch.testing.assert_close(rounded(x), model_from_checkpoint(best).eval()(x), rtol=0.02, atol=0.02)


def test_a_checkpoint_knows_its_input_axis_and_evaluate_resamples_onto_it(tmp_path):
    path = write_setup(tmp_path)
    train(load_config(path))
    best = tmp_path / "run" / "best.pt"
    axis = load_checkpoint(best)["input_axis"].numpy()
    assert axis[0] == 400 and axis[-1] == 4000 and len(axis) == 128
    toy = toy_dataset(n=96, length=128, n_classes=4, seed=0)
    # the same spectra on a narrower, denser axis (500-4000 cm-1): resampled onto the model's, not stretched
    narrow = toy.resample(np.linspace(500, 4000, 300))
    narrow.save(tmp_path / "narrow.npz")
    same = evaluate_checkpoint(best, "test")
    moved = evaluate_checkpoint(best, "test", data_path=str(tmp_path / "narrow.npz"))
    assert abs(moved["micro_f1"] - same["micro_f1"]) < 0.2
    toy.resample(np.linspace(2000, 4000, 64)).save(tmp_path / "half.npz")
    with pytest.raises(DatasetError, match="covers 56% of the model's input axis 400-4000"):
        evaluate_checkpoint(best, "test", data_path=str(tmp_path / "half.npz"))
    toy_dataset(n=96, length=128, n_classes=3, seed=0).save(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match="its classes .* are not the checkpoint's"):
        evaluate_checkpoint(best, "test", data_path=str(tmp_path / "other.npz"))
