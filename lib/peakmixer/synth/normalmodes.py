"""Harmonic IR line lists of real molecules from a force field: the cheap physics under synth-ir17 v6 to v9.

Each molecule is embedded in 3D (RDKit ETKDG, seed 0), minimised with MMFF94 (Halgren, J. Comput. Chem.
1996, 17, 490), and its Cartesian Hessian taken by central differences of the analytic gradient. The
mass-weighted Hessian's eigenvalues give the harmonic wavenumbers; MMFF94 reproduces measured fundamentals of
small organic molecules to about 60 cm-1 rms (Halgren 1996, part III), close to a 4% error, with C=O and
C-H stretches a few % high.

Intensities are |d mu / dQ|^2 of fixed atomic charges (MMFF's bond-charge-increment charges, mu = sum q_i
r_i) plus a charge flux along each uncharged C-H bond. Fixed charges alone leave alkyl C-H stretches dark
(MMFF gives an H on an sp3 carbon a charge of 0; aromatic and vinyl H carry 0.15), while in measured spectra
they are medium to strong; the flux is one bond-stretch dipole derivative, 0.4 D/A, for each C-H bond whose H
has no charge: the low end of the C-H values of atomic polar tensor analyses of the alkanes (Gussoni,
Castiglioni & Zerbi, in Spectroscopy of Advanced Materials, 1991), so that acetone's C-H stretches stay below
its C=O stretch, as in its measured spectrum (a textbook molecule, not one of any real set this companion
scores). Polar stretches (C=O, C-O, O-H, N-H) dominate, as they do in real spectra.

A mode belongs to each of the 17 NIST groups on whose atoms (those of its SMARTS matches and their
hydrogens) at least half of its kinetic energy sits, a bit per group (an acid's O-H stretch is also the
"alcohols" SMARTS's); other modes are the skeleton. The table of the NCI structures (`synthir.molecule_pool`)
is shipped as ``resources/nci_mmff_modes.npz``, because computing it takes about 20 minutes on one core;
rebuild it with ``python -m peakmixer data modes``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from peakmixer.config import MissingFile
from peakmixer.data.labels import NIST17_SMARTS, compile_smarts
from peakmixer.paths import RESOURCES

WAVENUMBER = 108.5913  # cm-1 per sqrt(kcal mol-1 A-2 amu-1): sqrt(4.184e26 s-2) / (2 pi c)
MIN_WAVENUMBER = 380.0  # below the ir axis (400 cm-1) less a line's reach: not kept
MIN_INTENSITY = 1e-3  # relative to the molecule's strongest mode: not kept below it
SHARE = 0.5  # the least share of a mode's kinetic energy on a group's atoms for the mode to be the group's
CH_FLUX = 0.4 * 0.20819  # e: d mu / d r of an uncharged C-H bond, 0.4 D/A (1 D = 0.20819 e A)
_STEP = 1e-4  # A, the central-difference step of the Hessian
_RESOURCE = "nci_mmff_modes.npz"


class ModeTable(NamedTuple):
    """Line lists of many molecules: molecule m (``smiles[m]``) has the modes ``slice(offsets[m],
    offsets[m + 1])``; one the force field cannot treat has none. wavenumber (cm-1), intensity (the
    molecule's strongest = 1), groups (bit g set: the mode is group g's; 0: a skeleton mode)."""

    smiles: np.ndarray
    offsets: np.ndarray
    wavenumber: np.ndarray
    intensity: np.ndarray
    groups: np.ndarray

    @property
    def treated(self) -> np.ndarray:
        """Per molecule, whether it has modes (the force field could treat it)."""
        return self.offsets[1:] > self.offsets[:-1]

    def of(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = slice(int(self.offsets[m]), int(self.offsets[m + 1]))
        return self.wavenumber[part], self.intensity[part], self.groups[part]


def molecule_modes(smiles: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Wavenumbers, relative intensities and group bits of the IR modes of one molecule (module docstring), or
    None where RDKit cannot parse or embed it or MMFF94 has no parameters for it."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem, rdForceFieldHelpers

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    mol = Chem.AddHs(mol)
    try:
        if AllChem.EmbedMolecule(mol, randomSeed=0) != 0:
            return None
    except RuntimeError:  # RDKit's distance-geometry invariants fail on a few structures (bad bounds)
        return None
    labelled = Chem.Mol(mol)  # MMFF's setup re-perceives aromaticity in place: match the SMARTS as labels do
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    if props is None:
        return None
    ff = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props)
    ff.Minimize(maxIts=2000)
    x = np.array(ff.Positions())
    hessian = np.empty((x.size, x.size))
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = _STEP
        hessian[i] = (_gradient(ff, x + step) - _gradient(ff, x - step)) / (2 * _STEP)
    atoms = mol.GetNumAtoms()
    inv_sqrt_mass = np.repeat([1.0 / np.sqrt(a.GetMass()) for a in mol.GetAtoms()], 3)
    mass_weighted = (hessian + hessian.T) / 2 * inv_sqrt_mass[:, None] * inv_sqrt_mass[None, :]
    eigenvalues, vectors = np.linalg.eigh(mass_weighted)
    wavenumber = WAVENUMBER * np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues))
    charges = np.array([props.GetMMFFPartialCharge(i) for i in range(atoms)])
    cartesian = (vectors * inv_sqrt_mass[:, None]).reshape(atoms, 3, -1)
    dipole = np.einsum("i,ikm->km", charges, cartesian)  # (3, modes)
    positions = x.reshape(atoms, 3)
    for bond in mol.GetBonds():
        c, h = bond.GetBeginAtom(), bond.GetEndAtom()
        if {c.GetAtomicNum(), h.GetAtomicNum()} != {1, 6}:
            continue
        if c.GetAtomicNum() == 1:
            c, h = h, c
        if charges[h.GetIdx()] != 0.0:  # a charged H's stretch is bright already
            continue
        axis = positions[h.GetIdx()] - positions[c.GetIdx()]
        axis /= np.linalg.norm(axis)
        stretch = axis @ (cartesian[h.GetIdx()] - cartesian[c.GetIdx()])  # (modes,)
        dipole += CH_FLUX * axis[:, None] * stretch[None, :]
    intensity = (dipole**2).sum(axis=0)
    kinetic = (vectors.reshape(atoms, 3, -1) ** 2).sum(axis=1)  # (atoms, modes), each column sums to 1
    group = _groups(labelled, kinetic)
    keep = wavenumber >= MIN_WAVENUMBER
    if not keep.any() or intensity[keep].max() <= 0:
        return None
    intensity = intensity / intensity[keep].max()
    keep &= intensity >= MIN_INTENSITY
    return wavenumber[keep], intensity[keep], group[keep]


def _gradient(ff, pos: np.ndarray) -> np.ndarray:
    """MMFF's gradient at `pos`. RDKit's ``CalcGrad(pos)`` reuses terms of the last ``CalcEnergy`` call
    (measured with rdkit 2026.09: without the energy call, the gradient at a displaced geometry is wrong,
    and not zero at the minimum), so the energy is taken first at the same positions."""
    p = pos.tolist()
    ff.CalcEnergy(p)
    return np.array(ff.CalcGrad(p))


def _groups(mol, kinetic: np.ndarray) -> np.ndarray:
    """Per mode, a bit for each group whose atoms hold at least `SHARE` of its kinetic energy."""
    shares = np.zeros((len(NIST17_SMARTS), kinetic.shape[1]))
    for g, pattern in enumerate(_patterns()):
        atoms: set[int] = set()
        for match in mol.GetSubstructMatches(pattern):
            for a in match:
                atoms.add(a)
                atoms.update(
                    h.GetIdx() for h in mol.GetAtomWithIdx(a).GetNeighbors() if h.GetAtomicNum() == 1
                )
        if atoms:
            shares[g] = kinetic[sorted(atoms)].sum(axis=0)
    bits = (shares >= SHARE).astype(np.uint32) << np.arange(len(NIST17_SMARTS), dtype=np.uint32)[:, None]
    return bits.sum(axis=0, dtype=np.uint32)


@lru_cache(maxsize=1)
def _patterns() -> list:
    return compile_smarts(NIST17_SMARTS)


def build_table(smiles: Sequence[str], workers: int = 1) -> ModeTable:
    """The `ModeTable` of `smiles` in `workers` processes (each molecule is independent and deterministic)."""
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            lists = list(pool.map(molecule_modes, smiles, chunksize=16))
    else:
        lists = [molecule_modes(s) for s in smiles]
    sizes = [0 if m is None else len(m[0]) for m in lists]
    found = [m for m in lists if m is not None]
    return ModeTable(
        np.array(smiles, dtype=str),
        np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        np.concatenate([m[0] for m in found]).astype(np.float32),
        np.concatenate([m[1] for m in found]).astype(np.float32),
        np.concatenate([m[2] for m in found]).astype(np.uint32),
    )


def save_table(table: ModeTable, path: str | os.PathLike) -> None:
    np.savez_compressed(
        path,
        smiles=table.smiles,
        offsets=table.offsets,
        wavenumber=table.wavenumber,
        intensity=table.intensity.astype(np.float16),  # 3 significant digits: far finer than its error
        groups=table.groups,
    )


@lru_cache(maxsize=1)
def nci_modes() -> ModeTable:
    """The shipped table of the NCI structures (`synthir.molecule_pool`)."""
    path = resource_path()
    if not path.exists():
        raise MissingFile(f"{path}: the normal-mode table is missing; `python -m peakmixer data modes`")
    with np.load(path) as f:
        return ModeTable(
            f["smiles"], f["offsets"], f["wavenumber"], f["intensity"].astype(np.float32), f["groups"]
        )


@lru_cache(maxsize=1)
def table_digest() -> str:
    """The first 16 hex digits of the shipped table's sha256 (in a synthetic set's recipe)."""
    return hashlib.sha256(resource_path().read_bytes()).hexdigest()[:16]


def resource_path() -> Path:
    """Where the shipped table lives in this checkout."""
    return RESOURCES / _RESOURCE
