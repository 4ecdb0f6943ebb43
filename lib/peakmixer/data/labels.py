"""Substructure labels from SMILES with RDKit SMARTS matching.

Two label sets are used by the paper:

- ``nist17``: the 17 functional groups of the NIST-IR task, in the paper's label order (FCG-Former
  ``pos_dic``), with the SMARTS of Fine et al., Chem. Sci. 2020 (chopralab/candiy_spectrum). A group is
  present when any match of its SMARTS exists. Note that "alkane" excludes CH3 carbons (methyl is its
  own group) and that "ether" also fires on esters.
- ``qm9s957``: 957 substructures of the QM9S task, read from a SMARTS list file (one pattern per line,
  see `load_smarts_file`); `data.download` builds that file from its documented source.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rdkit import Chem, rdBase

NIST17_NAMES: tuple[str, ...] = (
    "alkane",
    "methyl",
    "alkene",
    "alkyne",
    "alcohols",
    "amines",
    "nitriles",
    "aromatics",
    "alkyl halides",
    "esters",
    "ketones",
    "aldehydes",
    "carboxylic acids",
    "ether",
    "acyl halides",
    "amides",
    "nitro",
)

NIST17_SMARTS: tuple[str, ...] = (
    "[CX4;H0,H1,H2,H4]",
    "[CH3]",
    "[CX3]=[CX3]",
    "[CX2]#C",
    "[#6][OX2H]",
    "[NX3;H2,H1;!$(NC=O)]",
    "[NX1]#[CX2]",
    "[$([cX3](:*):*),$([cX2+](:*):*)]",
    "[#6][F,Cl,Br,I]",
    "[#6][CX3](=O)[OX2H0][#6]",
    "[#6][CX3](=O)[#6]",
    "[CX3H1](=O)[#6]",
    "[CX3](=O)[OX2H1]",
    "[OD2]([#6])[#6]",
    "[CX3](=[OX1])[F,Cl,Br,I]",
    "[NX3][CX3](=[OX1])[#6]",
    "[$([NX3](=O)=O),$([NX3+](=O)[O-])][!#8]",
)


class LabelError(ValueError):
    """A SMILES or SMARTS that RDKit cannot parse, named in the message."""


def parse_smiles(smiles: str) -> Chem.Mol:
    """The RDKit molecule of `smiles`; `LabelError` naming the string when RDKit rejects it."""
    with rdBase.BlockLogs():  # RDKit prints parse errors to stderr; we raise instead
        mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles.strip() else None
    if mol is None:
        raise LabelError(f"unparseable SMILES {smiles!r}")
    return mol


def compile_smarts(smarts: Sequence[str]) -> list[Chem.Mol]:
    """RDKit query molecules for `smarts`; `LabelError` naming the first pattern RDKit rejects."""
    patterns = []
    with rdBase.BlockLogs():
        for i, s in enumerate(smarts):
            query = Chem.MolFromSmarts(s)
            if query is None:
                raise LabelError(f"unparseable SMARTS #{i}: {s!r}")
            patterns.append(query)
    return patterns


def match_matrix(mols: Sequence[Chem.Mol], patterns: Sequence[Chem.Mol]) -> np.ndarray:
    """(N, K) uint8: 1 where molecule n contains at least one match of pattern k."""
    out = np.zeros((len(mols), len(patterns)), dtype=np.uint8)
    for n, mol in enumerate(mols):
        for k, query in enumerate(patterns):
            out[n, k] = mol.HasSubstructMatch(query)
    return out


def functional_groups(smiles_list: Sequence[str], smarts: Sequence[str] = NIST17_SMARTS) -> np.ndarray:
    """Multi-hot substructure labels, (N,) SMILES -> (N, K) uint8 in the order of `smarts`.

    Raises `LabelError` naming the first unparseable SMILES (and its index) or SMARTS.

    >>> functional_groups(["CC#N"])[0].nonzero()[0].tolist()  # acetonitrile: methyl, nitriles
    [1, 6]
    """
    patterns = compile_smarts(smarts)
    mols = []
    for i, s in enumerate(smiles_list):
        try:
            mols.append(parse_smiles(s))
        except LabelError as e:
            raise LabelError(f"{e} (molecule #{i})") from None
    return match_matrix(mols, patterns)


def load_smarts_file(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a SMARTS list file; returns (names, smarts), both of length K.

    Format: one pattern per line, optionally followed by a tab and a name (the name defaults to the
    pattern itself); blank lines and lines starting with ``#`` are ignored. Every pattern is checked
    with RDKit, so a bad line fails here with its line number rather than later.
    """
    path = Path(path)
    names: list[str] = []
    smarts: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, _, name = line.partition("\t")
        pattern = pattern.strip()
        try:
            compile_smarts([pattern])
        except LabelError as e:
            raise LabelError(f"{path}:{lineno}: {e}") from None
        smarts.append(pattern)
        names.append(name.strip() or pattern)
    if not smarts:
        raise LabelError(f"{path}: no SMARTS patterns found")
    return names, smarts


