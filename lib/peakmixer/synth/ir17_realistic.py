"""``synth-ir17`` versions 3 to 9: synthetic IR spectra meant to look real to a model trained on them.

Version 2 (`synth.benchmarks`) draws isolated Gaussians on a flat, noisy baseline with label sets from
independent (copula) coin flips. A model trained on it finds few functional groups in real spectra.
Version 3 keeps its band table (`ir17_bands.IR17_BANDS`: Silverstein, Webster & Kiemle 2005 ch. 2; Socrates
2001) and adds what real spectra have, each drawn per spectrum (domain randomisation, not a fit to any real
set):

- **Label sets of real molecules.** Each spectrum is one of the 5 000 NCI structures that the RDKit wheel
  ships (``rdkit/Data/NCI/first_5K.smi``, NCI open database), labelled with the NIST-IR SMARTS (Fine et al.
  2020, `labels.NIST17_SMARTS`). Group intensities grow with the number of matches (sublinearly): ten CH2
  give a stronger C-H stretch than one. "alkane" carried only by C without H (a quaternary C) has weak bands.
- **Band shapes and widths.** Pseudo-Voigt lines (Gaussian-Lorentzian mix, Lorentzian tails as in condensed
  phase); one width scale per spectrum from sharp computed spectra (~0.25 x the table's FWHM) to broad
  solution spectra (1.6 x).
- **Phase.** Gas-phase spectra (``p_gas``) show rotational P/R branch contours (two lobes 12-35 cm-1 apart,
  sometimes a sharp Q branch), free O-H near 3650 and monomer acid C=O; condensed-phase spectra show the broad
  H-bonded O-H (and the broad acid dimer O-H) instead (Silverstein ch. 2.6).
- **Frequency scale.** All band centres times one factor in [0.975, 1.06] per spectrum: gas-condensed shifts
  below 1, and above it unscaled computed harmonic frequencies, which overestimate observed ones by about 4%
  (B3LYP) to 6% (MP2) (Scott & Radom, J. Phys. Chem. 1996, 100, 16502: scale factors 0.9614 and 0.9427).
- **Skeleton.** Label-free bands, their number growing with the molecule's heavy atoms (about 3N - 6 modes,
  most IR-weak): mostly in the fingerprint region 400-1500 cm-1.
- **Instrument and atmosphere.** A baseline (tilt + broad hump) and white or smoothed noise, each over two
  decades of level; residual water-vapour lines (1350-1950, 3550-3950) and the CO2 doublet near 2350 and its
  667 band, of either sign (an imperfect background subtraction); a low-wavenumber cut-off (the detector's
  range) filled with the edge value as the importer does.

**Version 4** renders the same way with wider draws (`PRESETS`), for spectra whose intensities and positions
follow no correlation table closely, computed ones above all:

- intensities: per band a log-normal factor of sd 0.8 (about x2.2) and per molecule and group sd 0.6:
  computed IR intensities are much less reliable than computed frequencies, with errors of tens of percent
  even at high levels of theory and more for weak and anharmonic bands (Galabov, Yamaguchi, Remington &
  Schaefer, J. Phys. Chem. A 2002, 106, 819), and correlation tables give only intensity classes (s/m/w);
- positions: each band its own relative frequency error, sd 0.8% (clipped at 2 sd), on top of the one scale
  factor: after scaling, computed frequencies still scatter by 30-60 cm-1 rms over modes (Scott & Radom
  1996), of which this is a part (8 cm-1 at 1000 cm-1, 24 cm-1 at 3000 cm-1);
- skeleton bands up to the strength of a group's strongest band (drug-like fingerprints hold strong C-N, C-C
  and ring modes that belong to no label).

These values were set from those sources before any real set was scored with version 4.

**Version 5** is version 4 with two kinds of molecule that a reference library holds and the NCI set lacks:

- **Volatile molecules in the gas phase.** A gas-phase spectrum needs a vapour pressure, so gas-phase
  libraries hold small molecules; gas-phase spectra draw their molecule from the NCI structures of at most
  10 heavy atoms (decane and naphthalene, C10, boil near 175 and 218 C). Condensed-phase spectra keep the
  whole set.
- **Molecules without any of the 17 groups.** 10% of the spectra are of a molecule that carries no label:
  inorganic gases and hydrides (water, ammonia, H2S, CO2, SO2, SF6) and the like, which a gas-phase library
  holds and only 0.3% of the NCI structures are. Such a spectrum has 1 + Poisson(2) strong fundamentals
  anywhere in 400-4000 cm-1 (X-H stretches of hydrides, X=O and X-F stretches, bends; random, no table of
  any molecule's bands), with the gas-phase contour when it is a gas. A model trained without them has only
  ever seen bands that belong to a group, and names a group for each band of a water spectrum.

Both values (10 atoms, 10%) are round numbers chosen before version 5 was scored on any real set. Not
blind, though: what to add came from reading version 4's false positives on the NIST gas-phase set (it named
groups in water, H2S and CO2), so version 5's score on that set is not an untouched yardstick; no band or
share was taken from it.

**Version 6** is version 5 with cheap physics beside the band table: half of the molecules' spectra
(``p_physics``) are drawn from their harmonic normal modes under the MMFF94 force field with fixed-charge
intensities (`synth.normalmodes`, a shipped table of the NCI structures) instead of the table's bands and
random skeleton. The table knows where a group's band lies in general; the modes know this molecule: its
skeleton, its couplings, its relative intensities, a band that a substituent moves out of its window. Each
normal-mode spectrum is randomised as the table's are (width, line shape, phase contours, per-band frequency
error and intensity factor, a level per group, baseline, noise, atmosphere, cut-off), with its own frequency
scale, uniform in [0.95, 1.03] (MMFF94 stretches run a few % high), and condensed-phase X-H stretches
H-bonded: red-shifted and broadened by one H-bond level per spectrum, up to 12% and x15 for alcohol O-H, 20%
and x25 for acid O-H, 4% and x4 for N-H (Silverstein ch. 2: free O-H near 3650, bonded 3200-3550, acid dimers
2500-3300). A group's component holds its own modes whose line lies inside its mask; a group none of whose
modes falls in its window (a C-Cl stretch mixed into the skeleton) has no component in that spectrum. The
share (one half), the scale range and the H-bond limits were set before version 6 was scored on any real set.

**Version 7** is version 6 with two effects that measured spectra show and versions 3 to 6 lack:

- **Saturated strong bands.** A share of the spectra (``p_saturated``, 0.3) are recorded with their strongest
  band beyond the linear range: scaled to a peak absorbance log-uniform in [0.5, 5] and measured through stray
  light log-uniform in 0.1-3% of the beam, A' = -log10((10^-A + s) / (1 + s)), so that a band far stronger
  than -log10(s) is flat-topped and broadened, and the weak bands gain against it (stray light bounds the
  measurable absorbance: Skoog, Holler & Crouch, Principles of Instrumental Analysis, ch. 13, deviations
  from Beer's law; a gas cell or a neat film easily exceeds it). The group components stay the linear
  contributions (the masks are about where a group's bands lie, not how the detector renders them).
- **Brighter C-H stretches in normal-mode spectra.** `synth.normalmodes` takes the C-H bond flux at the
  low end of the alkane values (0.4 D/A), which leaves the C-H stretches of a hydrocarbon weaker than its
  bends, while measured hydrocarbon spectra have the C-H stretches as their strongest bands (Silverstein
  ch. 2, the alkane spectra); version 7 draws the flux per spectrum from 0.4 to 1.0 D/A: the normal-mode
  lines between 2700 and 3150 cm-1 times a factor log-uniform in [1, 6.25] (``ch_stretch_max``).

Not blind: both came from looking at version 6's errors on the NIST gas-phase set (it named alcohols in
alkane spectra whose C-H stretch is a broad, flat-topped band). The ranges are instrument and literature
values chosen before version 7 was scored on any real set, and no band or share was taken from a real
spectrum.

**Version 8** is version 7 whose band-table spectra show the bands that the molecule carries. Up to version 7
a band of a group's sub-type was a coin flip with the band's share of the group (a C-F stretch in 35% of the
halides, whichever halogen the molecule has; the alcohols' O-H stretch in about half of their spectra),
although each spectrum is of a known molecule. In version 8 the molecule decides (`_BAND_SMARTS`, from the
same tables): the C-X stretch of its own halogens, the aryl-O stretch of an aryl ether, the O-CH3 C-H
stretch of a methoxy group, the CH2 rock of a chain of four, the N-H scissoring of a primary amine and the
N-H bands of an amide with an N-H. And every alcohol (and gas-phase acid) shows an O-H stretch, free or
H-bonded by phase: it is the band that marks an alcohol (Silverstein ch. 2.6). Not blind: the occlusion of
version 7's "alcohols" score on NIST alkane spectra pointed at the 1000-1400 cm-1 region, where the table's
alcohols carried a C-O stretch and, half the time, nothing else; what version 8 draws comes from the tables
and the molecules, not from any real spectrum.

**Version 9** is version 8 with a kind of computed spectrum that versions 6 to 8 lack: the spectrum of a
classical molecular-dynamics trajectory, as large computed IR libraries of drug-like molecules are made (a
fixed-charge force field, a liquid box at 300 K, the Fourier transform of the dipole autocorrelation over a
few ps: Alberts et al., rxn4chemistry's MD pipeline, after Braun's LAMMPS recipe, doi 10.5281/zenodo.154672).
Half of the normal-mode spectra (``p_md``) are rendered as such a run would show the same modes, in the
condensed phase (H-bonded X-H stretches, no rotational contours):

- **Fixed-charge C-H stretches.** Alkyl H atoms carry small fixed charges (about 0.06 e in OPLS-AA and PCFF,
  about 0.3 D/A of bond dipole derivative, against the 0.4 D/A flux of `synth.normalmodes`) and no charge
  flux: the normal-mode lines between 2700 and 3150 cm-1 times a factor log-uniform in [0.25, 1] instead of
  version 7's brightening.
- **Classical line intensities.** A classical trajectory puts kT into every mode, so without the harmonic
  quantum correction factor the band areas fall as 1 / wavenumber (Gaigeot & Sprik, J. Phys. Chem. B 2003,
  107, 10344; pipelines write both); each spectrum takes (wavenumber / 1000)^-p, p uniform in [0, 1]
  (p = 0: corrected).
- **A finite trajectory's estimate.** The transform of an autocorrelation taken over half the trajectory is
  a noisy estimate whose error is proportional to the spectrum at each frequency (a periodogram's; no signal,
  no noise): each point of the lines times a log-normal factor of sd log-uniform in [0.15, 0.7].

Not blind: what to add came from looking at the computed drug-like spectra of the multimodal set, where
versions 6 to 8 stay near chance (weak X-H stretches, spiky bands, empty regions between them); the ranges
come from force-field charges and the pipeline's published method, not from any real spectrum, and the
share (one half) is a round number set before version 9 was scored on any real set.

Masks: each of a group's bands, centre range times the frequency-scale range, widened by ``MASK_REACH`` x its
nominal FWHM x the largest width scale, and by the clip of the per-band frequency error (>= 95% of each
present group's energy, tested). They are wider than version 2's: a scientist scoring an explanation against
them should know the truth is blurrier here.

Deterministic: the same (n, seed, knobs) give the same spectra; ``render_ir17_v3`` also returns each group's
noise-free contribution (N, K, L).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np

from peakmixer.config import ConfigError, MissingFile
from peakmixer.data.dataset import named_axis
from peakmixer.data.labels import NIST17_NAMES, NIST17_SMARTS, compile_smarts, parse_smiles
from peakmixer.synth.ir17_bands import IR17_BANDS
from peakmixer.synth.ir17_lines import add_atmosphere, add_lines, add_modes, contour, saturate
from peakmixer.synth.normalmodes import nci_modes, table_digest
from peakmixer.synth.streams import child_seed, minmax_rows

MASK_REACH = 2.0  # mask half-widening, in nominal FWHM x the largest width scale
_MAX_SKELETON = 40
_BLOCK = 1024  # rows per random stream (fixed: it defines the stream) and per worker task
# Phase of each band of IR17_BANDS: free O-H and monomer acid bands in the gas phase, H-bonded ones condensed.
_GAS_ONLY = {"O-H stretch, free", "O-H stretch, monomer"}
_CONDENSED_ONLY = {"O-H stretch, H-bonded", "O-H stretch, dimer (broad)"}
# Count patterns for intensity: C-H bearing sp3 carbons for "alkane" (the label also fires on a bare C).
_COUNT_OVERRIDE = {"alkane": "[CX4;H1,H2]"}
# Knobs that versions 5 to 9 added, at their "off" value.
_LATER: dict[str, float | bool] = {
    "gas_max_atoms": 0,
    "p_label_free": 0.0,
    "p_physics": 0.0,
    "p_saturated": 0.0,
    "ch_stretch_max": 1.0,
    "band_chemistry": False,
    "p_md": 0.0,
}
# Version 8: a table band of a group's sub-type shows when the molecule has the sub-type (Silverstein ch. 2;
# Socrates 2001), instead of by a coin flip with the band's share: the halogen's own C-X stretch, the aryl-O
# stretch of aryl ethers, the O-CH3 C-H stretch of methoxy groups, the CH2 rock of chains of four, the N-H
# bands of primary amines and of amides that carry an N-H.
_BAND_SMARTS: dict[tuple[str, str], str] = {
    ("alkane", "CH2 rocking (chain >= 4)"): "[CH2][CH2][CH2][CH2]",
    ("amines", "N-H scissoring (primary)"): "[NX3;H2;!$(NC=O)]",
    ("alkyl halides", "C-F stretch"): "[#6]F",
    ("alkyl halides", "C-Cl stretch"): "[#6]Cl",
    ("alkyl halides", "C-Br stretch"): "[#6]Br",
    ("alkyl halides", "C-I stretch"): "[#6]I",
    ("ether", "aryl-O asym. stretch"): "c[OX2][#6]",
    ("ether", "O-CH3 C-H stretch"): "[CH3][OX2][#6]",
    ("acyl halides", "C-Cl stretch"): "[CX3](=O)Cl",
    ("amides", "N-H stretch"): "[NX3;H1,H2][CX3]=O",
    ("amides", "amide II N-H bend"): "[NX3;H1,H2][CX3]=O",
}
# ... and an O-H stretch shows in every alcohol and gas-phase acid spectrum (free or H-bonded by phase):
# it is the band that makes an alcohol's spectrum one.
_ALWAYS = {("alcohols", "O-H stretch, free"), ("alcohols", "O-H stretch, H-bonded"),
           ("carboxylic acids", "O-H stretch, monomer")}  # fmt: skip


@dataclass(frozen=True)
class IR17V3Knobs:
    """Ranges of the per-spectrum draws of synth-ir17 v3-v9 (intensities relative to a strong band = 1;
    v4, v5 = `PRESETS["4"]`, `PRESETS["5"]`)."""

    p_gas: float = 0.4  # share of gas-phase spectra (P/R contours, free O-H)
    width_min: float = 0.25  # width scale per spectrum, log-uniform in [width_min, width_max]
    width_max: float = 1.6
    eta_max: float = 0.8  # Lorentzian share of the line shape, uniform in [0, eta_max]
    shift_min: float = 0.975  # frequency scale, uniform in [shift_min, shift_max]
    shift_max: float = 1.06
    intensity_spread: float = 0.35  # sd of log intensity per molecule and group
    band_spread: float = 0.3  # sd of log intensity per band
    count_power: float = 0.6  # intensity grows as (number of matches) ** count_power
    skeleton_per_atom: float = 0.8  # mean skeleton bands per heavy atom (Poisson, at most 40)
    noise_min: float = 3e-4  # white-noise sd, log-uniform in [noise_min, noise_max]
    noise_max: float = 0.015
    baseline_max: float = 0.08  # baseline amplitude, log-uniform in [baseline_max / 100, baseline_max]
    p_atmosphere: float = 0.3  # share of spectra with residual water and CO2 lines
    p_cutoff: float = 0.3  # share of spectra cut below a detector limit in [400, 650] cm-1
    band_jitter: float = 0.0  # sd of each band's own relative frequency error (clipped at 2 sd)
    skeleton_max: float = 0.5  # skeleton band intensity, log-uniform in [0.02 (label-free: 0.1), this]
    gas_max_atoms: int = 0  # gas-phase spectra draw molecules of at most this many heavy atoms (0: any)
    p_label_free: float = 0.0  # share of spectra of a small molecule that carries none of the 17 groups
    p_physics: float = 0.0  # share of molecule spectra from its force-field normal modes (normalmodes)
    p_saturated: float = 0.0  # share of spectra whose strong bands pass the linear range (stray light)
    ch_stretch_max: float = 1.0  # normal-mode C-H stretch intensity factor, log-uniform in [1, this]
    band_chemistry: bool = False  # a table band shows where the molecule carries what makes it (v8)
    p_md: float = 0.0  # share of normal-mode spectra rendered as a classical MD run's spectrum (v9)

    def record(self) -> dict[str, float | int | bool | str]:
        """The knobs as a recipe names them: later versions' only where set, so that the recipes (and the
        stored runs) of earlier versions stay as they were. With normal-mode spectra, also the digest of
        the mode table they come from: a rebuilt table draws other spectra."""
        out: dict[str, float | int | bool | str] = {
            k: v for k, v in asdict(self).items() if k not in _LATER or v != _LATER[k]
        }
        if self.p_physics > 0:
            out["mode_table"] = table_digest()
        return out


# The versions this module renders (`synth.REALISTIC_IR17`). Version 4: the same renderer, randomised as
# widely as the gap between computed and measured spectra (module docstring), chosen from the literature
# before any real spectrum was scored.
PRESETS: dict[str, dict[str, float]] = {
    "3": {},
    "4": {"intensity_spread": 0.6, "band_spread": 0.8, "band_jitter": 0.008, "skeleton_max": 1.0},
}
PRESETS["5"] = PRESETS["4"] | {"gas_max_atoms": 10, "p_label_free": 0.1}
PRESETS["6"] = PRESETS["5"] | {"p_physics": 0.5}
PRESETS["7"] = PRESETS["6"] | {"p_saturated": 0.3, "ch_stretch_max": 6.25}
PRESETS["8"] = PRESETS["7"] | {"band_chemistry": True}
PRESETS["9"] = PRESETS["8"] | {"p_md": 0.5}


def knobs_for(version: str, **overrides: float | bool) -> IR17V3Knobs:
    """The knobs of `version` (a key of `PRESETS`), with `overrides` (``--knob`` values) on top."""
    if version not in PRESETS:
        raise ConfigError(f"synth-ir17 version {version!r} is not rendered here: one of {list(PRESETS)}")
    k = PRESETS[version] | overrides
    atoms = k.get("gas_max_atoms", 0)
    if atoms != int(atoms) or atoms < 0:  # an int also when it came as 10.0: it is part of the recipe
        raise ConfigError(f"gas_max_atoms must be a whole number >= 0 (0: any molecule), got {atoms}")
    for share in ("p_label_free", "p_physics", "p_saturated", "p_md"):
        if not 0.0 <= k.get(share, 0.0) <= 1.0:
            raise ConfigError(f"{share} must be a share in [0, 1], got {k[share]}")
    if k.get("ch_stretch_max", 1.0) < 1.0:
        raise ConfigError(f"ch_stretch_max must be >= 1 (a factor's upper end), got {k['ch_stretch_max']}")
    return IR17V3Knobs(**(k | {"gas_max_atoms": int(atoms)}))


class MoleculePool(NamedTuple):
    """Real molecules' label sets: labels (M, 17) uint8, counts (M, 17) float32, heavy atoms (M,)."""

    smiles: tuple[str, ...]
    labels: np.ndarray
    counts: np.ndarray
    heavy_atoms: np.ndarray


