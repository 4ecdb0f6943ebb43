"""``synth-ir17`` version 2: the 17 NIST-IR functional groups as isolated Gaussian bands from the band table
(`ir17_bands.IR17_BANDS`), with NIST-IR's label shares and SMARTS overlaps, skeleton bands, a drifting
baseline and white noise; and its ground-truth masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from peakmixer.config import ConfigError
from peakmixer.data.dataset import SpectraDataset, named_axis, random_splits
from peakmixer.synth.ir17_bands import GROUP_INDEX as _IR
from peakmixer.synth.ir17_bands import IR17_BANDS, IR17_LABELS
from peakmixer.synth.render import MASK_FWHM, add_humps, axis_helpers, gaussian_windows, standard_normal
from peakmixer.synth.streams import child_seed, minmax_rows

# NIST-IR label shares (share of all label occurrences; sub_id datasets figure, UPSTREAM_SPEC §5). The four
# "<.01" groups get .008 each. The test checks the generated shares against these.
IR17_LABEL_SHARES = (
    0.20, 0.19, 0.04, 0.008, 0.08, 0.03, 0.013, 0.17, 0.08,
    0.03, 0.03, 0.008, 0.02, 0.07, 0.008, 0.008, 0.015,
)  # fmt: skip
# Marginal probabilities of the latent draw, tuned by simulation so that after the implications and the
# 1-6 filter the shares above and a mean of ~3.3 groups per molecule come out.
_IR17_DRAW_P = (
    0.65, 0.619, 0.133, 0.0273, 0.213, 0.101, 0.0449, 0.554, 0.245,
    0.108, 0.101, 0.0274, 0.0726, 0.146, 0.0295, 0.0272, 0.0507,
)  # fmt: skip
# Label implications of the SMARTS (left fires right): ester -> ether ([OD2]([#6])[#6]), carboxylic acid ->
# alcohols ([#6][OX2H]), acyl halide -> alkyl halides ([#6][F,Cl,Br,I]).
IR17_IMPLIES = ((_IR["esters"], _IR["ether"]), (_IR["carboxylic acids"], _IR["alcohols"]),
                (_IR["acyl halides"], _IR["alkyl halides"]))  # fmt: skip
# Latent (Gaussian-copula) correlations: CH2 chains carry CH3 ends; aromatic molecules carry fewer CH2 chains
# and C=C of alkenes.
_IR17_LATENT_CORR = ((_IR["alkane"], _IR["methyl"], 0.4), (_IR["alkane"], _IR["aromatics"], -0.3),
                     (_IR["alkene"], _IR["aromatics"], -0.2))  # fmt: skip
IR17_MAX_GROUPS = 6
# Skeleton (label-free) bands: 80% in the fingerprint region where C-C stretches and skeletal bends live.
_SKELETON_SLOTS = 16
_SKELETON_FINGERPRINT = (400.0, 1500.0)
_SKELETON_P_FINGERPRINT = 0.8


@dataclass(frozen=True)
class IR17Knobs:
    """Difficulty knobs of synth-ir17 (intensities relative to a strong band of a typical molecule = 1)."""

    noise: float = 0.02  # sd of white noise before min-max scaling
    jitter: float = 1.0  # fraction of each textbook centre range a band centre may take (0: mid-range only)
    intensity_spread: float = 0.4  # sd of log intensity per molecule and group (all its bands together)
    band_spread: float = 0.3  # sd of log intensity per band (relative intensities within a group)
    width_spread: float = 0.15  # sd of log FWHM per band (clipped to x0.6-1.6 of nominal)
    n_nuisance: float = 6.0  # mean number of label-free skeleton bands per spectrum (Poisson, at most 16)
    nuisance_max: float = 0.5  # skeleton band intensities are uniform in [0.05, nuisance_max]
    baseline: float = 0.1  # amplitude of baseline drift (tilt + broad hump)
    normalize: bool = True  # min-max scale each spectrum to [0, 1]


def ir17_dataset(
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    id_prefix: str,
    provenance: dict[str, Any],
    masks: np.ndarray,
    extras: dict[str, np.ndarray] | None = None,
) -> SpectraDataset:
    """A synth-ir17 dataset of either version: the ir axis, the 17 groups, seeded 80/10/10 splits."""
    n = len(X)
    return SpectraDataset(
        X=X,
        axis=named_axis("ir"),
        y=y,
        task="multilabel",
        label_names=list(IR17_LABELS),
        ids=[f"{id_prefix}-{i:07d}" for i in range(n)],
        splits=random_splits(n, {"train": 0.8, "val": 0.1, "test": 0.1}, child_seed(seed, 1)),
        provenance=provenance,
        masks=masks,
        extras=extras or {},
    )


def ir17_masks(axis: np.ndarray) -> np.ndarray:
    """(17, L) bool: each group's band windows [lo - MASK_FWHM * FWHM, hi + MASK_FWHM * FWHM] on `axis`."""
    masks = np.zeros((len(IR17_LABELS), len(axis)), dtype=bool)
    for b in IR17_BANDS:
        masks[b.label] |= (axis >= b.lo - MASK_FWHM * b.fwhm) & (axis <= b.hi + MASK_FWHM * b.fwhm)
    return masks


