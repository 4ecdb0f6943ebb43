"""The preprocessing steps: each a small dataclass whose fields are its parameters (with their defaults) and
whose `apply` maps spectra (N, L) on an ascending axis (L,) to spectra on a (possibly new) axis.

    crop       keep `start` <= x <= `stop`
    despike    Whitaker-Hayes: modified z-scores of the differenced spectrum; spikes replaced by neighbours
    smooth     Savitzky-Golay (scipy.signal.savgol_filter)
    baseline   any pybaselines method by name, with its parameters; the fitted baseline is subtracted
    normalize  minmax, area, vector or snv, per spectrum
    resample   onto `n` evenly spaced points from `start` to `stop`
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from peakmixer.config import ConfigError
from peakmixer.data.dataset import resample_spectra


@dataclass
class Step:
    """One step; `apply` returns the new axis and spectra, `details` what a figure shows of it."""

    name: ClassVar[str] = ""

    def apply(self, x: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.apply_with_details(x, Y)[:2]

    def apply_with_details(self, x: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """The new axis and spectra, and what a figure shows of the step (a fitted baseline, spikes)."""
        raise NotImplementedError


@dataclass
class Crop(Step):
    name: ClassVar[str] = "crop"
    start: float = 400.0  # cm-1
    stop: float = 4000.0

    def apply_with_details(self, x, Y):
        keep = (x >= self.start) & (x <= self.stop)
        if keep.sum() < 2:
            raise ConfigError(
                f"crop {self.start:g}-{self.stop:g} cm-1 leaves {int(keep.sum())} points of the axis "
                f"{x[0]:.0f}-{x[-1]:.0f} cm-1"
            )
        return x[keep], Y[:, keep], {}


def modified_z(d: np.ndarray) -> np.ndarray:
    """Modified z-scores per row, 0.6745 (d - median) / MAD; where the MAD is 0 (a flat or quantised
    stretch makes half the differences equal) the mean absolute deviation stands in, scaled to match for
    a normal distribution; a row with no spread at all gets z = 0 (nothing in it is a spike)."""
    med = np.median(d, axis=1, keepdims=True)
    dev = np.abs(d - med)
    mad = np.median(dev, axis=1, keepdims=True)
    # for a normal distribution E|X - mu| = 0.7979 sd and the MAD 0.6745 sd: the mean absolute deviation
    # scaled to stand in for the MAD
    spread = np.where(mad > 0, mad, dev.mean(axis=1, keepdims=True) * 0.6745 / 0.7979)
    return np.divide(0.6745 * (d - med), spread, out=np.zeros_like(d), where=spread > 0)


# How much larger a spike's jumps are than the steps just outside it: the top of a narrow band in a
# noise-free spectrum also rises and falls within a few points, but out of steps nearly as large.
_ISOLATION = 3.0


def _isolated(d: np.ndarray, a: int, b: int) -> bool:
    """Jumps `a` (up) and `b` (down) stand out from the steps before `a` and after `b`."""
    outside = max(abs(d[a - 1]) if a > 0 else 0.0, abs(d[b + 1]) if b + 1 < len(d) else 0.0)
    return min(abs(d[a]), abs(d[b])) > _ISOLATION * outside


@dataclass
class Despike(Step):
    """Whitaker & Hayes (2018): a cosmic-ray spike is a jump that the *differenced* spectrum shows as an
    outlier (modified z-score above `threshold`). A band's flanks can be steep too, but a band rises over
    many points and falls many points later; a spike jumps up and back down within `max_width` points, by
    steps much larger than those just outside it. The points between two such jumps are the spike, and
    each becomes the mean of the points within `window` of it that are not."""

    name: ClassVar[str] = "despike"
    threshold: float = 6.0  # modified z-score of a jump
    max_width: int = 3  # widest spike, in points
    window: int = 3  # points either side that replace a spike

    def apply_with_details(self, x, Y):
        if self.threshold <= 0 or self.window < 1 or self.max_width < 1:
            raise ConfigError(
                "despike: threshold must be > 0, window and max_width >= 1; got "
                f"{self.threshold}, {self.window}, {self.max_width}"
            )
        d = np.diff(Y, axis=1)
        outlier = np.abs(modified_z(d)) > self.threshold
        spikes = np.zeros(Y.shape, dtype=bool)
        for i in np.flatnonzero(outlier.any(axis=1)):
            jumps = np.flatnonzero(outlier[i])
            for a in jumps:
                for b in jumps[(jumps > a) & (jumps <= a + self.max_width)]:
                    if np.sign(d[i, a]) != np.sign(d[i, b]) and _isolated(d[i], a, b):
                        spikes[i, a + 1 : b + 1] = True  # the points after the jump up, up to the jump down
                        break
        out = Y.copy()
        for i, j in zip(*np.nonzero(spikes), strict=True):
            lo, hi = max(0, j - self.window), min(Y.shape[1], j + self.window + 1)
            good = ~spikes[i, lo:hi]
            if good.any():
                out[i, j] = Y[i, lo:hi][good].mean()
        return x, out, {"spikes": spikes}


@dataclass
class Smooth(Step):
    name: ClassVar[str] = "smooth"
    window: int = 11  # points, odd
    polyorder: int = 3

    def apply_with_details(self, x, Y):
        from scipy.signal import savgol_filter

        if self.window % 2 == 0 or self.window <= self.polyorder or self.window > Y.shape[1]:
            raise ConfigError(
                f"smooth: window must be odd, larger than polyorder ({self.polyorder}) and at most the "
                f"spectrum's {Y.shape[1]} points; got {self.window}"
            )
        return x, savgol_filter(Y, self.window, self.polyorder, axis=-1), {}


# pybaselines' Baseline methods that are not one-spectrum baseline algorithms.
_NOT_ALGORITHMS = {
    "x",
    "x_domain",
    "banded_solver",
    "pentapy_solver",
    "collab_pls",
    "optimize_extended_range",
}


def baseline_methods() -> list[str]:
    """The pybaselines methods `baseline` can call by name."""
    from pybaselines import Baseline

    return sorted(m for m in dir(Baseline) if not m.startswith("_") and m not in _NOT_ALGORITHMS)


@dataclass
class BaselineStep(Step):
    """pybaselines' ``Baseline(x_data=x).<method>(spectrum, **params)`` per spectrum, subtracted."""

    name: ClassVar[str] = "baseline"
    method: str = "arpls"
    params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        from pybaselines import Baseline

        methods = baseline_methods()
        if self.method not in methods:
            raise ConfigError(
                f"baseline: unknown method {self.method!r}; pybaselines has {', '.join(methods)}"
            )
        known = [
            p
            for p in inspect.signature(getattr(Baseline, self.method)).parameters
            if p not in ("self", "data")
        ]
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            raise ConfigError(
                f"baseline {self.method}: unknown parameter(s) {', '.join(unknown)}; it takes "
                + ", ".join(known)
            )

    def apply_with_details(self, x, Y):
        from pybaselines import Baseline

        self.check()
        fit = getattr(Baseline(x_data=x), self.method)
        base = np.stack([fit(row, **self.params)[0] for row in Y]) if len(Y) else np.zeros_like(Y)
        return x, Y - base, {"baseline": base}


