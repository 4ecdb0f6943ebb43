"""Synthetic benchmarks with ground-truth bands: ``synth-ir17`` and ``synth-bac30``.

The paper's datasets are out of reach and heavy on a laptop, so the embedded default data are two generated
benchmarks built from band tables. Unlike any real dataset they say exactly where each class's signal lies:
`SpectraDataset.masks` (K, L) holds it, so explanations can be scored against the truth.

``synth-ir17`` (`make_synth_ir17`): multilabel, the 17 NIST-IR functional groups of Fine et al. 2020 in the
paper's label order, on ``named_axis("ir")`` (1024 points, 400-4000 cm-1), splits train/val/test 80/10/10.
Each present group adds its textbook IR bands (`IR17_BANDS`): centre drawn in the correlation-table range,
FWHM and relative intensity jittered per molecule. Label-free "skeleton" bands, a drifting baseline and white
noise are added; each spectrum is min-max scaled to [0, 1] (as FCG-Former scales NIST-IR).
Labels follow NIST-IR's shares (`IR17_LABEL_SHARES`), 1-6 groups per molecule, and the SMARTS overlaps of the
real labels: an ester also fires *ether*, a carboxylic acid *alcohols*, an acyl halide *alkyl halides*.

``synth-bac30`` (`make_synth_bac30`): multiclass, Ho et al. 2019's 30 isolates (their names and order) on
``named_axis("ho")``; ``extras["y_group"]`` is the empiric-treatment group (8 antibiotics). Every cell is the
same consensus mixture of protein, lipid, nucleic-acid and carbohydrate Raman bands (`BAC30_BANDS`); a class
differs from it by a *signature*: relative weights of a few bands of one or two band sets at each taxonomic
level (Gram type, genus, species, strain; deeper levels change less) plus weak marker bands. Strong
per-spectrum variation of the band-set weights, a fluorescence background and shot noise make single spectra
low-SNR, like Ho's 1-s single-cell spectra. Splits (Ho's 2000 : 100 : 100 per class, at the requested scale):
``reference`` (pre-training), ``val`` (a stratified ``val_fraction`` of the reference-day spectra, for early
stopping), ``finetune`` and ``test``. The finetune/test spectra are measured "on another day": wavenumber
calibration offset, a tilted instrument response and more fluorescence, so fine-tuning matters. No
``finetune_val`` is carved: Ho draws a random 10% of the finetune set per repetition (5 repetitions), which
the training code does with `random_splits(..., stratify=y)`.

Ground-truth masks (K, L) bool:

=============  ===========================================================================================
kind           ``masks[k]`` is True on
=============  ===========================================================================================
synth-ir17     the union over class k's bands in `IR17_BANDS` of [lo - FWHM, hi + FWHM] (centre range
               widened by ``MASK_FWHM`` x the nominal FWHM), whether or not an optional band was drawn.
synth-bac30    the union over the bands where class k's signature is non-zero (its signature bands and
               markers, `bac30_signatures`) of centre +- FWHM, widened by 3 sd of the centre jitter and by
               the measurement-day shift, so it holds for the shifted finetune/test spectra too.
=============  ===========================================================================================

`render_components` returns, for the same arguments, the same spectra and each class's noise-free contribution
(N, K, L) in X's units: for ir17 the group's bands; for bac30 the class signature (its deviation from the
consensus cell), the only label-dependent part of a spectrum. Every call is deterministic: the same
(kind, n, seed, knobs) give byte-identical files (on one platform and numpy version: vectorised float32
``exp`` may differ in the last bit between CPU instruction sets).
"""

from __future__ import annotations

import argparse
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.special import ndtri

from peakmixer.config import ConfigError
from peakmixer.data.dataset import (
    SYNTH_GENERATOR,
    SpectraDataset,
    load,
    named_axis,
    random_splits,
    synth_recipe,
)
from peakmixer.data.labels import BAC30_CLASS_TO_GROUP, BAC30_CLASSES, BAC30_GROUPS, BAC30_LABELS
from peakmixer.synth.ir17_bands import GROUP_INDEX as _IR
from peakmixer.synth.ir17_bands import IR17_BANDS, IR17_LABELS
from peakmixer.synth.ir17_bands import (
    textbook_bands as textbook_bands,  # its old home: peakmixer.synth.benchmarks
)
from peakmixer.synth.streams import child_seed, minmax_rows

