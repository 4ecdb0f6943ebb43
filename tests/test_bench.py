"""The benchmark commands run and report ratios; their numbers are never asserted (noisy machines)."""

import json

from peakmixer.bench import benchmark, benchmark_synth
from peakmixer.cli import main


def test_model_benchmark_reports_ratios_to_fp32():
    r = benchmark(width=4, input_length=128, batch=4, steps=1, precisions=("fp32", "bf16"), mixer_layers=1)
    assert [row["precision"] for row in r["results"]] == ["fp32", "bf16"]
    assert r["results"][0]["train_speedup_vs_fp32"] == 1.0
    assert all(row["train_spectra_per_s"] > 0 and row["infer_spectra_per_s"] > 0 for row in r["results"])
    assert r["model"] == "ResPeak-4x6 + MLPMixer-1" and r["process_peak_rss_mb"] > 0


def test_synth_benchmark_cli(capsys):
    assert main(["bench", "--synth", "synth-bac30", "--n", "400", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 400 and r["spectra_per_s"] > 0 and r["target_per_s"] == 10_000
    assert benchmark_synth("synth-ir17", 50)["kind"] == "synth-ir17"