def nci_smiles() -> list[str]:
    """The NCI structures shipped with RDKit (one SMILES per line, an id after a tab)."""
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    if not os.path.exists(path):
        raise MissingFile(f"{path}: the RDKit wheel's NCI structures are missing (reinstall rdkit)")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


@lru_cache(maxsize=1)
def molecule_pool() -> MoleculePool:
    """The NCI molecules that RDKit parses, with their NIST-17 labels and match counts (cached)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    patterns = compile_smarts(NIST17_SMARTS)
    counters = [
        compile_smarts([_COUNT_OVERRIDE[name]])[0] if name in _COUNT_OVERRIDE else patterns[k]
        for k, name in enumerate(NIST17_NAMES)
    ]
    kept, labels, counts, heavy = [], [], [], []
    for smi in nci_smiles():
        try:
            mol = parse_smiles(smi)
        except ValueError:
            continue
        kept.append(smi)
        labels.append([mol.HasSubstructMatch(p) for p in patterns])
        counts.append([len(mol.GetSubstructMatches(p, maxMatches=50)) for p in counters])
        heavy.append(mol.GetNumHeavyAtoms())
    return MoleculePool(
        tuple(kept),
        np.array(labels, dtype=np.uint8),
        np.array(counts, dtype=np.float32),
        np.array(heavy, dtype=np.float32),
    )


@lru_cache(maxsize=1)
def band_conditions() -> np.ndarray:
    """(M, bands) bool: per `molecule_pool` molecule and `IR17_BANDS` row, whether the molecule carries
    what makes the band (`_BAND_SMARTS`; True for a band without a condition). Version 8."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    names = [(NIST17_NAMES[b.label], b.mode) for b in IR17_BANDS]
    conditional = [j for j, key in enumerate(names) if key in _BAND_SMARTS]
    patterns = compile_smarts([_BAND_SMARTS[names[j]] for j in conditional])
    smiles = molecule_pool().smiles
    out = np.ones((len(smiles), len(IR17_BANDS)), dtype=bool)
    for m, smi in enumerate(smiles):
        mol = parse_smiles(smi)
        out[m, conditional] = [mol.HasSubstructMatch(p) for p in patterns]
    return out