GENERATOR_VERSION = "2"  # the default version of every kind (what the results store was made with)
KINDS = ("synth-ir17", "synth-bac30")
# Versions that can still be made, per kind: synth-ir17 v3-v9 are the realistic generator of
# `synth.ir17_realistic` (v4: wider randomisation; v5: volatile gases and label-free molecules; v6: half the
# molecules drawn from their force-field normal modes; v7: saturated strong bands and brighter C-H stretches;
# v8: table bands that the molecule's own substructures decide; v9: half the normal-mode spectra as a
# classical MD run's).
REALISTIC_IR17 = ("3", "4", "5", "6", "7", "8", "9")  # the keys of `synthir.PRESETS`
VERSIONS = {"synth-ir17": ("2", *REALISTIC_IR17), "synth-bac30": ("2",)}

# A Gaussian of FWHM w is exp(-4 ln2 (x - c)^2 / w^2); it is evaluated on +-2.5 FWHM (tail below 1e-7).
_FOUR_LN2 = np.float32(4.0 * np.log(2.0))
_WINDOW_FWHM = 2.5
# Masks widen each band's centre range by this many nominal FWHM on each side (>= 95% of the energy, tested).
MASK_FWHM = 1.0

# ================================================================================================
# synth-ir17: band table and label statistics
# ================================================================================================

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


# ================================================================================================
# synth-bac30: Ho et al. classes, band table, signatures
# ================================================================================================
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


# ================================================================================================
# public API
# ================================================================================================
class SynthParts(NamedTuple):
    """What `render_components` returns; X is byte-identical to the dataset's X for the same arguments."""

    labels: np.ndarray  # (N, K) uint8 for ir17, (N,) int64 class ids for bac30
    X: np.ndarray  # (N, L) float32 spectra
    components: np.ndarray  # (N, K, L) float32: each class's noise-free contribution, in X's units


def make_synth_ir17(n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any) -> SpectraDataset:
    """synth-ir17: (n, 1024) multilabel IR spectra over the 17 NIST-IR groups; see the module docstring
    (version 2) or `synth.ir17_realistic` (versions 3-9, realistic).

    Knobs are the fields of `IR17Knobs` (v2) or `synthir.IR17V3Knobs` (v3-v9: overrides of the version's
    preset). Splits train/val/test 80/10/10 (seeded); masks (17, 1024).
    """
    _check_version("synth-ir17", version)
    if version in REALISTIC_IR17:
        return _make_ir17_realistic(n, seed, version, **knobs)
    k = _knobs("synth-ir17", version, **knobs)
    y, X, _ = _simulate_ir17(n, seed, k, with_components=False)
    axis = named_axis("ir")
    provenance = _provenance("synth-ir17", n, seed, k, f"each band's centre range +- {MASK_FWHM} x FWHM") | {
        "bands": _IR17_BAND_SOURCES,
        "labels": "Fine et al. 2020 SMARTS semantics; NIST-IR label shares (sub_id datasets figure)",
    }
    return _ir17_dataset(X, y, seed, f"synth-ir17-s{seed}", provenance, ir17_masks(axis))


_IR17_BAND_SOURCES = "IR correlation tables: Silverstein, Webster & Kiemle 2005 ch. 2; Socrates 2001"


