"""BENCHMARKS.md: the reference configurations measured in fresh processes (`bench`), sweep workers'
throughput, the fast path's accuracy check, and the GPU section from a device run's JSON files.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from peakmixer.config import MissingFile
from peakmixer.deploy.onnx_export import describe_allowed
from peakmixer.files import write_text
from peakmixer.paths import TRAIN_PARAMS
from peakmixer.studies.bench import (
    ALL_MODES,
    PEAK_DTYPES,
    cpu_kernel_flags,
    device_name,
)
from peakmixer.train.device import (
    KERNEL_FLAGS,
    resolve_precision,
)

# The reference configurations: the paper-size model (width 160, K = 957) and the Fig. 1 width.
REPORT_MODELS = (
    {"width": 160, "blocks": 6, "mixer_layers": 4, "n_classes": 957},
    {"width": 64, "blocks": 6, "mixer_layers": 4, "n_classes": 17},
)


def _bench_args(model: dict[str, int], steps: int) -> list[str]:
    """The `bench` command line of one of `REPORT_MODELS`."""
    args = ["bench"]
    for key in ("width", "blocks", "mixer_layers", "n_classes"):
        args += [f"--{key.replace('_', '-')}", str(model[key])]
    return [*args, "--steps", str(steps)]


def _run_json(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `python -m peakmixer …` in its own process (threads and memory of its own), its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "peakmixer", *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def workers_throughput(runs: int = 2, epochs: int = 2, n: int = 1200) -> dict[str, Any]:
    """Runs per hour of a short Fig. 1-like training (ResPeak-32 + MLPMixer-4, synth-ir17) as one process
    with all threads, one run after the other, against one single-thread process per core side by side."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        from peakmixer.synth.benchmarks import ensure_synth

        data = ensure_synth("synth-ir17", n, 0, tmp)
        base = [
            "--config",
            str(TRAIN_PARAMS / "synth_ir17.yaml"),
            "--set",
            f"data.path={data}",
            "--set",
            "model.width=32",
            "--set",
            "model.mixer_layers=4",
            "--set",
            f"optim.epochs={epochs}",
            "--set",
            "optim.patience=100",
            "--set",
            "progress=false",
        ]

        def command(i: int, tag: str) -> list[str]:
            return [
                sys.executable,
                "-m",
                "peakmixer",
                "train",
                *base,
                "--set",
                f"out_dir={tmp}/{tag}{i}",
                "--set",
                f"seed={i}",
            ]

        t0 = time.perf_counter()
        for i in range(runs):
            subprocess.run(
                command(i, "serial"),
                check=True,
                capture_output=True,
                env={**os.environ, "OMP_NUM_THREADS": str(cores)},
            )
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                command(i, "parallel"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            for i in range(runs)
        ]
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError(p.stderr.read().decode() if p.stderr else "a parallel run failed")
        parallel = time.perf_counter() - t0
    return {
        "runs": runs,
        "epochs": epochs,
        "n": n,
        "cores": cores,
        f"1x{cores}_threads_runs_per_hour": runs * 3600 / serial,
        f"{runs}x1_thread_runs_per_hour": runs * 3600 / parallel,
        "ratio": serial / parallel,
    }


def _flags_line(cpu: dict[str, Any]) -> str:
    cap = f"; oneDNN capped at {cpu['onednn_max_cpu_isa']}" if cpu["onednn_max_cpu_isa"] else ""
    native = "native bf16" if cpu["native_bf16"] else "no native bf16 (bf16 would be emulated)"
    flags = " ".join(cpu["flags"]) or "none of " + ", ".join(KERNEL_FLAGS)
    return f"CPU flags that choose the kernels: {flags}{cap}: {native}."


