"""The benchmark commands run and report ratios; their speeds are never asserted (noisy machines)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from peakmixer.cli import main
from peakmixer.models import build_model, profile_model
from peakmixer.studies.bench import benchmark_synth, inference_bytes, training_bytes
from peakmixer.studies.bench_report import write_report
from peakmixer.train.device import resolve_precision
from peakmixer.train.prepare import predict

REPO = Path(__file__).resolve().parents[1]
SMALL = {"n_classes": 17, "width": 8, "mixer_layers": 1, "input_length": 256}


def test_bench_json_has_both_modes_and_their_ratios(capsys):
    args = ["bench", "--width", "4", "--mixer-layers", "1", "--input-length", "128", "--batch", "4"]
    assert main([*args, "--steps", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"eager", "fast", "ratio", "config", "device"}
    for mode in ("eager", "fast"):
        assert set(r[mode]) >= {"train_spectra_per_s", "infer_spectra_per_s", "peak_mem_mb"}
        assert r[mode]["train_spectra_per_s"] > 0 and r[mode]["peak_mem_mb"] > 0
    assert r["eager"]["precision"] == "fp32"
    assert r["fast"]["precision"] == resolve_precision("auto", torch.device("cpu"))
    assert r["ratio"]["train"] == pytest.approx(
        r["fast"]["train_spectra_per_s"] / r["eager"]["train_spectra_per_s"]
    )
    assert r["config"]["width"] == 4 and r["device"].startswith("cpu")
    roof = r["roofline"]
    assert set(roof["matmul_gmacs"]) == {"fp32", "bf16", "fp16"}
    # The ceiling is computed from this run's own eager speed and the model's MACs.
    macs = profile_model(build_model("respeak", "mlpmixer", n_classes=17, width=4, mixer_layers=1,
                                     input_length=128))["macs"]  # fmt: skip
    assert roof["forward_macs_per_spectrum"] == macs
    assert roof["eager_gmacs"]["infer"] == pytest.approx(macs * r["eager"]["infer_spectra_per_s"] / 1e9)
    best = max(roof["matmul_gmacs"].values())
    assert roof["ceiling"]["infer"] == pytest.approx(best / roof["eager_gmacs"]["infer"])


def test_the_ceiling_is_the_best_matmul_over_what_eager_reaches(monkeypatch):
    import peakmixer.studies.bench as bench

    monkeypatch.setattr(bench, "matmul_gmacs", lambda dev, p: {"fp32": 100.0, "bf16": 50.0, "fp16": 120.0}[p])
    r = bench.roofline({"train_spectra_per_s": 10.0, "infer_spectra_per_s": 40.0}, 1e9, torch.device("cpu"))
    assert r["eager_gmacs"] == pytest.approx({"train": 30.0, "infer": 40.0})  # training: 3 x forward MACs
    assert r["eager_share_of_fp32_peak"] == pytest.approx({"train": 0.3, "infer": 0.4})
    assert r["ceiling"] == pytest.approx({"train": 4.0, "infer": 3.0})  # against the best precision's peak


def test_the_fast_path_predicts_what_fp32_eager_predicts():
    torch.manual_seed(0)
    model = build_model("respeak", "mlpmixer", **SMALL).eval()
    X = torch.randn(64, 1, SMALL["input_length"])
    eager = predict(model, X, device=torch.device("cpu"), precision="fp32")
    fast = predict(
        model, X, device=torch.device("cpu"), precision=resolve_precision("auto", torch.device("cpu"))
    )
    assert np.abs(fast - eager).max() < 0.05 * max(1.0, np.abs(eager).max())
    assert ((fast > 0) == (eager > 0)).mean() > 0.97  # the same labels, but for a few borderline ones


def test_memory_per_spectrum_is_measured_and_scales_with_the_batch():
    torch.manual_seed(0)
    model = build_model("respeak", "mlpmixer", **SMALL)
    one = training_bytes(model, torch.randn(4, 1, 256), torch.zeros(4, 17), "fp32")
    two = training_bytes(model, torch.randn(8, 1, 256), torch.zeros(8, 17), "fp32")
    assert one["states"] == two["states"] == 4 * 4 * sum(p.numel() for p in model.parameters())
    assert two["activations"] == pytest.approx(2 * one["activations"], rel=0.05)
    assert inference_bytes(model, torch.randn(8, 1, 256), "fp32") > inference_bytes(
        model, torch.randn(4, 1, 256), "fp32"
    )


def test_synth_benchmark_cli(capsys):
    assert main(["bench", "--synth", "synth-bac30", "--n", "400", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 400 and r["spectra_per_s"] > 0 and r["target_per_s"] == 10_000
    assert set(r) >= {"setup_seconds", "cores"}
    # The speed is the fastest of the repeats, each of which is reported.
    assert len(r["seconds_each"]) == 3 and r["seconds"] == min(r["seconds_each"])
    assert r["spectra_per_s"] == pytest.approx(400 / min(r["seconds_each"]))
    assert benchmark_synth("synth-ir17", 50, version="3")["version"] == "3"


def test_the_report_states_machine_command_numbers_and_date(tmp_path):
    path = write_report(tmp_path / "BENCHMARKS.md", quick=True)
    text = path.read_text()
    assert text.startswith("# Benchmarks") and "bench --report BENCHMARKS.md" in text and "UTC" in text
    assert "| eager | fp32 |" in text and "fast / eager = **x" in text
    assert "| synth-ir17 v3 |" in text and "| synth-bac30 v2 |" in text
    engines = text.split("## Inference engines", 1)[1].split("\n## ", 1)[0]
    for engine in ("torch_fp32", "onnxruntime_fp32", "onnxruntime_int8"):
        assert engines.count(f"| {engine} |") == 2  # batch 1 and 4 of the quick model
    rows = [line.strip("|").split(" | ") for line in engines.splitlines() if "| ResPeak-8x6" in line]
    for batch in ("1", "4"):  # each ratio is the speeds' quotient within the run
        speed = {r[3]: float(r[4]) for r in rows if r[2] == batch}
        for r in (r for r in rows if r[2] == batch):
            assert float(r[5].strip(" x")) == pytest.approx(
                speed[r[3]] / speed["torch_fp32"], rel=0.02, abs=0.01
            )
    assert "Target onnxruntime_int8 >= x3 torch eager fp32 at width 160, batch 64: not measured" in engines
    assert "`models/synth-ir17_ip.int8.onnx`: int8 micro_f1" in engines


def test_the_engine_targets_hold_only_where_measured_and_reached():
    from peakmixer.studies.bench_engines import targets_met

    row = {"width": 160, "batch": 64, "engine": "onnxruntime_int8", "ratio_to_torch_fp32": 3.1}
    assert targets_met([row])["onnxruntime_int8"]["met"] and not targets_met([row])["onnxruntime_fp32"]["met"]
    assert not targets_met([row | {"batch": 1}])["onnxruntime_int8"]["met"]
    assert not targets_met([row | {"ratio_to_torch_fp32": 2.9}])["onnxruntime_int8"]["met"]


def test_the_gpu_check_script_runs_end_to_end_on_a_cpu(tmp_path):
    # The script is what a GPU session runs once: it must work before anyone spends device time on it.
    out = tmp_path / "gpu"
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "COMPILE": "0"}
    done = subprocess.run(
        [str(REPO / "tools" / "gpu_check.sh"), str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "gpu_benchmarks.md").read_text()
    assert "tools/gpu_check.sh" in text and "| ResPeak-8x6 + MLPMixer-4 | 17 | 16 | fast |" in text
    assert json.loads((out / "evaluate.json").read_text())["micro_f1"] >= 0