def _ir17_dataset(
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


def make_synth_bac30(n: int, seed: int, **knobs: Any) -> SpectraDataset:
    """synth-bac30: (n, 1000) Raman spectra of Ho et al.'s 30 isolates; see the module docstring.

    Knobs are the fields of `Bac30Knobs`. Splits reference/val/finetune/test; ``extras["y_group"]`` (n,)
    int64 treatment group; masks (30, 1000).
    """
    k = Bac30Knobs(**knobs)
    y, split_code, X, _ = _simulate_bac30(n, seed, k, with_components=False)
    axis = named_axis("ho")
    return SpectraDataset(
        X=X,
        axis=axis,
        y=y,
        task="multiclass",
        label_names=list(BAC30_LABELS),
        ids=[f"synth-bac30-s{seed}-{i:07d}" for i in range(n)],
        splits={name: np.flatnonzero(split_code == j) for j, name in enumerate(_BAC_SPLITS)},
        provenance=_provenance(
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


def make_synth(
    kind: str, n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any
) -> SpectraDataset:
    """`make_synth_ir17` or `make_synth_bac30` by name (one of `KINDS`) and generator version."""
    _check_version(kind, version)
    if kind == "synth-ir17":
        return make_synth_ir17(n, seed, version, **knobs)
    return make_synth_bac30(n, seed, **knobs)


def _check_version(kind: str, version: str) -> None:
    if kind not in VERSIONS:
        raise ConfigError(f"unknown synthetic kind {kind!r}: expected one of {KINDS}")
    if version not in VERSIONS[kind]:
        raise ConfigError(f"{kind} has no generator version {version!r}: choose one of {VERSIONS[kind]}")


def _make_ir17_realistic(n: int, seed: int, version: str, **knobs: Any) -> SpectraDataset:
    from peakmixer.synth.ir17_realistic import ir17_v3_masks, molecule_pool, render_ir17_v3

    k = _knobs("synth-ir17", version, **knobs)
    y, X, _, mol = render_ir17_v3(n, seed, k)
    rule = "each band's centre range x frequency scale x (1 +- 2 band_jitter) +- reach"
    prov = _provenance("synth-ir17", n, seed, k, rule) | {
        "generator_version": version,
        "bands": _IR17_BAND_SOURCES,
        "labels": "NCI structures shipped with RDKit (first_5K.smi), NIST-17 SMARTS of Fine et al. 2020",
    }
    smiles = np.array([molecule_pool().smiles[i] if i >= 0 else "" for i in mol], dtype=str)
    masks = ir17_v3_masks(named_axis("ir"), k)
    return _ir17_dataset(X, y, seed, f"synth-ir17-v{version}-s{seed}", prov, masks, {"smiles": smiles})


def render_components(
    kind: str, n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any
) -> SynthParts:
    """The spectra of ``make_synth(kind, n, seed, version, **knobs)`` with each class's noise-free part.

    Returns labels, X (N, L) and components (N, K, L); a class absent from a spectrum has exactly zero there.
    Memory is N * K * L * 4 bytes: meant for a few hundred spectra (tests, the data notebook).
    """
    _check_version(kind, version)
    k = _knobs(kind, version, **knobs)
    if kind == "synth-ir17" and version in REALISTIC_IR17:
        from peakmixer.synth.ir17_realistic import render_ir17_v3

        y, X, comp, _ = render_ir17_v3(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    if kind == "synth-ir17":
        y, X, comp = _simulate_ir17(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    if kind == "synth-bac30":
        y, _, X, comp = _simulate_bac30(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    raise ConfigError(f"unknown synthetic kind {kind!r}: expected one of {KINDS}")


def ir17_masks(axis: np.ndarray) -> np.ndarray:
    """(17, L) bool: each group's band windows [lo - MASK_FWHM * FWHM, hi + MASK_FWHM * FWHM] on `axis`."""
    masks = np.zeros((len(IR17_LABELS), len(axis)), dtype=bool)
    for b in IR17_BANDS:
        masks[b.label] |= (axis >= b.lo - MASK_FWHM * b.fwhm) & (axis <= b.hi + MASK_FWHM * b.fwhm)
    return masks


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


def ensure_synth(
    kind: str, n: int, seed: int, data_dir: str | os.PathLike, version: str = GENERATOR_VERSION
) -> Path:
    """The file of (kind, n, seed, version) under `data_dir`, generated on first use; generation is
    deterministic, so a file with this name (which carries the version) holds the same data. A cached file
    whose recorded recipe (`recipe`: the knobs included) is not the current one is made again: runs name
    their data by that recipe (`data.data_identity`)."""
    _check_version(kind, version)
    path = Path(data_dir) / f"{kind}_v{version}_n{n}_s{seed}.npz"
    if not path.exists() or _recorded_recipe(path) != recipe(kind, n, seed, version):
        make_synth(kind, n, seed, version).save(path)
    return path


def recipe(kind: str, n: int, seed: int, version: str = GENERATOR_VERSION) -> dict[str, Any]:
    """What `data.data_identity` names a default-knob synthetic set by, without generating it."""
    provenance = _provenance(kind, n, seed, _knobs(kind, version), "") | {"generator_version": version}
    return synth_recipe(provenance)


def _recorded_recipe(path: Path) -> dict[str, Any]:
    return synth_recipe(load(path).provenance)


def _knobs(kind: str, version: str, **overrides: Any) -> Any:
    """The knobs of (kind, version) with `overrides`: `IR17Knobs`, `Bac30Knobs` or, for the realistic
    synth-ir17 versions, `synthir.IR17V3Knobs` from the version's preset."""
    if kind == "synth-ir17" and version in REALISTIC_IR17:
        from peakmixer.synth.ir17_realistic import knobs_for

        return knobs_for(version, **overrides)
    return {"synth-ir17": IR17Knobs, "synth-bac30": Bac30Knobs}[kind](**overrides)


# ================================================================================================
# CLI: python -m peakmixer data synth
# ================================================================================================
def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``data synth``: --kind, --n, --seed, --out and repeatable --knob NAME=VALUE."""
    parser.add_argument("--kind", choices=KINDS, required=True, help="which benchmark")
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed (same arguments -> identical file)")
    parser.add_argument("--out", type=Path, required=True, help="output dataset file")
    parser.add_argument(
        "--version",
        default=GENERATOR_VERSION,
        help=f"generator version (default {GENERATOR_VERSION}; synth-ir17 3-6: realistic, see synthir)",
    )
    parser.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a knob (fields of IR17Knobs / IR17V3Knobs / Bac30Knobs), e.g. --knob noise=0.05",
    )


def run_synth(args: argparse.Namespace) -> Path:
    """Generate and save the dataset described by `args` (from `add_synth_arguments`); returns its path."""
    knobs = parse_knobs(args.kind, args.knob, args.version)
    ds = make_synth(args.kind, args.n, args.seed, args.version, **knobs)
    path = ds.save(args.out)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in ds.splits.items())
    print(f"{path}: {args.kind}, {len(ds)} spectra x {ds.length} points, seed {args.seed} ({sizes})")
    return path


def parse_knobs(kind: str, items: list[str], version: str = GENERATOR_VERSION) -> dict[str, Any]:
    """``["noise=0.05", "normalize=false"]`` -> typed knob values for `kind`; unknown names raise."""
    _check_version(kind, version)
    cls = type(_knobs(kind, version))
    types = {f.name: f.type for f in fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in types:
            raise ConfigError(f"--knob {item!r}: expected NAME=VALUE with NAME one of {sorted(types)}")
        if types[name] == "bool":
            if value.lower() not in {"true", "false", "1", "0"}:
                raise ConfigError(f"--knob {item!r}: expected true or false")
            out[name] = value.lower() in {"true", "1"}
        else:
            out[name] = int(value) if types[name] == "int" else float(value)
    return out


# ================================================================================================
# internals
# ================================================================================================
_BAC_SPLITS = ("reference", "val", "finetune", "test")
_NOISE_BLOCK = 2048  # rows per noise stream (fixed: it defines the random stream)
# Ho et al.'s per-class proportions reference : finetune : test = 2000 : 100 : 100.
_HO_PROPORTIONS = (2000, 100, 100)


def _provenance(
    kind: str, n: int, seed: int, knobs: IR17Knobs | Bac30Knobs, mask_rule: str
) -> dict[str, Any]:
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


class _Window(NamedTuple):
    """Unit-height Gaussians of R bands, each on a window of axis columns (see `_gaussian_windows`)."""

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


def _gaussian_windows(
    axis: np.ndarray, axis32: np.ndarray, min_dx: float, centre: np.ndarray, fwhm: np.ndarray
) -> _Window:
    """Unit-height Gaussians (R,) with centres `centre` and widths `fwhm` (cm-1), on +-2.5 FWHM windows.

    Bands whose centres stay close (a fixed band with jitter, a textbook range) share one window, which is
    added by row slices; scattered ones (skeleton bands) get one window per row, added through flat indices,
    several times slower per value. Windows are shifted inward at the axis ends, never clipped.
    """
    length = len(axis)
    half = int(np.ceil(_WINDOW_FWHM * float(fwhm.max()) / min_dx))
    width = min(2 * half + 1, length)
    start = np.clip(np.searchsorted(axis, centre) - half, 0, length - width)
    lo, hi = int(start.min()), int(start.max())
    if hi - lo <= 2 * width:
        d = np.broadcast_to(axis32[lo : hi + width], (len(centre), hi - lo + width)).copy()
        start = np.array([lo])
    else:
        d = axis32[start[:, None] + np.arange(width)]
    d -= centre.astype(np.float32)[:, None]
    d *= (np.sqrt(_FOUR_LN2) / fwhm.astype(np.float32))[:, None]
    d *= d
    np.negative(d, out=d)
    return _Window(start, np.exp(d, out=d))


def _axis_helpers(axis: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    t = (axis - axis[0]) / (axis[-1] - axis[0]) * 2.0 - 1.0  # position along the axis in [-1, 1]
    return axis.astype(np.float32), float(np.diff(axis).min()), t.astype(np.float32)


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


def _simulate_ir17(
    n: int, seed: int, k: IR17Knobs, with_components: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels (n, 17), X (n, 1024) float32 and, if asked, components (n, 17, 1024) float32.

    The random stream does not depend on `with_components`, so both paths give the same spectra.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(child_seed(seed, 0))
    axis = named_axis("ir")
    axis32, min_dx, t = _axis_helpers(axis)
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
        win = _gaussian_windows(axis, axis32, min_dx, centre, fwhm)
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
        _gaussian_windows(axis, axis32, min_dx, centre, fwhm).add_to(X, rows, amp)

    # Baseline drift: a tilt plus one broad hump.
    b = rng.random((4, n)).astype(np.float32)
    X += (k.baseline * (2.0 * b[0] - 1.0))[:, None] * t
    hump_centre = axis32[0] + (axis32[-1] - axis32[0]) * b[1]
    _add_humps(X, axis32, hump_centre, 300.0 + 1200.0 * b[2], k.baseline * b[3])
    noise = _standard_normal(seed, X.shape)
    noise *= k.noise
    X += noise
    if k.normalize:
        minmax_rows(X, comp)
    return y, X, comp


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


def _simulate_bac30(
    n: int, seed: int, k: Bac30Knobs, with_components: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Class ids (n,), split codes (n,), X (n, 1000) float32 and, if asked, components (n, 30, 1000)."""
    rng = np.random.default_rng(child_seed(seed, 0))
    y, split_code = _bac30_layout(n, k, rng)
    shifted = split_code >= 2  # finetune and test: the other measurement day
    axis = named_axis("ho")
    axis32, min_dx, t = _axis_helpers(axis)
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
        win = _gaussian_windows(axis, axis32, min_dx, centre, np.full(rows.size, fwhm0[j]))
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
        _gaussian_windows(axis, axis32, min_dx, centre, 10.0 + 20.0 * s[1, slot, rows]).add_to(X, rows, amp)

    # Fluorescence: a broad hump centred in the upper part of the axis or beyond, stronger on the shifted day.
    b = rng.random((3, n)).astype(np.float32)
    level = k.background * (0.5 + b[0]) * np.where(shifted, 1.0 + k.shift_background, 1.0).astype(np.float32)
    _add_humps(X, axis32, 1200.0 + 1400.0 * b[1], 600.0 + 900.0 * b[2], level)
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
    sd *= _standard_normal(seed, X.shape)
    X += sd
    if k.normalize:
        minmax_rows(X, comp)
    return y, split_code, X, comp


def _add_humps(
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


def _standard_normal(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """(N, L) float32 standard normals in fixed row blocks, each from its own stream, filled on threads.

    Noise is the costliest draw; numpy's generators release the GIL, so the blocks fill in parallel. The block
    streams depend only on (seed, block start), so the result is the same for any number of threads.
    """
    out = np.empty(shape, dtype=np.float32)

    def fill(start: int) -> None:
        rng = np.random.default_rng([child_seed(seed, 2), start])
        rng.standard_normal(out=out[start : start + _NOISE_BLOCK], dtype=np.float32)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(0, shape[0], _NOISE_BLOCK)))
    return out