def _band_share(k: IR17V3Knobs) -> np.ndarray:
    """Per `IR17_BANDS` row, its share of the spectra of a group that has it: 1 for a band whose presence
    the molecule or the phase decides (version 8), else the table's."""
    decided = _BAND_SMARTS.keys() | _ALWAYS if k.band_chemistry else set()
    return np.array([1.0 if (NIST17_NAMES[b.label], b.mode) in decided else b.p for b in IR17_BANDS])


def ir17_v3_masks(axis: np.ndarray, knobs: IR17V3Knobs | None = None) -> np.ndarray:
    """(17, L) bool: where each group's bands can lie with knobs `k` (versions 3-9; module docstring)."""
    k = knobs or IR17V3Knobs()
    masks = np.zeros((len(NIST17_NAMES), len(axis)), dtype=bool)
    jitter = 2.0 * k.band_jitter  # the clip of the per-band frequency error
    for b in IR17_BANDS:
        pad = MASK_REACH * b.fwhm * k.width_max
        lo, hi = b.lo * k.shift_min * (1.0 - jitter) - pad, b.hi * k.shift_max * (1.0 + jitter) + pad
        masks[b.label] |= (axis >= lo) & (axis <= hi)
    return masks


def render_ir17_v3(
    n: int, seed: int, knobs: IR17V3Knobs | None = None, *, with_components: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Labels (n, 17) uint8, X (n, 1024) float32 min-max scaled, components (n, 17, 1024) or None, and the
    pool index of each spectrum's molecule (n,). The random stream does not depend on `with_components`."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    k = knobs or IR17V3Knobs()
    pool = prepare(k)  # before any fork, so the worker processes inherit it
    if k.gas_max_atoms > 0 and not (pool.heavy_atoms <= k.gas_max_atoms).any():
        raise ConfigError(
            f"gas_max_atoms={k.gas_max_atoms}: no molecule of the pool is that small "
            f"(the smallest has {int(pool.heavy_atoms.min())} heavy atoms)"
        )
    parts = _map_blocks(partial(_seeded_block, n, seed, k, with_components), range(0, n, _BLOCK))
    comp = np.concatenate([p[2] for p in parts]) if with_components else None
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        comp,
        np.concatenate([p[3] for p in parts]),
    )