def write_report(path: Path, *, quick: bool = False) -> Path:
    """BENCHMARKS.md: machine, commands, numbers and date, measured now (`quick`: tiny sizes and two of the
    generators, for tests)."""
    from peakmixer.synth.benchmarks import VERSIONS

    steps = 2 if quick else 10
    models = [dict(m, width=8, n_classes=17) for m in REPORT_MODELS[:1]] if quick else REPORT_MODELS
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{device_name(torch.device('cpu'))}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, "
        "by `python -m peakmixer bench --report BENCHMARKS.md` (every number below comes from that one run; "
        "ratios are measured within one process, so they survive a noisy machine better than speeds do).",
        "",
        _flags_line(cpu_kernel_flags()),
        "",
        "## Training and inference step: plain fp32 eager against the project's fast path",
        "",
        "| model | K | threads | mode | precision | train spectra/s | infer spectra/s | train MB/spectrum | "
        "infer MB/spectrum |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios, roofs, fast_rows = [], [], {}
    for m in models:
        args = _bench_args(m, steps)
        r = _run_json(args)
        roofs.append(_roofline_row(r))
        fast_rows[m["width"]] = r["fast"]
        for mode in (m for m in ALL_MODES if m in r):
            x = r[mode]
            lines.append(
                f"| {r['model']} | {m['n_classes']} | {r['config']['threads']} | {mode} | {x['precision']} | "
                f"{x['train_spectra_per_s']:.0f} | {x['infer_spectra_per_s']:.0f} | "
                f"{_mb(x['train_mb_per_spectrum'])} | {_mb(x['infer_mb_per_spectrum'])} |"
            )
        ratios.append(
            f"- {r['model']}: fast / eager = **x{r['ratio']['train']:.2f}** training, "
            f"**x{r['ratio']['infer']:.2f}** inference (`{' '.join(args)}`)"
            + (
                f"; bf16 autocast / eager would be x{_ratio(r, 'bf16', 'train'):.2f} training, "
                f"x{_ratio(r, 'bf16', 'infer'):.2f} inference"
                if "bf16" in r
                else "".join(f"; {mode} {why}" for mode, why in r.get("skipped", {}).items())
            )
        )
    lines += [
        "",
        *ratios,
        "",
        "## How far plain fp32 eager is from this machine's ceiling",
        "",
        "A large square matmul is the fastest thing this device does per multiply-accumulate. The model's "
        "forward MACs per spectrum (training: 3 x, for the two gradients) times eager's spectra/s says how "
        "much of that ceiling fp32 eager already uses, and so about the largest fast/eager ratio that fp32, "
        "bf16 or fp16 could give (best matmul GMAC/s over eager's GMAC/s). An estimate: the matmul is timed "
        "briefly, and a model's small convolutions seldom run as fast as one large matmul.",
        "",
        "| model | matmul GMAC/s fp32 / bf16 / fp16 | eager GMAC/s train / infer | share of the fp32 "
        "ceiling train / infer | about the largest fast/eager train / infer |",
        "|---|---|---|---|---|",
        *roofs,
        "",
    ]
    lines += engines_markdown(_run_json(["bench", "--engines", *(["--quick"] if quick else [])]))
    if not quick:
        compiled = REPORT_MODELS[1]
        args = [*_bench_args(compiled, steps), "--compile"]
        with tempfile.TemporaryDirectory() as cache:  # an empty inductor cache: what a user's first run pays
            c = _run_json(args, env={"TORCHINDUCTOR_CACHE_DIR": cache})["fast"]
        uncompiled = fast_rows[compiled["width"]]
        plain = uncompiled["train_spectra_per_s"]
        saved = 1 / plain - 1 / c["train_spectra_per_s"]  # seconds saved per training spectrum
        payback = (
            f"it pays back after {c['compile_seconds'] / saved:,.0f} training spectra "
            f"({c['compile_seconds'] / saved / plain / 60:.0f} min of uncompiled training)"
            if saved > 0
            else "it never pays back, since the compiled step is not faster"
        )
        lines += [
            "## torch.compile (inductor) on this CPU",
            "",
            f"`{' '.join(args)}`, with an empty inductor cache: the first training step and inference call, "
            f"which compile the two graphs, took **{c['compile_seconds']:.0f} s**; then "
            f"{c['train_spectra_per_s']:.0f} training and "
            f"{c['infer_spectra_per_s']:.0f} inference spectra/s, against {plain:.0f} and "
            f"{uncompiled['infer_spectra_per_s']:.0f} uncompiled (the fast row above): {payback}. "
            "The training loop does not compile: a run must be longer than that pay-back to gain from it.",
            "",
        ]
    lines += [
        "## Synthetic generators",
        "",
        "| generator | spectra | cores it may use | spectra/s (generate + save, best of 3) | slowest of 3 | "
        "once per process (s) |",
        "|---|---|---|---|---|---|",
    ]
    made = [(kind, v) for kind, versions in VERSIONS.items() for v in versions]
    if quick:  # one realistic IR version and the bacteria generator stand for the rest
        made = [("synth-ir17", VERSIONS["synth-ir17"][1]), ("synth-bac30", VERSIONS["synth-bac30"][0])]
    for kind, version in made:
        s = _run_json(["bench", "--synth", kind, "--version", version, "--n", "2000" if quick else "20000"])
        speed, setup = f"{s['spectra_per_s']:.0f}", f"{s['setup_seconds']:.1f}"
        slowest = f"{s['n'] / max(s['seconds_each']):.0f}"
        lines.append(f"| {kind} v{version} | {s['n']} | {s['cores']} | {speed} | {slowest} | {setup} |")
    if not quick:
        w = workers_throughput()
        serial = w[f"1x{w['cores']}_threads_runs_per_hour"]
        parallel = w[f"{w['runs']}x1_thread_runs_per_hour"]
        lines += [
            "",
            "## Sweep workers: one process with every thread, or one single-thread process per core",
            "",
            f"{w['runs']} short training runs (ResPeak-32 + MLPMixer-4, synth-ir17 n = {w['n']}, "
            f"{w['epochs']} epochs each): 1 x {w['cores']} threads one after the other **{serial:.0f}** "
            "runs/h; "
            f"{w['runs']} x 1 thread side by side **{parallel:.0f}** runs/h (x{w['ratio']:.2f}). "
            "`sweep --workers N` runs N at once with cores/N threads each.",
        ]
        a = accuracy_check()
        lines += [
            "",
            "## Accuracy of the fast path",
            "",
            "The default budget (`params/train/synth_ir17.yaml`, synth-ir17 n = 4000) in fp32 and in the "
            f"fast path's precision ({a['fast_precision']}), seeds {a['seeds']}: test micro-F1 "
            + ", ".join(f"{e:.4f} / {f:.4f}" for e, f in zip(a["eager"], a["fast"], strict=True))
            + f"; mean change {a['mean_change']:+.4f} (largest |change| {a['max_abs_change']:.4f}).",
        ]
    lines.append("")
    write_text(path, "\n".join(lines))
    return path


