"""The lines of one realistic ``synth-ir17`` spectrum (versions 3 to 9, `ir17_realistic`): normal-mode
lines (version 6) and their molecular-dynamics variant (version 9), band lines with condensed-phase
H-bonding, saturation by stray light (version 7) and the atmosphere's water and CO2.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from peakmixer.data.labels import NIST17_NAMES
from peakmixer.synth.normalmodes import ModeTable

if TYPE_CHECKING:  # annotations only: the knobs' module draws with these lines
    from peakmixer.synth.ir17_realistic import IR17V3Knobs

_REACH = 4.0  # lines are drawn on +-4 FWHM (a Lorentzian is 1.5% of its peak there)
_WATER = ((1350.0, 1950.0), (3550.0, 3950.0))
_CO2 = ((2337.0, 12.0, 1.0), (2361.0, 12.0, 0.9), (667.0, 6.0, 0.5))  # centre, FWHM, relative amplitude


# Version 6's normal-mode spectra: MMFF94 stretches run a few % high (normalmodes), so their one frequency
# scale per spectrum is drawn below and around 1; a line's nominal FWHM (cm-1) before the width scale.
_PHYSICS_SCALE = (0.95, 1.03)
_PHYSICS_FWHM = 10.0
# MMFF94 puts O-H and N-H stretches above this and C-H stretches below it (but an alkyne's, whose carbon is
# none of the four groups below): a mode of those groups above it is an X-H stretch.
_XH_STRETCH = 3150.0
_CH_STRETCH = 2700.0  # ... and C-H stretches above this (bends and C-C stretches lie far below)
# Version 7's saturated spectra: the peak absorbance (log-uniform) and the stray light's share of the beam
# (log-uniform), which caps the measured absorbance near -log10(stray) (`ir17_realistic`'s docstring).
_PEAK_ABSORBANCE = (0.5, 5.0)
_STRAY_LIGHT = (1e-3, 3e-2)
# Version 9's molecular-dynamics spectra (`ir17_realistic`'s docstring): the C-H stretch factor of fixed
# charges, the exponent range of the classical intensities' 1 / wavenumber, and the estimate's log-normal
# noise sd range.
_MD_CH_FACTOR = (0.25, 1.0)
_MD_CLASSICAL_POWER = (0.0, 1.0)
_MD_NOISE_SD = (0.15, 0.7)
# Condensed-phase H-bonding of O-H and N-H stretches (Silverstein ch. 2: free O-H 3650 -> bonded
# 3200-3550, broad; acid dimers 2500-3300; N-H shifts ~100 cm-1): per group, the largest relative red shift
# and the largest FWHM factor, both reached at a spectrum's full H-bond level (uniform in [0, 1]). The most
# specific group first: an X-H stretch takes the first of its groups (an acid's O-H is also an "alcohol").
_HBOND = {
    "carboxylic acids": (0.20, 25.0),
    "alcohols": (0.12, 15.0),
    "amides": (0.04, 4.0),
    "amines": (0.04, 4.0),
}


def add_modes(
    X: np.ndarray,
    comp: np.ndarray | None,
    masks: np.ndarray | None,
    ax32: np.ndarray,
    rng: np.random.Generator,
    k: IR17V3Knobs,
    table: ModeTable,
    molecules: np.ndarray,
    rows: np.ndarray,
    width: np.ndarray,
    eta: np.ndarray,
    gas: np.ndarray,
    gap: np.ndarray,
    q: np.ndarray,
) -> None:
    """Version 6: the normal modes of each row's molecule (`table` rows `molecules`), randomised as the band
    table's bands are (one frequency scale, per-band frequency error and intensity factors, per group a
    level), condensed-phase X-H stretches H-bonded. A mode counts to its group's component only inside the
    group's mask (`masks`, `ir17_v3_masks`; outside it, a skeleton mode of the group's atoms)."""
    n, n_groups = len(X), len(NIST17_NAMES)
    start, stop = table.offsets[molecules], table.offsets[molecules + 1]
    count = stop - start
    row = np.repeat(rows, count)
    # each row's modes start .. stop, laid end to end: a running index shifted by each row's own offset
    mode = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    wn, amp, bits = table.wavenumber[mode], table.intensity[mode].copy(), table.groups[mode]
    member = ((bits[:, None] >> np.arange(n_groups, dtype=np.uint32)) & 1).astype(bool)  # (modes, K)
    scale = rng.uniform(*_PHYSICS_SCALE, n)
    hbond = rng.random(n)
    level = np.exp(k.intensity_spread * rng.standard_normal((n, n_groups)))
    error = np.clip(rng.standard_normal(wn.size), -2.0, 2.0)
    spread = rng.standard_normal(wn.size)
    ch = (wn > _CH_STRETCH) & (wn <= _XH_STRETCH)
    if k.ch_stretch_max > 1.0:  # version 7: this spectrum's C-H flux, 1 to sqrt(max) x normalmodes' (squared)
        brighter = np.exp(rng.uniform(0.0, np.log(k.ch_stretch_max), n))
        amp[ch] *= brighter[row[ch]]
    md = np.zeros(n, dtype=bool)
    if k.p_md > 0:  # version 9: a classical MD run's spectrum of these modes (`ir17_realistic`'s docstring)
        md[rows] = rng.random(rows.size) < k.p_md
        fixed = np.exp(rng.uniform(*np.log(_MD_CH_FACTOR), n))
        power = rng.uniform(*_MD_CLASSICAL_POWER, n)
        on = md[row]
        fixed_ch = ch & on
        amp[fixed_ch] = table.intensity[mode[fixed_ch]] * fixed[row[fixed_ch]]  # fixed charges, not v7's flux
        amp[on] *= (wn[on] / 1000.0) ** -power[row[on]]
        gas = gas & ~md  # a liquid box: H-bonded X-H stretches, no rotational contours
    centre = wn * scale[row] * (1.0 + k.band_jitter * error)
    fwhm = np.full(wn.size, _PHYSICS_FWHM) * width[row]
    stretch = (wn > _XH_STRETCH) & ~gas[row]
    done = np.zeros(wn.size, dtype=bool)
    for name, (shift, broad) in _HBOND.items():
        bonded = member[:, NIST17_NAMES.index(name)] & stretch & ~done
        centre[bonded] *= 1.0 - shift * hbond[row[bonded]]
        fwhm[bonded] *= 1.0 + (broad - 1.0) * hbond[row[bonded]]
        done |= bonded
    fwhm = np.maximum(fwhm, 4.0)
    amp *= np.exp(k.band_spread * spread)
    grouped = member.any(axis=1)
    first = member.argmax(axis=1)
    amp[grouped] *= level[row[grouped], first[grouped]]
    for line in contour(row, centre, fwhm, amp, eta[row], gas[row], gap[row], q[row]):
        add_lines(X, ax32, *line, repeated=True)
    if md.any():  # the estimate's error, proportional to the spectrum (only the modes are in X's rows yet)
        noisy = np.flatnonzero(md)
        sd = np.exp(rng.uniform(*np.log(_MD_NOISE_SD), noisy.size)).astype(np.float32)
        factor = rng.standard_normal((noisy.size, X.shape[1]), dtype=np.float32)
        factor *= sd[:, None]
        X[noisy] *= np.exp(factor - sd[:, None] ** 2 / 2)  # mean 1: the band areas stay as they were
    if comp is None:
        return
    # A group's own modes whose line (centre, and +-1.5 FWHM beyond its gas-phase lobes) lies in its mask.
    reach = 1.5 * fwhm + np.where(gas[row], gap[row] / 2, 0.0)
    inside = member.copy()
    for edge in (centre - reach, centre, centre + reach):
        inside &= masks[:, np.clip(np.searchsorted(ax32, edge), 0, len(ax32) - 1)].T
    m, g = np.nonzero(inside)
    key = row[m] * n_groups + g  # the rows of comp's (N * K, L) view: spectrum x group
    for line in contour(key, centre[m], fwhm[m], amp[m], eta[row[m]], gas[row[m]], gap[row[m]], q[row[m]]):
        add_lines(comp.reshape(-1, len(ax32)), ax32, *line, repeated=True)


def contour(
    rows: np.ndarray,
    centre: np.ndarray,
    fwhm: np.ndarray,
    amp: np.ndarray,
    eta: np.ndarray,
    gas: np.ndarray,
    gap: np.ndarray,
    q: np.ndarray,
) -> list[tuple[np.ndarray, ...]]:
    """The lines of one band, as parts each with distinct rows: one line per row, or in the gas phase P and R
    lobes (and a sharp Q)."""
    g = gas & (fwhm < 100.0)  # broad bands have no resolved contour
    parts = [(rows[~g], centre[~g], fwhm[~g], amp[~g], eta[~g])]
    lobe = np.maximum(0.6 * fwhm[g], 4.0)
    for side in (-0.5, 0.5):
        parts.append((rows[g], centre[g] + side * gap[g], lobe, 0.6 * amp[g], eta[g]))
    qq = g & q
    parts.append((rows[qq], centre[qq], np.maximum(0.25 * fwhm[qq], 4.0), 0.8 * amp[qq], eta[qq]))
    return [p for p in parts if p[0].size]


def add_lines(
    out: np.ndarray,
    ax32: np.ndarray,
    rows: np.ndarray,
    centre: np.ndarray,
    fwhm: np.ndarray,
    amp: np.ndarray,
    eta: np.ndarray,
    *,
    repeated: bool = False,
) -> None:
    """``out[rows[i]] += amp[i] * pseudo-Voigt(centre[i], fwhm[i], eta[i])`` on +-4 FWHM windows. `rows` are
    distinct (a fancy-index += adds a repeated row once) unless `repeated` (a molecule's many modes): then
    the lines of each row are summed first."""
    if not repeated:
        for sel, cols, v in _line_windows(ax32, centre, fwhm, amp, eta):
            out[rows[sel, None], cols] += v
        return
    length = len(ax32)
    distinct, slot = np.unique(rows, return_inverse=True)
    dense = np.zeros(distinct.size * length)
    for sel, cols, v in _line_windows(ax32, centre, fwhm, amp, eta):
        dense += np.bincount((slot[sel, None] * length + cols).ravel(), v.ravel(), dense.size)
    out[distinct] += dense.reshape(distinct.size, length).astype(np.float32)


def _line_windows(
    ax32: np.ndarray, centre: np.ndarray, fwhm: np.ndarray, amp: np.ndarray, eta: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per group of lines with one window size: the lines (indices), their axis columns and values."""
    if centre.size == 0:
        return
    length = len(ax32)
    dx = float(ax32[1] - ax32[0])
    # Lines are grouped by window size (a broad O-H band must not widen every sharp line's window).
    need = np.ceil(_REACH * fwhm / dx)
    bucket = np.minimum(8 * np.ceil(np.maximum(need, 1) / 8), length // 2).astype(int)  # few window sizes
    for half in np.unique(bucket):
        sel = np.flatnonzero(bucket == half)
        half = int(half)
        width = min(2 * half + 1, length)
        start = np.clip(np.searchsorted(ax32, centre[sel]) - half, 0, length - width)
        cols = start[:, None] + np.arange(width)
        d = (ax32[cols] - centre[sel, None].astype(np.float32)) / fwhm[sel, None].astype(np.float32)
        d *= d
        gauss = np.exp(np.float32(-4.0 * np.log(2.0)) * d)
        lorentz = 1.0 / (1.0 + 4.0 * d)
        e = eta[sel, None].astype(np.float32)
        v = (1.0 - e) * gauss + e * lorentz
        v *= amp[sel, None].astype(np.float32)
        yield sel, cols, v


def saturate(X: np.ndarray, rng: np.random.Generator, share: float) -> None:
    """Version 7: on `share` of the spectra, strong bands beyond the linear range. Rows scaled to a peak
    absorbance A, then measured through stray light s: A' = -log10((10^-A + s) / (1 + s)), flat-topped near
    -log10(s) where A is far above it; weak bands stay nearly linear."""
    n = len(X)
    rows = np.flatnonzero(rng.random(n) < share)
    peak_abs = np.exp(rng.uniform(*np.log(_PEAK_ABSORBANCE), n))[rows]
    stray = np.exp(rng.uniform(*np.log(_STRAY_LIGHT), n))[rows]
    peak = X[rows].max(axis=1)
    peak[peak <= 0] = 1.0
    a = X[rows] * (peak_abs / peak)[:, None]
    X[rows] = -np.log10((10.0 ** (-a) + stray[:, None]) / (1.0 + stray[:, None]))


def add_atmosphere(X: np.ndarray, ax32: np.ndarray, rng: np.random.Generator, k: IR17V3Knobs) -> None:
    """Residual water-vapour lines and the CO2 bands, of either sign, on a share of the spectra."""
    n = len(X)
    which = rng.random(n) < k.p_atmosphere
    level = rng.uniform(0.005, 0.06, n) * rng.choice([-1.0, 1.0], n)
    n_water = 30
    spans = np.array(_WATER)
    pick = rng.integers(0, len(spans), (n, n_water))
    pos = spans[pick, 0] + (spans[pick, 1] - spans[pick, 0]) * rng.random((n, n_water))
    strength = rng.exponential(1.0, (n, n_water))
    rows = np.flatnonzero(which)
    if rows.size == 0:
        return
    for line in range(n_water):
        add_lines(
            X,
            ax32,
            rows,
            pos[rows, line],
            np.full(rows.size, 4.0),
            level[rows] * 0.4 * strength[rows, line],
            np.full(rows.size, 0.5),
        )
    co2 = rng.uniform(0.0, 1.0, n)
    for centre, fwhm, rel in _CO2:
        add_lines(
            X,
            ax32,
            rows,
            np.full(rows.size, centre),
            np.full(rows.size, fwhm),
            level[rows] * co2[rows] * rel,
            np.zeros(rows.size),
        )
