"""``synth-bac30``: Ho et al. 2019's 30 isolates as one consensus cell spectrum (`BAC30_BANDS`) changed by a
signature per taxonomic level, with a measurement-day shift for the finetune/test spectra; and its
ground-truth masks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from peakmixer.config import ConfigError
from peakmixer.data.dataset import SpectraDataset, named_axis
from peakmixer.data.labels import BAC30_CLASS_TO_GROUP, BAC30_CLASSES, BAC30_GROUPS, BAC30_LABELS
from peakmixer.synth.render import (
    MASK_FWHM,
    add_humps,
    axis_helpers,
    gaussian_windows,
    standard_normal,
    synth_provenance,
)
from peakmixer.synth.streams import child_seed, minmax_rows

BAC30_FAMILIES = ("protein", "lipid", "nucleic acid", "carbohydrate", "marker")


class RamanBand(NamedTuple):
    """One row of `BAC30_BANDS`: a band of the consensus cell."""

    family: int  # index into BAC30_FAMILIES
    assignment: str
    centre: float  # cm-1
    fwhm: float  # cm-1 (typical, not tabulated)
    weight: float  # consensus intensity, amide I = 1


_P, _L, _N, _C, _M = range(5)
# Assignments: Z. Movasaghi, S. Rehman, I. U. Rehman, "Raman spectroscopy of biological tissues",
# Appl. Spectrosc. Rev. 42, 493 (2007); K. Maquelin et al., "Identification of medically relevant
# microorganisms by vibrational spectroscopy", J. Microbiol. Methods 51, 255 (2002); J. De Gelder et al.,
# "Reference database of Raman spectra of biological molecules", J. Raman Spectrosc. 38, 1133 (2007).
# Consensus weights are a plausible bacterial-cell mixture, not fitted to data.
BAC30_BANDS: tuple[RamanBand, ...] = (
    #          family  assignment                                       centre  FWHM  weight
    RamanBand(_C, "polysaccharide skeletal (C-C-C deformation)",         482,   20,  0.25),
    RamanBand(_P, "S-S stretch (cystine)",                              510,   18,  0.12),
    RamanBand(_C, "glycosidic ring deformation (C-O-C)",                540,   20,  0.15),
    RamanBand(_P, "phenylalanine C-C twist",                            621,   10,  0.12),
    RamanBand(_P, "tyrosine C-C twist",                                 644,   12,  0.15),
    RamanBand(_N, "thymine, guanine ring breathing",                    668,   14,  0.20),
    RamanBand(_L, "choline C-N+ sym. stretch (phospholipid)",           717,   12,  0.15),
    RamanBand(_N, "adenine ring breathing",                             727,   14,  0.45),
    RamanBand(_P, "tryptophan ring breathing",                          757,   12,  0.18),
    RamanBand(_N, "cytosine, uracil ring breathing; O-P-O",             782,   14,  0.55),
    RamanBand(_N, "O-P-O stretch (RNA backbone)",                       811,   14,  0.20),
    RamanBand(_P, "tyrosine ring (Fermi doublet)",                      853,   14,  0.25),
    RamanBand(_L, "C-C-N+ sym. stretch (phospholipid)",                 877,   14,  0.12),
    RamanBand(_C, "C-O-C skeletal (glycosidic)",                        938,   20,  0.20),
    RamanBand(_P, "phenylalanine ring breathing",                      1004,    8,  0.80),
    RamanBand(_P, "phenylalanine C-H in-plane bend",                   1031,   12,  0.25),
    RamanBand(_L, "C-C stretch (trans acyl chains)",                   1064,   16,  0.20),
    RamanBand(_N, "PO2- sym. stretch (DNA backbone)",                  1096,   18,  0.45),
    RamanBand(_C, "C-C, C-O stretch (polysaccharides)",                1126,   18,  0.35),
    RamanBand(_P, "tyrosine, phenylalanine C-H bend",                  1175,   12,  0.15),
    RamanBand(_P, "amide III (beta sheet, random coil)",               1240,   30,  0.35),
    RamanBand(_L, "CH2 twist (lipids)",                                1300,   20,  0.35),
    RamanBand(_N, "adenine, guanine (CH deformation)",                 1337,   18,  0.55),
    RamanBand(_N, "thymine, adenine, guanine ring",                    1375,   14,  0.20),
    RamanBand(_L, "CH2 scissoring (lipids, proteins)",                 1450,   24,  0.85),
    RamanBand(_N, "guanine, adenine ring",                             1485,   14,  0.30),
    RamanBand(_N, "guanine, adenine ring",                             1578,   16,  0.45),
    RamanBand(_P, "tyrosine, phenylalanine ring",                      1608,   14,  0.20),
    RamanBand(_P, "amide I (alpha helix)",                             1658,   40,  1.00),
    RamanBand(_L, "C=O ester stretch (phospholipids)",                 1740,   20,  0.12),
)  # fmt: skip
_BAC_INDEX = {round(b.centre): i for i, b in enumerate(BAC30_BANDS)}

# Signature size per taxonomic level: (number of consensus bands re-weighted, relative change, marker bands).
_LEVELS = (("gram", 3, 0.30, 0), ("genus", 2, 0.25, 0), ("species", 2, 0.20, 1), ("strain", 1, 0.12, 1))
# Signatures pointed the way known biochemistry points: Gram-positive walls are thick peptidoglycan
# (polysaccharide), Gram-negative envelopes carry an outer lipid membrane, yeast walls are glucan/mannan with
# little nucleic-acid signal relative to bacteria. Yeast ergosterol gives a 1602 cm-1 band (Y.-S. Huang et
# al., Biochemistry 44, 10009 (2005)); S. aureus carotenoids (staphyloxanthin) the polyene C-C/C=C bands near
# 1157 and 1523 cm-1 (S. Pahlow et al., Adv. Drug Deliv. Rev. 89, 105 (2015)). All other signatures are drawn
# at random from a fixed seed: they are synthetic, not claims about the organisms.
_FIXED_SIGNATURES: dict[str, tuple[tuple[int, float], ...]] = {
    "gram+": ((938, 0.30), (1126, 0.30), (1300, -0.20)),
    "gram-": ((1064, 0.30), (1300, 0.30), (1740, 0.30)),
    "yeast": ((482, 0.50), (1126, 0.50), (727, -0.30)),
}
# Literature markers: (centre, FWHM, intensity in units of the `marker` knob).
_FIXED_MARKERS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "yeast": ((1602.0, 12.0, 2.5),),
    "S. aureus": ((1157.0, 12.0, 2.0), (1523.0, 14.0, 2.0)),
}
_PROFILE_SEED = 20190927  # fixes the random signatures: classes are the same in every dataset
_MARKER_RANGE = (420.0, 1770.0)


@dataclass(frozen=True)
class Bac30Knobs:
    """Difficulty and split knobs of synth-bac30 (intensities relative to the consensus amide I band = 1)."""

    separation: float = 2.5  # scales every class signature (0: identical classes); calibrated, README
    marker: float = 0.06  # intensity of species marker bands (strain markers: half)
    family_spread: float = 0.25  # sd of log weight per band set and spectrum (physiological state)
    band_spread: float = 0.15  # sd of log weight per band and spectrum
    jitter_cm: float = 1.0  # sd of band-centre jitter per band and spectrum, cm-1
    background: float = 0.6  # fluorescence background amplitude
    noise: float = 0.08  # shot noise: sd = noise * sqrt(detected intensity + 0.05)
    n_nuisance: float = 1.0  # mean number of label-free bands per spectrum (Poisson, at most 4)
    nuisance_max: float = 0.1  # their intensities are uniform in [0.02, nuisance_max]
    shift_cm: float = 3.0  # finetune/test day: wavenumber calibration offset, cm-1
    shift_gain: float = 0.15  # finetune/test day: instrument response 1 + gain * t, t = -1..1 along the axis
    shift_background: float = 0.5  # finetune/test day: relative increase of fluorescence
    min_shifted_per_class: int = 5  # at least this many finetune and test spectra per class
    val_fraction: float = 0.1  # share of each class's reference-day spectra held out as `val`
    normalize: bool = True  # min-max scale each spectrum to [0, 1] (as Ho's arrays are)


_NUISANCE_SLOTS_BAC = 4


def make_synth_bac30(n: int, seed: int, **knobs: Any) -> SpectraDataset:
    """synth-bac30: (n, 1000) Raman spectra of Ho et al.'s 30 isolates; see the module docstring.

    Knobs are the fields of `Bac30Knobs`. Splits reference/val/finetune/test; ``extras["y_group"]`` (n,)
    int64 treatment group; masks (30, 1000).
    """
    k = Bac30Knobs(**knobs)
    y, split_code, X, _ = simulate_bac30(n, seed, k, with_components=False)
    axis = named_axis("ho")
    return SpectraDataset(
        X=X,
        axis=axis,
        y=y,
        task="multiclass",
        label_names=list(BAC30_LABELS),
        ids=[f"synth-bac30-s{seed}-{i:07d}" for i in range(n)],
        splits={name: np.flatnonzero(split_code == j) for j, name in enumerate(_BAC_SPLITS)},
        provenance=synth_provenance(
            "synth-bac30",
            n,
            seed,
            k,
            f"signature bands: centre +- {MASK_FWHM} x FWHM, 3 jitter sd, day shift",
        )
        | {
            "y_group_names": list(BAC30_GROUPS),
            "class_to_group": BAC30_CLASS_TO_GROUP.tolist(),
            "classes": "Ho et al. 2019, csho33/bacteria-ID config.py (MIT); group names via RamanSPy",
            "bands": "Movasaghi et al. 2007; Maquelin et al. 2002; De Gelder et al. 2007",
            "shifted_splits": ["finetune", "test"],
        },
        masks=bac30_masks(axis, k),
        extras={"y_group": BAC30_CLASS_TO_GROUP[y]},
    )


def bac30_signatures(knobs: Bac30Knobs | None = None) -> tuple[np.ndarray, ...]:
    """The bac30 band list and class signatures (fixed; `separation` and `marker` scale them).

    Returns centre (B,), fwhm (B,), family (B,) int64 and weights (1 + K, B): row 0 the consensus cell,
    row 1 + k the signature of class k (its deviation from the consensus). B = the 30 consensus bands of
    `BAC30_BANDS` followed by the marker bands (consensus weight 0).
    """
    knobs = knobs or Bac30Knobs()
    centre = [b.centre for b in BAC30_BANDS]
    fwhm = [b.fwhm for b in BAC30_BANDS]
    family = [b.family for b in BAC30_BANDS]
    consensus = np.array([b.weight for b in BAC30_BANDS])
    n_base = len(BAC30_BANDS)
    deltas: list[dict[int, float]] = [{} for _ in BAC30_CLASSES]
    node_cache: dict[tuple[str, str], list[tuple[int, float]]] = {}

    def add_marker(c: float, w: float) -> int:
        centre.append(c)
        fwhm.append(w)
        family.append(_M)
        return len(centre) - 1

    for k, iso in enumerate(BAC30_CLASSES):
        for level, n_bands, rel, n_markers in _LEVELS:
            node = iso.name if level == "strain" else getattr(iso, level)
            if (level, node) not in node_cache:
                rng = np.random.default_rng([_PROFILE_SEED, zlib.crc32(f"{level}:{node}".encode())])
                terms: list[tuple[int, float]] = []
                if node in _FIXED_SIGNATURES:
                    terms += [(_BAC_INDEX[c], d * knobs.separation) for c, d in _FIXED_SIGNATURES[node]]
                else:
                    # Re-weight a few bands of one band set, each up or down by 60-100% of `rel`.
                    fam = int(rng.integers(4))
                    members = [i for i, b in enumerate(BAC30_BANDS) if b.family == fam]
                    for i in rng.choice(members, size=min(n_bands, len(members)), replace=False):
                        sign = 1.0 if rng.random() < 0.5 else -1.0
                        terms.append((int(i), sign * rel * rng.uniform(0.6, 1.0) * knobs.separation))
                scale = 0.5 if level == "strain" else 1.0
                for c, w, amp in _FIXED_MARKERS.get(node, ()):
                    terms.append((add_marker(c, w), amp * knobs.marker * knobs.separation))
                for _ in range(n_markers):
                    j = add_marker(rng.uniform(*_MARKER_RANGE), rng.uniform(10.0, 20.0))
                    terms.append((j, scale * knobs.marker * knobs.separation * rng.uniform(0.7, 1.0)))
                node_cache[(level, node)] = terms
            for j, d in node_cache[(level, node)]:
                # Relative changes act on the consensus weight (floored so weak bands can still differ).
                deltas[k][j] = deltas[k].get(j, 0.0) + (d * max(consensus[j], 0.25) if j < n_base else d)

    weights = np.zeros((1 + len(BAC30_CLASSES), len(centre)))
    weights[0, :n_base] = consensus
    for k, dk in enumerate(deltas):
        for j, d in dk.items():
            # Keep every class's total weight positive: at least 10% of the consensus.
            total = max(weights[0, j] + d, 0.1 * weights[0, j])
            weights[1 + k, j] = total - weights[0, j]
    return np.array(centre), np.array(fwhm), np.array(family, dtype=np.int64), weights


def bac30_masks(axis: np.ndarray, knobs: Bac30Knobs | None = None) -> np.ndarray:
    """(30, L) bool: windows of the bands where each class's signature is non-zero (see module docstring)."""
    knobs = knobs or Bac30Knobs()
    centre, fwhm, _, weights = bac30_signatures(knobs)
    lo_pad = MASK_FWHM * fwhm + 3.0 * knobs.jitter_cm - min(knobs.shift_cm, 0.0)
    hi_pad = MASK_FWHM * fwhm + 3.0 * knobs.jitter_cm + max(knobs.shift_cm, 0.0)
    masks = np.zeros((len(BAC30_CLASSES), len(axis)), dtype=bool)
    for k in range(len(BAC30_CLASSES)):
        for j in np.flatnonzero(weights[1 + k]):
            masks[k] |= (axis >= centre[j] - lo_pad[j]) & (axis <= centre[j] + hi_pad[j])
    return masks