Normalisation = Literal["minmax", "area", "vector", "snv"]


def normalise(x: np.ndarray, Y: np.ndarray, method: str) -> np.ndarray:
    """Per spectrum: ``minmax`` to [0, 1]; ``area`` to unit area of |y| over x; ``vector`` to unit
    Euclidean norm; ``snv`` to zero mean and unit standard deviation. A spectrum that cannot be scaled (no
    spread, no area) becomes NaN, which every reader refuses with its reason."""
    if method == "minmax":
        lo = Y.min(axis=1, keepdims=True)
        return _divide(Y - lo, Y.max(axis=1, keepdims=True) - lo)
    if method == "area":
        return _divide(Y, np.trapezoid(np.abs(Y), x, axis=1)[:, None])
    if method == "vector":
        return _divide(Y, np.linalg.norm(Y, axis=1, keepdims=True))
    if method == "snv":
        return _divide(Y - Y.mean(axis=1, keepdims=True), Y.std(axis=1, keepdims=True))
    raise ConfigError(f"normalize: unknown method {method!r}; choose minmax, area, vector or snv")


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.full_like(a, np.nan), where=np.abs(b) > 1e-12)


@dataclass
class Normalize(Step):
    name: ClassVar[str] = "normalize"
    method: Normalisation = "minmax"

    def apply_with_details(self, x, Y):
        return x, normalise(x, Y, self.method), {}


@dataclass
class Resample(Step):
    name: ClassVar[str] = "resample"
    start: float = 400.0  # cm-1
    stop: float = 4000.0
    n: int = 1000

    def apply_with_details(self, x, Y):
        if self.n < 2 or self.stop <= self.start:
            raise ConfigError(
                f"resample: need n >= 2 and stop > start, got {self.start:g}-{self.stop:g}, n {self.n}"
            )
        target = np.linspace(self.start, self.stop, self.n)
        return target, resample_spectra(Y, x, target, outside="edge"), {}


STEPS: dict[str, type[Step]] = {s.name: s for s in (Crop, Despike, Smooth, BaselineStep, Normalize, Resample)}


def step_parameters() -> dict[str, dict[str, Any]]:
    """Each step's parameters with their defaults (``data preprocess --list``, the docs)."""
    return {name: asdict(kind()) for name, kind in STEPS.items()}
