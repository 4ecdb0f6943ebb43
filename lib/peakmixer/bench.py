"""Throughput and memory benchmarks, printed as ratios measured in one run (these machines are noisy).

`python -m peakmixer bench --extractor respeak --mixer mlpmixer --width 64` trains and infers a few
batches of random spectra in each precision and reports spectra/s, the speed-up over fp32, and peak
memory (CUDA allocator, or process RSS on CPU).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import torch

from .models import build_model, describe
from .train import autocast, cpu_supports_bf16, loss_fn, resolve_device


def benchmark_synth(kind: str = "synth-ir17", n: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Generation + save speed of a synthetic benchmark (target: >= 10k spectra/s on 2 cores)."""
    import tempfile
    from pathlib import Path

    from .synth import make_synth

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_synth(kind, n, seed).save(Path(tmp) / "bench.npz")
        seconds = time.perf_counter() - t0
    return {"kind": kind, "n": n, "seconds": seconds, "spectra_per_s": n / seconds, "target_per_s": 10_000}


def _process_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time(fn, steps: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, oneDNN/cuDNN kernel choice)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def benchmark(
    *,
    extractor: str = "respeak",
    mixer: str = "mlpmixer",
    width: int = 64,
    mixer_layers: int = 4,
    n_classes: int = 17,
    input_length: int = 1024,
    batch: int = 64,
    steps: int = 10,
    device: str = "auto",
    precisions: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Train-step and inference throughput per precision, with ratios to fp32 from the same run."""
    dev = resolve_device(device)
    if precisions is None:
        bf16 = dev.type == "cuda" or (dev.type == "cpu" and cpu_supports_bf16())
        precisions = ("fp32", "bf16") if bf16 else ("fp32",)
    torch.manual_seed(0)
    x = torch.randn(batch, 1, input_length, device=dev)
    y = torch.randint(0, 2, (batch, n_classes), device=dev).float()
    rows = []
    for precision in precisions:
        model = build_model(
            extractor,
            mixer,
            n_classes=n_classes,
            width=width,
            mixer_layers=mixer_layers,
            input_length=input_length,
        ).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)

        def train_step(model=model, opt=opt, precision=precision) -> None:
            model.train()
            with autocast(dev, precision):
                logits = model(x)
            loss = loss_fn("multilabel", logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def infer(model=model, precision=precision) -> None:
            model.eval()
            with torch.no_grad(), autocast(dev, precision):
                model(x)

        t_train = _time(train_step, steps, dev)
        t_infer = _time(infer, steps, dev)
        rows.append(
            {
                "precision": precision,
                "train_spectra_per_s": batch * steps / t_train,
                "infer_spectra_per_s": batch * steps / t_infer,
                # The CUDA allocator's peak is per precision; on CPU only the process peak RSS is known.
                "peak_memory_mb": torch.cuda.max_memory_allocated(dev) / 2**20
                if dev.type == "cuda"
                else None,
            }
        )
    base = rows[0]
    for r in rows:
        r["train_speedup_vs_fp32"] = r["train_spectra_per_s"] / base["train_spectra_per_s"]
        r["infer_speedup_vs_fp32"] = r["infer_spectra_per_s"] / base["infer_spectra_per_s"]
    spec = build_model(
        extractor,
        mixer,
        n_classes=n_classes,
        width=width,
        mixer_layers=mixer_layers,
        input_length=input_length,
    ).spec
    return {
        "model": describe(spec),
        "device": str(dev),
        "batch": batch,
        "steps": steps,
        "results": rows,
        "process_peak_rss_mb": _process_peak_rss_mb(),
    }