def engines_markdown(r: dict[str, Any]) -> list[str]:
    """The inference-engines section from `bench --engines --json` (`studies.bench_engines`)."""
    lines = [
        "## Inference engines: torch, ONNX Runtime fp32 and int8",
        "",
        f"`python -m peakmixer bench --engines`, {r['threads']} threads, onnxruntime {r['onnxruntime']}: "
        "spectra/s of inference per engine and the ratio to torch eager fp32 (`inference_mode`) measured "
        f"in the same run (each the fastest of {r['repeats']} turns; freshly initialised weights, since "
        "speed does not depend on them). ONNX Runtime runs the file `export --format onnx` writes; int8 is "
        "static (QDQ, per-channel 7-bit int8 weights, uint8 activations; the first and last products fp32).",
        "",
        "| model | K | batch | engine | spectra/s | x torch eager fp32 |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {x['model']} | {x['n_classes']} | {x['batch']} | {x['engine']} | {x['spectra_per_s']:.0f} | "
        f"x{x['ratio_to_torch_fp32']:.2f} |"
        for x in r["rows"]
    ]
    lines.append("")
    lines += [f"- {engine} skipped: {why}" for engine, why in r["skipped"].items()]
    for engine, t in r["targets"].items():
        got = "not measured in this run" if t["ratio"] is None else f"**x{t['ratio']:.2f}**"
        verdict = "met" if t["met"] else "not met"
        lines.append(
            f"- Target {engine} >= x{t['target']:g} torch eager fp32 at width {t['width']}, batch "
            f"{t['batch']}: {got}, {verdict}."
        )
    for name, c in r["int8_checks"].items():
        if c:
            lines.append(
                f"- `models/{name}`: int8 {c['metric']} {c['int8']:.4f} against fp32 {c['fp32']:.4f} on "
                f"{c['n_spectra']} {c['split']} spectra ({c['change']:+.4f}; allowed "
                f"{describe_allowed(c['metric'], c['n_spectra'], c['bound'])}), "
                "measured when it was exported."
            )
    return [*lines, ""]