def _ir17_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 17) uint8 labels: thresholded correlated Gaussians, implications applied, 1-6 groups kept."""
    k = len(IR17_LABELS)
    corr = np.eye(k)
    for a, b, r in _IR17_LATENT_CORR:
        corr[a, b] = corr[b, a] = r
    chol = np.linalg.cholesky(corr)
    thresholds = ndtri(np.array(_IR17_DRAW_P))
    kept: list[np.ndarray] = []
    have = 0
    while have < n:  # rejection rounds, each vectorised over a batch of candidate molecules
        z = rng.standard_normal((max(256, 2 * (n - have)), k)) @ chol.T
        y = z < thresholds
        for a, b in IR17_IMPLIES:
            y[:, b] |= y[:, a]
        count = y.sum(axis=1)
        y = y[(count >= 1) & (count <= IR17_MAX_GROUPS)]
        kept.append(y)
        have += len(y)
    return np.concatenate(kept)[:n].astype(np.uint8)


def simulate_ir17(
    n: int, seed: int, k: IR17Knobs, with_components: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels (n, 17), X (n, 1024) float32 and, if asked, components (n, 17, 1024) float32.

    The random stream does not depend on `with_components`, so both paths give the same spectra.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(child_seed(seed, 0))
    axis = named_axis("ir")
    axis32, min_dx, t = axis_helpers(axis)
    n_bands = len(IR17_BANDS)
    y = _ir17_labels(rng, n)
    group_scale = np.exp(k.intensity_spread * rng.standard_normal((n, len(IR17_LABELS))))
    u = rng.random((n_bands, 2, n))  # centre position, presence
    g = rng.standard_normal((n_bands, 2, n))  # log width, log intensity

    X = np.zeros((n, len(axis)), dtype=np.float32)
    comp = np.zeros((n, len(IR17_LABELS), len(axis)), dtype=np.float32) if with_components else None
    table = np.array([(b.label, b.lo, b.hi, b.fwhm, b.rel, b.p) for b in IR17_BANDS])
    present = (u[:, 1, :] < table[:, 5:6]) & (y.T[table[:, 0].astype(int)] == 1)  # (bands, n)
    for label in range(len(IR17_LABELS)):
        # A present group shows at least one band: force its first band where none was drawn.
        own = np.flatnonzero(table[:, 0] == label)
        none = (y[:, label] == 1) & ~present[own].any(axis=0)
        present[own[0], none] = True
    for j, b in enumerate(IR17_BANDS):
        rows = np.flatnonzero(present[j])
        if rows.size == 0:
            continue
        mid, span = 0.5 * (b.lo + b.hi), (b.hi - b.lo) * k.jitter
        centre = mid + span * (u[j, 0, rows] - 0.5)
        fwhm = b.fwhm * np.clip(np.exp(k.width_spread * g[j, 0, rows]), 0.6, 1.6)
        amp = b.rel * group_scale[rows, b.label] * np.exp(k.band_spread * g[j, 1, rows])
        win = gaussian_windows(axis, axis32, min_dx, centre, fwhm)
        win.add_to(X, rows, amp)
        if comp is not None:
            win.add_to(comp.reshape(-1, len(axis)), rows * len(IR17_LABELS) + b.label, amp)

    # Skeleton bands: Poisson count per spectrum, mostly in the fingerprint region.
    count = np.minimum(rng.poisson(k.n_nuisance, n), _SKELETON_SLOTS)
    s = rng.random((4, _SKELETON_SLOTS, n))
    for slot in range(_SKELETON_SLOTS):
        rows = np.flatnonzero(count > slot)
        if rows.size == 0:
            break
        in_fp = s[0, slot, rows] < _SKELETON_P_FINGERPRINT
        lo = np.where(in_fp, _SKELETON_FINGERPRINT[0], axis[0])
        hi = np.where(in_fp, _SKELETON_FINGERPRINT[1], axis[-1])
        centre = lo + (hi - lo) * s[1, slot, rows]
        fwhm = 8.0 + 32.0 * s[2, slot, rows]
        amp = 0.05 + (k.nuisance_max - 0.05) * s[3, slot, rows]
        gaussian_windows(axis, axis32, min_dx, centre, fwhm).add_to(X, rows, amp)

    # Baseline drift: a tilt plus one broad hump.
    b = rng.random((4, n)).astype(np.float32)
    X += (k.baseline * (2.0 * b[0] - 1.0))[:, None] * t
    hump_centre = axis32[0] + (axis32[-1] - axis32[0]) * b[1]
    add_humps(X, axis32, hump_centre, 300.0 + 1200.0 * b[2], k.baseline * b[3])
    noise = standard_normal(seed, X.shape)
    noise *= k.noise
    X += noise
    if k.normalize:
        minmax_rows(X, comp)
    return y, X, comp