def _seeded_block(
    n: int, seed: int, k: IR17V3Knobs, with_components: bool, start: int
) -> tuple[np.ndarray, ...]:
    """Rows ``start .. start + _BLOCK`` of `render_ir17_v3`, from the block's own random stream (so the
    spectra do not depend on how many processes render them)."""
    rng = np.random.default_rng([child_seed(seed, 10), start])
    return _render_block(min(_BLOCK, n - start), rng, k, molecule_pool(), with_components)


def worker_count() -> int:
    """Processes to render with: the cores this process may use, at most 4, and no more than
    ``OMP_NUM_THREADS`` (a single-thread sweep worker beside others renders alone: it has one core)."""
    from peakmixer.train.device import usable_cores

    cores = usable_cores()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return min(4, cores, int(threads) if threads.isdigit() and int(threads) > 0 else cores)


def _map_blocks(render: Callable[[int], tuple], starts: Sequence[int]) -> list[tuple]:
    """`render` over the row blocks, in forked worker processes where there are several blocks and cores.

    Not threads: a block is many small numpy calls that each take the GIL, and two threads rendered slower
    than one (measured 2026-11-30: 20k spectra in 3.1 s on 2 threads, 2.4 s on one, 1.5 s on 2 processes).
    Forked, on Linux only (a spawned worker would re-import torch and rebuild the molecule pool; fork is
    unsafe on macOS), never from a daemon process (a DataLoader worker may have no children): serial there."""
    workers = min(len(starts), worker_count())
    if workers < 2 or not sys.platform.startswith("linux") or multiprocessing.current_process().daemon:
        return [render(s) for s in starts]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(render, starts))


