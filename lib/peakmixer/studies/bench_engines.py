"""Inference engines side by side (`python -m peakmixer bench --engines`): torch eager fp32, torch bf16
autocast where this CPU runs bf16 natively, ONNX Runtime fp32 and ONNX Runtime static int8, at each width and
batch size, in one process, with the ratios to torch eager fp32.

Speed does not depend on what the weights are, so the models are freshly initialised (seed 0) and int8 is
calibrated on random spectra; how much int8 changes a trained model's accuracy is measured when it is
exported (`deploy.quantize_int8`), and the shipped int8 models' checks are read into the result.
Each engine is timed `repeats` times, the engines taking turns, and its fastest repeat counts (a slower one
measures what else the machine did).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from peakmixer.architecture import DEFAULTS
from peakmixer.deploy.onnx_export import (
    quantize_static_int8,
    read_metadata,
    run_session,
    session,
    write_onnx,
)
from peakmixer.models import build_model, describe
from peakmixer.paths import MODELS_DIR
from peakmixer.studies.bench import cpu_kernel_flags, device_name
from peakmixer.train.device import autocast, cpu_has_native_bf16

ENGINES = ("torch_fp32", "torch_bf16", "onnxruntime_fp32", "onnxruntime_int8")
# The reference models: the paper's size (K = 957 substructures) and the Fig. 1 width (17 groups).
CLASSES_AT_WIDTH = {160: 957, 64: 17}
# The targets, at width 160 and batch 64, as ratios to torch eager fp32.
TARGETS = {"onnxruntime_int8": 3.0, "onnxruntime_fp32": 1.3}
TARGET_AT = {"width": 160, "batch": 64}


def _best_time(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def _runners(model: torch.nn.Module, tmp: Path, length: int) -> tuple[dict[str, Callable], dict[str, str]]:
    """Each engine as a function of (B, 1, L) float32 spectra, and the engines skipped with the reason."""
    skipped = {}
    runners: dict[str, Callable[[np.ndarray], object]] = {}

    def eager(X: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return model(torch.from_numpy(X))

    runners["torch_fp32"] = eager
    if cpu_has_native_bf16():

        def bf16(X: np.ndarray) -> torch.Tensor:
            with torch.inference_mode(), autocast(torch.device("cpu"), "bf16"):
                return model(torch.from_numpy(X))

        runners["torch_bf16"] = bf16
    else:
        skipped["torch_bf16"] = "bf16 is emulated on this CPU (no AVX512-BF16 or AMX): 8-20x slower than fp32"
    fp32, folded, int8 = tmp / "fp32.onnx", tmp / "folded.onnx", tmp / "int8.onnx"
    write_onnx(model, fp32, {}, length)
    write_onnx(model, folded, {}, length, compact=False)
    calibration = np.random.default_rng(0).random((64, 1, length), dtype=np.float32)
    quantize_static_int8(folded, int8, calibration)
    for name, path in (("onnxruntime_fp32", fp32), ("onnxruntime_int8", int8)):
        sess = session(path)
        runners[name] = lambda X, s=sess: run_session(s, X, batch=len(X))
    return runners, skipped


def benchmark_engines(
    widths: tuple[int, ...] = (64, 160),
    batches: tuple[int, ...] = (1, 64),
    *,
    blocks: int = DEFAULTS.blocks,
    mixer_layers: int = DEFAULTS.mixer_layers,
    n_classes: int | None = None,
    input_length: int = DEFAULTS.input_length,
    repeats: int = 5,
    seconds: float = 1.0,
    models_dir: Path = MODELS_DIR,
) -> dict[str, Any]:
    """Spectra/s per engine, width and batch (module docstring), with the ratios to torch eager fp32, the
    targets and whether they hold, and the int8 accuracy checks of the shipped models."""
    rows, skipped = [], {}
    for width in widths:
        torch.manual_seed(0)
        k = n_classes or CLASSES_AT_WIDTH.get(width, 17)
        model = build_model(
            "respeak",
            "mlpmixer",
            n_classes=k,
            width=width,
            blocks=blocks,
            mixer_layers=mixer_layers,
            input_length=input_length,
        ).eval()
        with tempfile.TemporaryDirectory(prefix="peakmixer-bench-") as tmp:
            runners, skipped = _runners(model, Path(tmp), input_length)
            for batch in batches:
                X = np.random.default_rng(1).random((batch, 1, input_length), dtype=np.float32)
                calls = {}
                for name, run in runners.items():  # a warm-up call, then enough calls for ~`seconds`
                    run(X)
                    calls[name] = max(1, int(seconds / max(_best_time(lambda r=run, x=X: r(x), 1), 1e-6)))
                best = dict.fromkeys(runners, float("inf"))
                for _ in range(repeats):
                    for name, run in runners.items():
                        best[name] = min(best[name], _best_time(lambda r=run, x=X: r(x), calls[name]))
                base = batch / best["torch_fp32"]
                for name in runners:
                    speed = batch / best[name]
                    rows.append(
                        {
                            "model": describe(model.spec),
                            "width": width,
                            "n_classes": k,
                            "batch": batch,
                            "engine": name,
                            "spectra_per_s": round(speed, 2),
                            "ratio_to_torch_fp32": round(speed / base, 3),
                        }
                    )
    return {
        "device": device_name(torch.device("cpu")),
        "cpu": cpu_kernel_flags(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": _ort_version(),
        "input_length": input_length,
        "repeats": repeats,
        "rows": rows,
        "skipped": skipped,
        "targets": targets_met(rows),
        "int8_checks": shipped_int8_checks(models_dir),
    }


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def targets_met(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each target (ratio at width 160, batch 64) and whether this run met it; absent rows are not met."""
    out = {}
    for engine, target in TARGETS.items():
        got = next(
            (
                r["ratio_to_torch_fp32"]
                for r in rows
                if r["engine"] == engine and all(r[k] == v for k, v in TARGET_AT.items())
            ),
            None,
        )
        out[engine] = {"target": target, "ratio": got, "met": got is not None and got >= target, **TARGET_AT}
    return out


def shipped_int8_checks(models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """The accuracy check each shipped int8 model carries (`quantize_int8` measured it at export)."""
    return {p.name: read_metadata(p).get("int8_check") for p in sorted(Path(models_dir).glob("*.int8.onnx"))}


def describe_engines(result: dict[str, Any]) -> str:
    """A table for a terminal: spectra/s and the ratio to torch eager fp32 per width, batch and engine."""
    lines = [
        f"{result['device']}, {result['threads']} threads, torch {result['torch']}, "
        f"onnxruntime {result['onnxruntime']}",
        f"{'model':<30} {'batch':>5} {'engine':<18} {'spectra/s':>10} {'x torch fp32':>12}",
    ]
    for r in result["rows"]:
        name = f"{r['model']} K={r['n_classes']}"
        lines.append(
            f"{name:<30} {r['batch']:>5} {r['engine']:<18} {r['spectra_per_s']:>10.1f} "
            f"{r['ratio_to_torch_fp32']:>12.2f}"
        )
    lines += [f"skipped {k}: {why}" for k, why in result["skipped"].items()]
    for engine, t in result["targets"].items():
        got = "not measured" if t["ratio"] is None else f"x{t['ratio']:.2f}"
        lines.append(
            f"target {engine} >= x{t['target']} at width {t['width']}, batch {t['batch']}: {got} "
            f"({'met' if t['met'] else 'NOT met'})"
        )
    return "\n".join(lines)
