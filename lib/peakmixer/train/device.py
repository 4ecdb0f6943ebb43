"""Where and in what precision a run computes: the device, the CPU's flags, threads, bf16 only where it is
native (emulated bf16 is many times slower than fp32), autocast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from peakmixer.config import (
    ConfigError,
)


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here (use auto or cpu)")
    return device


def cpu_fields(cpuinfo: str | None = None) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (`cpuinfo`: its text, read when not given; {} where
    there is none): the others repeat them."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    first = cpuinfo.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, sep, v in (line.partition(":") for line in first.splitlines()) if sep}


# The instruction sets oneDNN picks its CPU kernels by: two CPUs with the same model name but other sets (an
# AMD EPYC with or without AVX512) sum fp32 in another order, so the same seed trains another model there.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def kernel_flags(cpuinfo: str | None = None) -> list[str]:
    """This CPU's flags among `KERNEL_FLAGS` (`cpuinfo`: the text of /proc/cpuinfo, read when not given)."""
    flags = set(cpu_fields(cpuinfo).get("flags", "").split())
    return [f for f in KERNEL_FLAGS if f in flags]


def cpu_kernels(cpuinfo: str | None = None, isa_cap: str | None = None) -> str:
    """`kernel_flags`, space-separated, and oneDNN's ISA cap where one is set (`isa_cap`: read from the
    environment when not given), e.g. ``"avx2 fma"`` or ``"avx2 fma avx512f cap=AVX2"``: what a stored run
    records beside the CPU's name."""
    cap = onednn_isa_cap() if isa_cap is None else isa_cap
    return " ".join(kernel_flags(cpuinfo) + ([f"cap={cap}"] if cap else []))


# oneDNN runs bf16 convolutions and matmuls natively only where the CPU has bf16 instructions and oneDNN is
# allowed to use them: ONEDNN_MAX_CPU_ISA (or its old name DNNL_MAX_CPU_ISA) below these names emulates bf16.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL")


def onednn_isa_cap() -> str:
    """oneDNN's instruction-set cap for this process (``ONEDNN_MAX_CPU_ISA``, or its old name
    ``DNNL_MAX_CPU_ISA``); empty where none is set."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_has_native_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """True where bf16 arithmetic runs in hardware: the CPU has AVX512-BF16 or AMX-BF16 and oneDNN's ISA is
    not capped below them (`isa_cap`: that cap, read from ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``
    when not given). Elsewhere torch emulates bf16: measured 8x slower than fp32 on an AVX2-only path, 20x
    on a 2-core AMD EPYC without AVX512-BF16 (BENCHMARKS.md)."""
    flags = set(cpu_fields(cpuinfo).get("flags", "").split())
    cap = (onednn_isa_cap() if isa_cap is None else isa_cap).strip().upper()
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and (not cap or cap.startswith(_BF16_ISAS))


def cpu_supports_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """True on CPUs where bf16 autocast pays off: those with AMX tiles, and AMD CPUs with AVX512-BF16, both
    used natively (`cpu_has_native_bf16`). On an Intel CPU, AVX512-BF16 alone does not: measured on a 2-core
    Xeon without AMX, bf16 autocast trained at 0.8x and inferred at 0.7x fp32's speed, while on a 2-core AMD
    EPYC with AVX512-BF16 it trained at 2.1x and inferred at 1.8x (BENCHMARKS.md, each in its time).
    `cpuinfo`: the text of /proc/cpuinfo (read when not given)."""
    fields = cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    pays = "amx_bf16" in flags or ("avx512_bf16" in flags and fields.get("vendor_id") == "AuthenticAMD")
    return pays and cpu_has_native_bf16(cpuinfo, isa_cap)


def default_threads(workers: int = 1) -> int:
    """The CPU threads each of `workers` processes side by side computes with when none are asked for
    (``--threads``, the ``threads`` config key): ``OMP_NUM_THREADS`` where set, else the cores this process
    may use less those already busy (the 1-minute load average, rounded down, leaving at least one), divided
    among the workers; at least 1. Why: threads that wait for a core another process holds stall each other
    (measured on a loaded 2-core machine: one training step 5.9 s at 2 threads, 0.034 s at 1), while on an
    idle machine every core helps."""
    workers = max(workers, 1)
    asked = os.environ.get("OMP_NUM_THREADS", "")
    if asked.isdigit() and int(asked) > 0:
        return max(1, int(asked) // workers)
    cores = usable_cores()
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # no load average here
        busy = 0
    return max(1, (cores - min(busy, cores - 1)) // workers)


_TOLD: set[str] = set()  # notices already printed by this process


def _notice_once(text: str) -> None:
    if text not in _TOLD:
        _TOLD.add(text)
        print(text, file=sys.stderr, flush=True)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run computes in. ``auto``: bf16 on CUDA and on CPUs where it pays off
    (`cpu_supports_bf16`), fp16 (+ GradScaler) on older CUDA, else fp32.

    An explicit ``bf16`` on a CPU without native bf16 (`cpu_has_native_bf16`) runs in fp32 with a one-line
    notice on stderr (once per process), never silently in emulated bf16 at a tenth of the speed; the run
    then records fp32 as its precision, so its identity and its row say what it computed."""
    if name != "auto":
        if name == "fp16" and device.type != "cuda":
            raise ConfigError("precision fp16 needs CUDA (use bf16 or fp32 on CPU)")
        if name == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            _notice_once(
                "[precision] bf16 asked for, but this CPU has no native bf16 (no avx512_bf16 or amx_bf16 in "
                "use): emulated bf16 is 8-20x slower, so this runs in fp32 (precision: fp32 silences this)"
            )
            return "fp32"
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
