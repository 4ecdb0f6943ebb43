"""What both benchmark generators share: Gaussian band windows on an axis, the noise streams, baseline humps
and the provenance a synthetic dataset carries.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, NamedTuple

import numpy as np

from peakmixer.data.dataset import SYNTH_GENERATOR
from peakmixer.synth.streams import child_seed

GENERATOR_VERSION = "2"  # the default version of every kind (what the results store was made with)
# A Gaussian of FWHM w is exp(-4 ln2 (x - c)^2 / w^2); it is evaluated on +-2.5 FWHM (tail below 1e-7).
FOUR_LN2 = np.float32(4.0 * np.log(2.0))
WINDOW_FWHM = 2.5
# Masks widen each band's centre range by this many nominal FWHM on each side (>= 95% of the energy, tested).
MASK_FWHM = 1.0

NOISE_BLOCK = 2048  # rows per noise stream (fixed: it defines the random stream)


def synth_provenance(kind: str, n: int, seed: int, knobs: Any, mask_rule: str) -> dict[str, Any]:
    return {
        "synthetic": True,
        "kind": kind,
        "n": n,
        "seed": seed,
        "generator": SYNTH_GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "knobs": knobs.record() if hasattr(knobs, "record") else asdict(knobs),
        "mask_rule": mask_rule,
    }


class Window(NamedTuple):
    """Unit-height Gaussians of R bands, each on a window of axis columns (see `gaussian_windows`)."""

    start: np.ndarray  # (R,) first column of each row's window, or (1,) when all rows share one window
    values: np.ndarray  # (R, W) float32

    def add_to(self, out: np.ndarray, rows: np.ndarray, amp: np.ndarray, sel: Any = slice(None)) -> None:
        """``out[rows[i], window] += amp[i] * values[sel][i]`` for C-contiguous 2-D `out`, distinct `rows`."""
        v = self.values[sel] * np.asarray(amp, dtype=np.float32)[:, None]
        width = v.shape[1]
        if len(self.start) == 1:
            out[rows, self.start[0] : self.start[0] + width] += v
            return
        if not out.flags.c_contiguous:  # reshape would copy, and the sum would be lost
            raise ValueError("a band window needs a C-contiguous array")
        flat = (rows * out.shape[1])[:, None] + self.start[sel][:, None] + np.arange(width)
        out.reshape(-1)[flat] += v


def gaussian_windows(
    axis: np.ndarray, axis32: np.ndarray, min_dx: float, centre: np.ndarray, fwhm: np.ndarray
) -> Window:
    """Unit-height Gaussians (R,) with centres `centre` and widths `fwhm` (cm-1), on +-2.5 FWHM windows.

    Bands whose centres stay close (a fixed band with jitter, a textbook range) share one window, which is
    added by row slices; scattered ones (skeleton bands) get one window per row, added through flat indices,
    several times slower per value. Windows are shifted inward at the axis ends, never clipped.
    """
    length = len(axis)
    half = int(np.ceil(WINDOW_FWHM * float(fwhm.max()) / min_dx))
    width = min(2 * half + 1, length)
    start = np.clip(np.searchsorted(axis, centre) - half, 0, length - width)
    lo, hi = int(start.min()), int(start.max())
    if hi - lo <= 2 * width:
        d = np.broadcast_to(axis32[lo : hi + width], (len(centre), hi - lo + width)).copy()
        start = np.array([lo])
    else:
        d = axis32[start[:, None] + np.arange(width)]
    d -= centre.astype(np.float32)[:, None]
    d *= (np.sqrt(FOUR_LN2) / fwhm.astype(np.float32))[:, None]
    d *= d
    np.negative(d, out=d)
    return Window(start, np.exp(d, out=d))


def axis_helpers(axis: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    t = (axis - axis[0]) / (axis[-1] - axis[0]) * 2.0 - 1.0  # position along the axis in [-1, 1]
    return axis.astype(np.float32), float(np.diff(axis).min()), t.astype(np.float32)


def add_humps(
    X: np.ndarray, axis32: np.ndarray, centre: np.ndarray, width: np.ndarray, level: np.ndarray
) -> None:
    """X (N, L) += level * exp(-(x - centre)^2 / (2 width^2)) per row, in place, on the whole axis."""
    buf = np.subtract(axis32, centre.astype(np.float32)[:, None])
    buf *= (1.0 / width).astype(np.float32)[:, None]
    buf *= buf
    buf *= np.float32(-0.5)
    np.exp(buf, out=buf)
    buf *= np.asarray(level, dtype=np.float32)[:, None]
    X += buf


def standard_normal(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """(N, L) float32 standard normals in fixed row blocks, each from its own stream, filled on threads.

    Noise is the costliest draw; numpy's generators release the GIL, so the blocks fill in parallel. The block
    streams depend only on (seed, block start), so the result is the same for any number of threads.
    """
    out = np.empty(shape, dtype=np.float32)

    def fill(start: int) -> None:
        rng = np.random.default_rng([child_seed(seed, 2), start])
        rng.standard_normal(out=out[start : start + NOISE_BLOCK], dtype=np.float32)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(0, shape[0], NOISE_BLOCK)))
    return out
