"""Throughput and memory benchmarks, printed as ratios measured in one run (these machines are noisy).

`python -m peakmixer bench --width 160 --n-classes 957` times training steps and inference on random spectra
in two modes, in one process:

- ``eager``: plain fp32 eager PyTorch (AdamW, ``torch.no_grad`` inference);
- ``fast``: what the project really does by default: the training loop's precision (``auto``: bf16 autocast
  where the device supports it), ``torch.inference_mode`` for evaluation, the loop's AdamW; with
  ``--compile`` also ``torch.compile`` (inductor), timed after its compile time, which is reported.

and prints spectra/s per mode, the fast/eager ratios, and memory: on CUDA the allocator's peak per mode; on
CPU (no allocator statistics) what training holds per spectrum, measured, not estimated: the bytes of the
tensors autograd saves for backward, plus weights, gradients and AdamW state, and for inference the largest
activation a layer hands on. `--synth` times the synthetic generators instead. BENCHMARKS.md is written by
``python -m peakmixer bench --report BENCHMARKS.md`` (`write_report`).
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from peakmixer.models import build_model, describe, profile_model
from peakmixer.train.device import (
    autocast,
    cpu_has_native_bf16,
    kernel_flags,
    onednn_isa_cap,
    resolve_device,
    resolve_precision,
)
from peakmixer.train.prepare import loss_fn

MODES = ("eager", "fast")
# On a CPU where the fast path stays fp32 but bf16 is native (AVX512-BF16 on an Intel without AMX), a third
# row shows what bf16 autocast would do there; where bf16 is only emulated the row is skipped and named (it
# would take minutes to time something 8-20x slower than fp32).
ALL_MODES = (*MODES, "bf16")


def cpu_kernel_flags() -> dict[str, Any]:
    """This CPU's `kernel_flags`, oneDNN's ISA cap where set, and whether bf16 is native (reported with every
    result: BENCHMARKS.md names them)."""
    return {
        "flags": kernel_flags(),
        "onednn_max_cpu_isa": onednn_isa_cap(),
        "native_bf16": cpu_has_native_bf16(),
    }


def benchmark_synth(
    kind: str = "synth-ir17", n: int = 20_000, seed: int = 0, version: str | None = None, repeats: int = 3
) -> dict[str, Any]:
    """Generation + save speed of a synthetic benchmark (target: >= 10k spectra/s on 2 cores).

    The once-per-process cost of the realistic versions' molecule pool (RDKit matches of 5 000 structures)
    and, from v6, of its normal-mode table is timed apart as ``setup_seconds``; then `n` spectra are generated
    and saved, `repeats` times. The speed is the fastest repeat's, as ``timeit`` reports: a slower repeat
    measures what else the machine did (the same code's first 20k of v4 took 2.1 s and its second 1.6 s,
    measured 2026-11-30); every repeat is in ``seconds_each``."""
    from peakmixer.synth.benchmarks import REALISTIC_IR17, make_synth
    from peakmixer.synth.ir17_realistic import knobs_for, prepare, worker_count
    from peakmixer.synth.render import GENERATOR_VERSION

    version = version or GENERATOR_VERSION
    t0 = time.perf_counter()
    if kind == "synth-ir17" and version in REALISTIC_IR17:
        prepare(knobs_for(version))
    setup = time.perf_counter() - t0
    each = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            make_synth(kind, n, seed, version).save(Path(tmp) / "bench.npz")
            each.append(time.perf_counter() - t0)
    seconds = min(each)
    return {
        "kind": kind,
        "version": version,
        "n": n,
        "seconds": seconds,
        "seconds_each": each,
        "setup_seconds": setup,
        "spectra_per_s": n / seconds,
        "target_per_s": 10_000,
        "cores": worker_count(),
    }


def _process_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time(fn: Callable[[], None], steps: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, oneDNN/cuDNN kernel choice)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def training_bytes(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str
) -> dict[str, int]:
    """What one training step holds: bytes saved for backward (activations), and weights + gradients + two
    AdamW moments (4 x the parameter bytes)."""
    saved = 0
    weights_at = {p.data_ptr() for p in model.parameters()}  # saved weights are counted with the states

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if t.data_ptr() not in weights_at:
            saved += t.numel() * t.element_size()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(x.device, precision):
        loss = loss_fn("multilabel", model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"activations": saved, "states": 4 * weights}


def inference_bytes(model: torch.nn.Module, x: torch.Tensor, precision: str) -> int:
    """The largest input + output of one leaf module in an inference pass (what must coexist)."""
    peak = 0

    def hook(_m: torch.nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal peak
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        peak = max(peak, sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        model.eval()
        with torch.inference_mode(), autocast(x.device, precision):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return peak


def _measure(
    precision: str,
    inference: bool,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    dev: torch.device,
    compile_model: bool,
) -> dict[str, Any]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    net = model
    compile_seconds = None
    if compile_model:
        net = torch.compile(model)
        t0 = time.perf_counter()
        _train_step(net, opt, x, y, dev, precision)  # the first call compiles (train graph)
        _infer(net, x, dev, precision, inference=True)  # and the eval graph
        compile_seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t_train = _time(lambda: _train_step(net, opt, x, y, dev, precision), steps, dev)
    t_infer = _time(lambda: _infer(net, x, dev, precision, inference=inference), steps, dev)
    batch = len(x)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
        train_mb, infer_mb = peak_mb, None
    else:
        held = training_bytes(model, x, y, precision)
        train_mb = (held["activations"] + held["states"]) / 2**20
        infer_mb = inference_bytes(model, x, precision) / 2**20
        peak_mb = train_mb
    return {
        "precision": precision,
        "compiled": compile_model,
        "compile_seconds": compile_seconds,
        "train_spectra_per_s": batch * steps / t_train,
        "infer_spectra_per_s": batch * steps / t_infer,
        "peak_mem_mb": peak_mb,
        "train_mb_per_spectrum": None if dev.type == "cuda" else train_mb / batch,
        "infer_mb_per_spectrum": None if infer_mb is None else infer_mb / batch,
    }


def _train_step(
    net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, dev, precision: str
) -> None:
    net.train()
    with autocast(dev, precision):
        logits = net(x)
    loss = loss_fn("multilabel", logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _infer(net: torch.nn.Module, x: torch.Tensor, dev, precision: str, *, inference: bool) -> None:
    net.eval()
    with torch.inference_mode() if inference else torch.no_grad(), autocast(dev, precision):
        net(x)


PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_gmacs(dev: torch.device, precision: str, seconds: float = 0.3) -> float:
    """Multiply-accumulates per second (1e9) of one large square matmul in `precision`: what this device's
    best-tuned kernel reaches, the practical ceiling for a model's convolutions and linear layers. Repeated
    for about `seconds` (a CPU without native fp16 or bf16 arithmetic is slow at it: a fixed count could take
    minutes there). On a CPU the size shrinks from 1024 until one product takes at most a third of `seconds`
    (judged from a 256 x 256 probe): an emulated dtype reaches a few GMAC/s at any size, so a large one only
    costs time (1024 x 1024 in emulated bf16 and fp16 took 22 s on an AVX2-only CPU)."""
    n = 8192 if dev.type == "cuda" else 1024
    if dev.type != "cuda":
        probe = _square_product_seconds(256, dev, precision)
        while n > 256 and probe * (n / 256) ** 3 > seconds / 3:
            n //= 2
    once = _square_product_seconds(n, dev, precision)
    reps = max(1, int(seconds / max(once, 1e-6)))
    return n**3 * reps / _square_product_seconds(n, dev, precision, reps) / 1e9


def _square_product_seconds(n: int, dev: torch.device, precision: str, reps: int = 1) -> float:
    a = torch.randn(n, n, device=dev).to(PEAK_DTYPES[precision])
    b = torch.randn(n, n, device=dev).to(PEAK_DTYPES[precision])
    return _time(lambda: torch.mm(a, b), reps, dev)


def roofline(eager: dict[str, Any], macs: float, dev: torch.device) -> dict[str, Any]:
    """How far plain fp32 eager is from this device's matmul ceiling, and so about the largest fast/eager
    ratio that fp32, bf16 or fp16 could give: ``ceiling = best matmul GMAC/s / eager's GMAC/s``.

    `macs` is the model's forward multiply-accumulates per spectrum; a training step counts 3 x that (the
    backward pass computes input and weight gradients, one forward's worth each). An estimate, not a proof:
    the matmul rate is measured briefly (1024 x 1024 on a CPU) on a machine that may be busy, and a model's
    small convolutions seldom run as fast as one large matmul; a measured ratio above it says the estimate
    was low."""
    peaks = {p: matmul_gmacs(dev, p) for p in PEAK_DTYPES}
    achieved = {
        "train": 3 * macs * eager["train_spectra_per_s"] / 1e9,
        "infer": macs * eager["infer_spectra_per_s"] / 1e9,
    }
    best = max(peaks.values())
    return {
        "forward_macs_per_spectrum": macs,
        "matmul_gmacs": peaks,
        "eager_gmacs": achieved,
        "eager_share_of_fp32_peak": {k: v / peaks["fp32"] for k, v in achieved.items()},
        "ceiling": {k: best / v for k, v in achieved.items()},
    }


def benchmark(
    *,
    extractor: str = "respeak",
    mixer: str = "mlpmixer",
    width: int = 64,
    blocks: int | None = None,
    mixer_layers: int = 4,
    n_classes: int = 17,
    input_length: int = 1024,
    batch: int = 64,
    steps: int = 10,
    device: str = "auto",
    compile_model: bool = False,
) -> dict[str, Any]:
    """Train-step and inference throughput of plain fp32 eager against the project's fast path, with the
    ratios fast/eager from the same run (module docstring)."""
    dev = resolve_device(device)
    torch.manual_seed(0)
    x = torch.randn(batch, 1, input_length, device=dev)
    y = torch.randint(0, 2, (batch, n_classes), device=dev).float()
    config = {
        "extractor": extractor,
        "mixer": mixer,
        "width": width,
        "blocks": blocks,
        "mixer_layers": mixer_layers,
        "n_classes": n_classes,
        "input_length": input_length,
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
    }
    out: dict[str, Any] = {}
    fast = resolve_precision("auto", dev)
    modes = {"eager": ("fp32", False), "fast": (fast, True)}
    skipped = {}
    if dev.type == "cpu" and fast != "bf16":
        if cpu_has_native_bf16():
            modes["bf16"] = ("bf16", True)
        else:
            skipped["bf16"] = (
                "this CPU has no native bf16: emulated bf16 is 8-20x slower than fp32, not timed"
            )
    macs = 0.0
    for mode, (precision, inference) in modes.items():
        kw = {"blocks": blocks} if blocks else {}
        model = build_model(
            extractor,
            mixer,
            n_classes=n_classes,
            width=width,
            mixer_layers=mixer_layers,
            input_length=input_length,
            **kw,
        ).to(dev)
        macs = macs or profile_model(model)["macs"]  # every mode's model is the same architecture
        out[mode] = _measure(precision, inference, model, x, y, steps, dev, compile_model and mode == "fast")
    return {
        **out,
        "ratio": {
            "train": out["fast"]["train_spectra_per_s"] / out["eager"]["train_spectra_per_s"],
            "infer": out["fast"]["infer_spectra_per_s"] / out["eager"]["infer_spectra_per_s"],
        },
        "roofline": roofline(out["eager"], macs, dev),
        "config": config,
        "model": describe(model.spec),
        "device": device_name(dev),
        "cpu": cpu_kernel_flags(),
        "skipped": skipped,
        "process_peak_rss_mb": _process_peak_rss_mb(),
    }


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    return f"cpu: {cpu_model()} ({os.cpu_count()} cores)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_result(result: dict[str, Any]) -> str:
    """The human-readable lines of a `benchmark` result."""
    c = result["config"]
    lines = [
        f"{result['model']} on {result['device']}, batch {c['batch']}, {c['steps']} steps, "
        f"{c['threads']} threads"
    ]
    for mode in (m for m in ALL_MODES if m in result):
        r = result[mode]
        mem = (
            f"peak CUDA memory {r['peak_mem_mb']:.0f} MB"
            if r["train_mb_per_spectrum"] is None
            else f"{r['train_mb_per_spectrum']:.2f} MB/spectrum training, "
            f"{r['infer_mb_per_spectrum']:.3f} MB/spectrum inference"
        )
        comp = f", compiled in {r['compile_seconds']:.0f} s" if r["compiled"] else ""
        lines.append(
            f"  {mode:>5} ({r['precision']}{comp}): train {r['train_spectra_per_s']:8.1f} spectra/s, "
            f"infer {r['infer_spectra_per_s']:8.1f} spectra/s; {mem}"
        )
    lines += [f"  {mode:>5} skipped: {why}" for mode, why in result.get("skipped", {}).items()]
    lines.append(
        f"  fast / eager: train x{result['ratio']['train']:.2f}, infer x{result['ratio']['infer']:.2f}"
    )
    roof = result["roofline"]
    peaks = ", ".join(f"{p} {g:.0f}" for p, g in roof["matmul_gmacs"].items())
    share = roof["eager_share_of_fp32_peak"]
    lines.append(
        f"  matmul ceiling (GMAC/s): {peaks}; fp32 eager runs at "
        f"{share['train']:.0%} (train) / {share['infer']:.0%} (infer) of the fp32 one: a fast path that ran "
        f"at the best matmul rate would gain about x{roof['ceiling']['train']:.2f} / "
        f"x{roof['ceiling']['infer']:.2f}"
    )
    return "\n".join(lines)