def _render_block(  # noqa: C901, PLR0915 -- the order of its draws is the random stream: one reading
    n: int, rng: np.random.Generator, k: IR17V3Knobs, pool: MoleculePool, with_components: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """`render_ir17_v3` for one block of `n` rows from its own random stream."""
    axis = named_axis("ir")
    ax32 = axis.astype(np.float32)
    n_groups = len(NIST17_NAMES)
    mol = rng.integers(0, len(pool.smiles), n)

    # Per-spectrum draws.
    width = np.exp(rng.uniform(np.log(k.width_min), np.log(k.width_max), n))
    eta = rng.uniform(0.0, k.eta_max, n)
    scale = rng.uniform(k.shift_min, k.shift_max, n)
    gas = rng.random(n) < k.p_gas
    branch_gap = rng.uniform(12.0, 35.0, n)
    q_branch = rng.random(n) < 0.5
    # Version 5's draws, taken only when used, so that versions 3 and 4 stay as they were.
    free = np.zeros(n, dtype=bool)
    if k.gas_max_atoms > 0:  # only volatile (small) molecules have a gas-phase spectrum
        small = np.flatnonzero(pool.heavy_atoms <= k.gas_max_atoms)
        mol[gas] = small[rng.integers(0, small.size, int(gas.sum()))]
    if k.p_label_free > 0:
        free = rng.random(n) < k.p_label_free
        mol[free] = -1
        extra = rng.poisson(2.0, n)
    y = np.where(free[:, None], 0, pool.labels[mol]).astype(np.uint8)
    count = np.where(free[:, None], 0.0, pool.counts[mol]).astype(np.float32)
    group_level = np.exp(k.intensity_spread * rng.standard_normal((n, n_groups)))
    group_level *= np.maximum(count, 0.25) ** k.count_power  # a bare quaternary C: weak "alkane" bands
    u = rng.random((len(IR17_BANDS), 2, n))
    g = rng.standard_normal((len(IR17_BANDS), 2, n))
    # Drawn only when used, so that version 3's random stream (and its spectra) stay as they were.
    jitter = (
        1.0 + k.band_jitter * np.clip(rng.standard_normal((len(IR17_BANDS), n)), -2.0, 2.0)
        if k.band_jitter > 0
        else np.ones((len(IR17_BANDS), n))
    )

    X = np.zeros((n, len(axis)), dtype=np.float32)
    comp = np.zeros((n, n_groups, len(axis)), dtype=np.float32) if with_components else None
    present = np.zeros((len(IR17_BANDS), n), dtype=bool)
    share = _band_share(k)
    carries = band_conditions()[np.maximum(mol, 0)].T if k.band_chemistry else True  # label-free: y = 0
    for j, b in enumerate(IR17_BANDS):
        phase_ok = ~gas if b.mode in _CONDENSED_ONLY else gas if b.mode in _GAS_ONLY else True
        present[j] = (y[:, b.label] == 1) & (u[j, 1] < share[j]) & phase_ok
    present &= carries
    for label in range(n_groups):  # a present group shows at least one band
        own = [j for j, b in enumerate(IR17_BANDS) if b.label == label]
        none = (y[:, label] == 1) & ~present[own].any(axis=0)
        first = next(j for j in own if IR17_BANDS[j].mode not in _GAS_ONLY | _CONDENSED_ONLY)
        present[first, none] = True
    # Version 6: a share of the molecules' spectra are their normal modes instead of the band table's bands.
    physics = np.zeros(n, dtype=bool)
    if k.p_physics > 0:
        modes, row_of = nci_modes(), _mode_rows()
        physics = (rng.random(n) < k.p_physics) & (mol >= 0) & (row_of[mol] >= 0)
        present[:, physics] = False
    for j, b in enumerate(IR17_BANDS):
        rows = np.flatnonzero(present[j])
        if rows.size == 0:
            continue
        centre = (b.lo + (b.hi - b.lo) * u[j, 0, rows]) * scale[rows] * jitter[j, rows]
        fwhm = np.maximum(b.fwhm * width[rows] * np.clip(np.exp(0.15 * g[j, 0, rows]), 0.8, 1.25), 4.0)
        amp = b.rel * group_level[rows, b.label] * np.exp(k.band_spread * g[j, 1, rows])
        for line in contour(rows, centre, fwhm, amp, eta[rows], gas[rows], branch_gap[rows], q_branch[rows]):
            add_lines(X, ax32, *line)
            if comp is not None:
                add_lines(comp.reshape(-1, len(axis)), ax32, line[0] * n_groups + b.label, *line[1:])

    # Skeleton: label-free bands, more for bigger molecules, mostly in the fingerprint region. A molecule
    # without any of the groups (version 5) has a few strong fundamentals anywhere instead (X-H stretches of
    # hydrides, X-O and X-F stretches, bends), with the gas-phase contour where it is a gas.
    n_skel = np.minimum(rng.poisson(k.skeleton_per_atom * pool.heavy_atoms[mol] + 2.0), _MAX_SKELETON)
    if k.p_label_free > 0:
        n_skel[free] = 1 + extra[free]
    n_skel[physics] = 0  # a normal-mode spectrum has its own skeleton modes
    s = rng.random((4, _MAX_SKELETON, n))
    lo_amp = np.where(free, np.log(0.1), np.log(0.02))
    for slot in range(_MAX_SKELETON):
        rows = np.flatnonzero(n_skel > slot)
        if rows.size == 0:
            break
        fp = s[0, slot, rows] < 0.8
        centre = np.where(fp, 400.0 + 1100.0 * s[1, slot, rows], 400.0 + 1600.0 * s[1, slot, rows])
        centre = np.where(free[rows], 400.0 + 3600.0 * s[1, slot, rows], centre)
        fwhm = np.maximum((8.0 + 20.0 * s[2, slot, rows]) * width[rows], 4.0)
        amp = np.exp(lo_amp[rows] + (np.log(k.skeleton_max) - lo_amp[rows]) * s[3, slot, rows])
        gas_free = gas[rows] & free[rows]
        for line in contour(rows, centre, fwhm, amp, eta[rows], gas_free, branch_gap[rows], q_branch[rows]):
            add_lines(X, ax32, *line)
    if k.p_physics > 0:
        rows = np.flatnonzero(physics)
        masks = ir17_v3_masks(axis, k) if comp is not None else None
        add_modes(
            X,
            comp,
            masks,
            ax32,
            rng,
            k,
            modes,
            row_of[mol[rows]],
            rows,
            width,
            eta,
            gas,
            branch_gap,
            q_branch,
        )

    if k.p_saturated > 0:
        saturate(X, rng, k.p_saturated)
    add_atmosphere(X, ax32, rng, k)
    peak = X.max(axis=1)
    peak[peak <= 0] = 1.0
    # Baseline and noise relative to the spectrum's strongest band; float32 and in place (speed).
    r = rng.random((5, n), dtype=np.float32)
    t = (ax32 - ax32[0]) / (ax32[-1] - ax32[0]) * np.float32(2.0) - np.float32(1.0)
    base = np.float32(k.baseline_max) * np.exp(np.float32(np.log(0.01)) * r[0]) * peak
    X += (base * (2.0 * r[1] - 1.0))[:, None] * t
    X += (base * r[2])[:, None]
    buf = ax32 - (np.float32(400.0) + np.float32(3600.0) * r[3])[:, None]  # a broad hump, 800 cm-1 sd
    buf *= np.float32(1.0 / 800.0)
    buf *= buf
    buf *= np.float32(-0.5)
    np.exp(buf, out=buf)
    buf *= (base * r[4])[:, None]
    X += buf
    noise = rng.standard_normal(X.shape, dtype=np.float32)
    smooth = np.flatnonzero(rng.random(n) < 0.5)  # coloured noise: a 3-point running sum, unit variance
    part = noise[smooth]
    part[:, 1:-1] += noise[smooth, :-2]
    part[:, 1:-1] += noise[smooth, 2:]
    part[:, 1:-1] *= np.float32(1.0 / np.sqrt(3.0))
    noise[smooth] = part
    sd = np.exp(rng.uniform(np.log(k.noise_min), np.log(k.noise_max), n)).astype(np.float32)
    noise *= (sd * peak)[:, None]
    X += noise
    # A detector cut-off: below it the importer's edge fill (the first measured value).
    edge = np.where(rng.random(n) < k.p_cutoff, np.searchsorted(axis, rng.uniform(400.0, 650.0, n)), 0)
    below = np.arange(len(axis)) < edge[:, None]
    X[below] = np.broadcast_to(X[np.arange(n), edge][:, None], X.shape)[below]
    if comp is not None:
        comp[np.broadcast_to(below[:, None, :], comp.shape)] = 0.0
    minmax_rows(X, comp)
    return y, X, comp, mol


def prepare(knobs: IR17V3Knobs) -> MoleculePool:
    """Load (once per process, cached) what rendering with `knobs` needs: the molecule pool and, for
    normal-mode spectra, the mode table."""
    pool = molecule_pool()
    if knobs.p_physics > 0:
        _mode_rows()
    if knobs.band_chemistry:
        band_conditions()
    return pool


@lru_cache(maxsize=1)
def _mode_rows() -> np.ndarray:
    """Per `molecule_pool` molecule, its row in the normal-mode table, or -1 where the table has none."""
    table, pool = nci_modes(), molecule_pool()
    row = {smi: m for m, smi in enumerate(table.smiles) if table.treated[m]}
    return np.array([row.get(smi, -1) for smi in pool.smiles], dtype=np.int64)