_BAC_SPLITS = ("reference", "val", "finetune", "test")
# Ho et al.'s per-class proportions reference : finetune : test = 2000 : 100 : 100.
_HO_PROPORTIONS = (2000, 100, 100)


def _bac30_layout(n: int, k: Bac30Knobs, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class ids (n,) and split codes (n,) (indices into _BAC_SPLITS) in a random row order."""
    n_classes = len(BAC30_CLASSES)
    per_class = n // n_classes + (np.arange(n_classes) < n % n_classes)
    need = 2 * k.min_shifted_per_class + 2
    if per_class.min() < need:
        raise ConfigError(
            f"synth-bac30 needs >= {need} spectra per class "
            f"(min_shifted_per_class={k.min_shifted_per_class}): n >= {need * n_classes}, got {n}"
        )
    ref_share = _HO_PROPORTIONS[0] / sum(_HO_PROPORTIONS)
    cls, code = [], []
    for c, m in enumerate(per_class.tolist()):
        shifted = max(k.min_shifted_per_class, round(m * (1.0 - ref_share) / 2.0))
        ref = m - 2 * shifted
        val = min(max(1, round(k.val_fraction * ref)), ref - 1)
        sizes = (ref - val, val, shifted, shifted)
        cls.append(np.full(m, c))
        code.append(np.repeat(np.arange(4), sizes))
    perm = rng.permutation(n)
    return np.concatenate(cls)[perm].astype(np.int64), np.concatenate(code)[perm].astype(np.int64)


def simulate_bac30(
    n: int, seed: int, k: Bac30Knobs, with_components: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Class ids (n,), split codes (n,), X (n, 1000) float32 and, if asked, components (n, 30, 1000)."""
    rng = np.random.default_rng(child_seed(seed, 0))
    y, split_code = _bac30_layout(n, k, rng)
    shifted = split_code >= 2  # finetune and test: the other measurement day
    axis = named_axis("ho")
    axis32, min_dx, t = axis_helpers(axis)
    centre0, fwhm0, family, weights = bac30_signatures(k)
    n_bands = len(centre0)
    fam_mult = np.exp(k.family_spread * rng.standard_normal((len(BAC30_FAMILIES), n)))
    band_mult = np.exp(k.band_spread * rng.standard_normal((n_bands, n)))
    jitter = k.jitter_cm * rng.standard_normal((n_bands, n))

    X = np.zeros((n, len(axis)), dtype=np.float32)
    comp = np.zeros((n, len(BAC30_CLASSES), len(axis)), dtype=np.float32) if with_components else None
    for j in range(n_bands):
        signature = weights[1:, j][y]
        rows = np.flatnonzero(weights[0, j] + signature != 0.0)
        if rows.size == 0:
            continue
        mult = fam_mult[family[j], rows] * band_mult[j, rows]
        centre = centre0[j] + jitter[j, rows] + k.shift_cm * shifted[rows]
        win = gaussian_windows(axis, axis32, min_dx, centre, np.full(rows.size, fwhm0[j]))
        win.add_to(X, rows, (weights[0, j] + signature[rows]) * mult)
        if comp is not None:
            sub = np.flatnonzero(signature[rows] != 0.0)
            own = rows[sub]
            win.add_to(
                comp.reshape(-1, len(axis)),
                own * len(BAC30_CLASSES) + y[own],
                signature[own] * mult[sub],
                sub,
            )

    count = np.minimum(rng.poisson(k.n_nuisance, n), _NUISANCE_SLOTS_BAC)
    s = rng.random((3, _NUISANCE_SLOTS_BAC, n))
    for slot in range(_NUISANCE_SLOTS_BAC):
        rows = np.flatnonzero(count > slot)
        if rows.size == 0:
            break
        centre = axis[0] + (axis[-1] - axis[0]) * s[0, slot, rows]
        amp = 0.02 + (k.nuisance_max - 0.02) * s[2, slot, rows]
        gaussian_windows(axis, axis32, min_dx, centre, 10.0 + 20.0 * s[1, slot, rows]).add_to(X, rows, amp)

    # Fluorescence: a broad hump centred in the upper part of the axis or beyond, stronger on the shifted day.
    b = rng.random((3, n)).astype(np.float32)
    level = k.background * (0.5 + b[0]) * np.where(shifted, 1.0 + k.shift_background, 1.0).astype(np.float32)
    add_humps(X, axis32, 1200.0 + 1400.0 * b[1], 600.0 + 900.0 * b[2], level)
    # The shifted day's instrument response tilts everything it detects, class signal included.
    rows = np.flatnonzero(shifted)
    response = (1.0 + k.shift_gain * t).astype(np.float32)
    X[rows] *= response
    if comp is not None:
        comp[rows] *= response
    # Shot noise: sd grows as the square root of the detected intensity (plus a read-noise floor).
    sd = np.maximum(X, 0.0)
    sd += 0.05
    np.sqrt(sd, out=sd)
    sd *= k.noise
    sd *= standard_normal(seed, X.shape)
    X += sd
    if k.normalize:
        minmax_rows(X, comp)
    return y, split_code, X, comp