def accuracy_check(seeds: tuple[int, ...] = (0, 1, 2), n: int = 4000) -> dict[str, Any]:
    """Test micro-F1 of the default budget trained in fp32 and in the fast path's precision, per seed."""
    from peakmixer.synth.benchmarks import ensure_synth
    from peakmixer.train.config import load_config
    from peakmixer.train.loop import train

    config = TRAIN_PARAMS / "synth_ir17.yaml"
    fast_precision = resolve_precision("auto", torch.device("cpu"))
    scores: dict[str, list[float]] = {"eager": [], "fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = ensure_synth("synth-ir17", n, 0, tmp)
        for seed in seeds:
            for mode, precision in (("eager", "fp32"), ("fast", "auto")):
                sets = [
                    f"data.path={data}",
                    f"seed={seed}",
                    f"precision={precision}",
                    f"out_dir={tmp}/{mode}{seed}",
                    "progress=false",
                    "device=cpu",
                ]
                scores[mode].append(train(load_config(config, sets))["test"]["micro_f1"])
    change = [f - e for e, f in zip(scores["eager"], scores["fast"], strict=True)]
    return {
        "seeds": list(seeds),
        "fast_precision": fast_precision,
        **scores,
        "mean_change": sum(change) / len(change),
        "max_abs_change": max(abs(c) for c in change),
    }


def _roofline_row(result: dict[str, Any]) -> str:
    """One row of the report's ceiling table."""
    r = result["roofline"]
    peaks = " / ".join(f"{r['matmul_gmacs'][p]:.0f}" for p in PEAK_DTYPES)
    eager, share, ceiling = r["eager_gmacs"], r["eager_share_of_fp32_peak"], r["ceiling"]
    return (
        f"| {result['model']} | {peaks} | {eager['train']:.0f} / {eager['infer']:.0f} | "
        f"{share['train']:.0%} / {share['infer']:.0%} | x{ceiling['train']:.2f} / x{ceiling['infer']:.2f} |"
    )


def _ratio(result: dict[str, Any], mode: str, what: str) -> float:
    return result[mode][f"{what}_spectra_per_s"] / result["eager"][f"{what}_spectra_per_s"]


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def gpu_markdown(folder: Path, command: str) -> str:
    """The GPU section of BENCHMARKS.md from the JSON files `tools/gpu_check.sh` wrote into `folder`."""
    results = [json.loads(p.read_text()) for p in folder.glob("bench_w*.json")]
    results.sort(key=lambda r: (r["config"]["width"], r["fast"]["compiled"]))
    if not results:
        raise MissingFile(f"{folder}: no bench_w*.json (run tools/gpu_check.sh first)")
    evaluation = folder / "evaluate.json"
    micro = json.loads(evaluation.read_text()).get("micro_f1") if evaluation.exists() else None
    lines = [
        f"## GPU: {results[0]['device']}",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `{command}`; target >= 20 000 "
        "training spectra/s at width 160 (fast path)."
        + (f" Smoke run (train + evaluate there): test micro-F1 {micro:.3f}." if micro is not None else ""),
        "",
        "| model | K | batch | mode | precision | compiled | train spectra/s | infer spectra/s | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for mode in (m for m in ALL_MODES if m in r):
            x = r[mode]
            comp = f"yes ({x['compile_seconds']:.0f} s)" if x["compiled"] else "no"
            lines.append(
                f"| {r['model']} | {r['config']['n_classes']} | {r['config']['batch']} | {mode} | "
                f"{x['precision']} | {comp} | {x['train_spectra_per_s']:.0f} | "
                f"{x['infer_spectra_per_s']:.0f} | {x['peak_mem_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"