def heavy_atom_shares(smiles_list: Sequence[str]) -> dict[str, float]:
    """Share of each heavy element among all heavy atoms of the molecules (paper dataset figure, a and c)."""
    counts: dict[str, int] = {}
    for smiles in smiles_list:
        for atom in parse_smiles(smiles).GetAtoms():
            counts[atom.GetSymbol()] = counts.get(atom.GetSymbol(), 0) + 1
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


# --- Ho et al. (2019): the 30 bacterial isolates and their treatment groups -------------------------------
# Class names, order and treatment groups: csho33/bacteria-ID `config.py` (MIT; STRAINS, ATCC_GROUPINGS).
# Group names: RamanSPy `datasets.bacteria("labels")` (BSD-3), which lists each class's antibiotic, and
# Ho et al., Nat. Commun. 10, 4927 (2019), Fig. 2. Taxonomy (Gram type, genus, species) is textbook.
BAC30_GROUPS = (
    "Meropenem", "Ciprofloxacin", "TZP", "Vancomycin",
    "Ceftriaxone", "Penicillin", "Daptomycin", "Caspofungin",
)  # fmt: skip


class Isolate(NamedTuple):
    """One row of `BAC30_CLASSES`: a Ho et al. isolate, its treatment group and taxonomy."""

    name: str
    group: int  # index into BAC30_GROUPS
    gram: str
    genus: str
    species: str


BAC30_CLASSES: tuple[Isolate, ...] = (
    Isolate("C. albicans",       7, "yeast", "Candida",        "C. albicans"),
    Isolate("C. glabrata",       7, "yeast", "Candida",        "C. glabrata"),
    Isolate("K. aerogenes",      0, "gram-", "Klebsiella",     "K. aerogenes"),
    Isolate("E. coli 1",         0, "gram-", "Escherichia",    "E. coli"),
    Isolate("E. coli 2",         0, "gram-", "Escherichia",    "E. coli"),
    Isolate("E. faecium",        6, "gram+", "Enterococcus",   "E. faecium"),
    Isolate("E. faecalis 1",     5, "gram+", "Enterococcus",   "E. faecalis"),
    Isolate("E. faecalis 2",     5, "gram+", "Enterococcus",   "E. faecalis"),
    Isolate("E. cloacae",        0, "gram-", "Enterobacter",   "E. cloacae"),
    Isolate("K. pneumoniae 1",   0, "gram-", "Klebsiella",     "K. pneumoniae"),
    Isolate("K. pneumoniae 2",   0, "gram-", "Klebsiella",     "K. pneumoniae"),
    Isolate("P. mirabilis",      0, "gram-", "Proteus",        "P. mirabilis"),
    Isolate("P. aeruginosa 1",   2, "gram-", "Pseudomonas",    "P. aeruginosa"),
    Isolate("P. aeruginosa 2",   2, "gram-", "Pseudomonas",    "P. aeruginosa"),
    Isolate("MSSA 1",            3, "gram+", "Staphylococcus", "S. aureus"),
    Isolate("MSSA 3",            3, "gram+", "Staphylococcus", "S. aureus"),
    Isolate("MRSA 1 (isogenic)", 3, "gram+", "Staphylococcus", "S. aureus"),
    Isolate("MRSA 2",            3, "gram+", "Staphylococcus", "S. aureus"),
    Isolate("MSSA 2",            3, "gram+", "Staphylococcus", "S. aureus"),
    Isolate("S. enterica",       1, "gram-", "Salmonella",     "S. enterica"),
    Isolate("S. epidermidis",    3, "gram+", "Staphylococcus", "S. epidermidis"),
    Isolate("S. lugdunensis",    3, "gram+", "Staphylococcus", "S. lugdunensis"),
    Isolate("S. marcescens",     0, "gram-", "Serratia",       "S. marcescens"),
    Isolate("S. pneumoniae 2",   4, "gram+", "Streptococcus",  "S. pneumoniae"),
    Isolate("S. pneumoniae 1",   4, "gram+", "Streptococcus",  "S. pneumoniae"),
    Isolate("S. sanguinis",      5, "gram+", "Streptococcus",  "S. sanguinis"),
    Isolate("Group A Strep.",    5, "gram+", "Streptococcus",  "S. pyogenes"),
    Isolate("Group B Strep.",    5, "gram+", "Streptococcus",  "S. agalactiae"),
    Isolate("Group C Strep.",    5, "gram+", "Streptococcus",  "S. dysgalactiae"),
    Isolate("Group G Strep.",    5, "gram+", "Streptococcus",  "S. dysgalactiae"),
)  # fmt: skip
BAC30_LABELS = tuple(c.name for c in BAC30_CLASSES)
BAC30_CLASS_TO_GROUP = np.array([c.group for c in BAC30_CLASSES], dtype=np.int64)
