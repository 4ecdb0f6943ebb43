"""What every reader returns (`Spectra`) and how it says no (`ReadError`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from peakmixer.config import BadInput

# Shorter spectra cannot describe a vibrational band pattern; they are rejected with this reason.
MIN_POINTS = 16
# Transmittance is clipped here before -log10 so that T <= 0 (detector noise) gives a finite absorbance.
T_FLOOR = 1e-5
# Transmittance above this is percent: fractional T exceeds 1 only by noise or poor referencing (the
# Lancashire test file sqzdupd1.jdx reaches 1.505), while percent spectra peak far above 2.
T_PERCENT_ABOVE = 2.0


class ReadError(BadInput, ValueError):
    """A file (or one spectrum inside it) that cannot be used, with the reason.

    Attributes:
        source: the file name, with ``#block`` / ``#row`` for one spectrum of a multi-spectrum file.
        reason: a short human-readable reason, without the file name.
    """

    def __init__(self, source: str | os.PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


@dataclass
class Rejection:
    """One refused file or spectrum: ``source`` is the file name (``file#k`` for one of several)."""

    source: str
    reason: str


@dataclass
class Spectra:
    """One or more spectra sharing an axis, as read from one file (or one block of it).

    Attributes:
        x: (L,) float64 wavenumbers in cm-1, strictly ascending.
        Y: (n, L) float ordinates (absorbance-like for IR, intensity for Raman).
        ids: n identifiers: the file name, or ``file#k`` for spectrum k of a multi-spectrum file.
        smiles: n SMILES strings when the file carries them (parquet), else None.
        labels: n class labels when the file carries them (a csv label column), else None.
        meta: JSON-able facts from the header (original units, conversions applied, ignored columns).
    """

    x: np.ndarray
    Y: np.ndarray
    ids: list[str]
    smiles: list[str | None] | None = None
    labels: list[str | None] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


Item = Spectra | ReadError


def ascending(source: str, x: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (x, Y) with x strictly ascending, flipping a descending axis; `ReadError` otherwise.

    Y is (n, L) or (L,). Also rejects axes that are too short or not finite.
    """
    x = np.asarray(x, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if x.ndim != 1 or Y.shape[-1] != x.size:
        raise ReadError(source, f"axis has {x.size} points but the spectrum has {Y.shape[-1]}")
    if x.size < MIN_POINTS:
        raise ReadError(source, f"axis too short: {x.size} points (need at least {MIN_POINTS})")
    if not np.isfinite(x).all():
        raise ReadError(source, "axis contains NaN or Inf")
    dx = np.diff(x)
    if (dx < 0).all():
        return x[::-1].copy(), Y[..., ::-1].copy()
    if not (dx > 0).all():
        raise ReadError(source, "axis is not monotonic (repeated or out-of-order wavenumbers)")
    return x, Y


def wavenumbers(source: str, x: np.ndarray, unit: str) -> np.ndarray:
    """Convert an IR abscissa to cm-1 from `unit` (JCAMP spelling); `ReadError` for non-wavenumber units."""
    u = unit.strip().upper().replace(" ", "")
    if u in {"1/CM", "CM-1", "CM^-1", "CM**-1", "WAVENUMBER", "WAVENUMBERS", "WAVENUMBERS(CM-1)"}:
        return x
    if u in {"MICROMETERS", "MICROMETER", "MICRONS", "MICRON", "UM", "µM"}:
        with np.errstate(divide="ignore"):
            return 1e4 / x
    if u in {"NANOMETERS", "NANOMETER", "NM"}:
        with np.errstate(divide="ignore"):
            return 1e7 / x
    raise ReadError(
        source, f"x units {unit.strip()!r} are not wavenumbers (expected 1/CM, micrometers or nm)"
    )


def to_absorbance(source: str, Y: np.ndarray, unit: str) -> tuple[np.ndarray, str]:
    """Absorbance-like ordinates from `Y` in `unit`; returns (Y, note on the conversion applied).

    Transmittance becomes ``-log10(T)`` with T as a fraction: units containing ``%``/``PERCENT``, or
    values above `T_PERCENT_ABOVE` (no fractional transmittance gets there), are taken as percent. T is
    clipped at `T_FLOOR`. Absorbance, NIST's quantitative absorbance ``(micromol/mol)-1m-1``, Kubelka-Munk,
    log(1/R) and arbitrary/count intensities are kept as they are; reflectance is refused.
    """
    u = unit.strip().upper()
    if "TRANSMIT" in u or "TRANSMISSION" in u or u in {"%T", "T"}:
        percent = "%" in u or "PERCENT" in u or (np.nanmax(Y) > T_PERCENT_ABOVE if Y.size else False)
        T = Y / 100.0 if percent else Y
        A = -np.log10(np.clip(T, T_FLOOR, None))
        return A, "transmittance (percent) -> -log10(T/100)" if percent else "transmittance -> -log10(T)"
    if "REFLECT" in u:
        raise ReadError(source, f"y units {unit.strip()!r}: reflectance spectra are not converted")
    known = ("ABSORB", "(MICROMOL/MOL)", "KUBELKA", "LOG(1/R)", "ARBITRARY", "COUNT", "INTENSITY", "RELATIVE")
    if u in {"A", "AU", ""} or any(k in u for k in known):
        return Y, "kept as is"
    raise ReadError(source, f"unknown y units {unit.strip()!r}")


def file_kind_error(path: Path, head: bytes) -> ReadError:
    """The `ReadError` for a file no reader recognises, naming what it claims to be."""
    suffix = path.suffix.lower()
    if not head.strip():
        return ReadError(path.name, "empty file")
    claimed = {
        ".jdx": "JCAMP-DX",
        ".dx": "JCAMP-DX",
        ".jcamp": "JCAMP-DX",
        ".npy": "NumPy .npy",
        ".parquet": "parquet",
    }
    if suffix in claimed:
        return ReadError(path.name, f"not a {claimed[suffix]} file (its content does not start like one)")
    expected = "JCAMP-DX, Galactic .spc, .npy, .parquet or .csv"
    return ReadError(path.name, f"unknown format (extension {suffix or '(none)'}; expected {expected})")
