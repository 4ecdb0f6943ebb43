"""SMARTS labels: the paper's 17 NIST-IR groups on known molecules, SMARTS files, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from peakmixer.data.labels import (
    NIST17_NAMES,
    NIST17_SMARTS,
    LabelError,
    functional_groups,
    load_smarts_file,
)


def groups(smiles: str) -> set[str]:
    row = functional_groups([smiles])[0]
    return {NIST17_NAMES[k] for k in np.flatnonzero(row)}


def test_label_order_is_the_papers():
    assert len(NIST17_NAMES) == len(NIST17_SMARTS) == 17
    assert NIST17_NAMES[:3] == ("alkane", "methyl", "alkene")
    assert NIST17_NAMES[7] == "aromatics" and NIST17_NAMES[13] == "ether" and NIST17_NAMES[16] == "nitro"
    assert NIST17_SMARTS[1] == "[CH3]" and NIST17_SMARTS[9] == "[#6][CX3](=O)[OX2H0][#6]"


@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("CCOC(C)=O", {"alkane", "methyl", "esters", "ether"}),  # ethyl acetate: "ether" fires on esters
        ("CC#N", {"methyl", "nitriles"}),  # acetonitrile: a nitrile carbon is no alkyne
        ("Cc1ccccc1", {"methyl", "aromatics"}),  # toluene
        ("C", {"alkane"}),  # methane: CH4 is an alkane carbon, not a methyl group
        ("CC(C)O", {"alkane", "methyl", "alcohols"}),  # isopropyl alcohol
        ("CC(=O)O", {"methyl", "alcohols", "carboxylic acids"}),  # acetic acid
        ("CC(C)=O", {"methyl", "ketones"}),  # acetone
        ("CC=O", {"methyl", "aldehydes"}),  # acetaldehyde
        ("CC(=O)Cl", {"methyl", "alkyl halides", "acyl halides"}),  # acetyl chloride
        ("CC(N)=O", {"methyl", "amides"}),  # acetamide: the amine SMARTS excludes N-C=O
        ("CN", {"methyl", "amines"}),  # methylamine
        ("C[N+](=O)[O-]", {"methyl", "nitro"}),  # nitromethane
        ("C=CC", {"methyl", "alkene"}),  # propene
        ("CC#C", {"methyl", "alkyne"}),  # propyne
        ("ClC(Cl)Cl", {"alkane", "alkyl halides"}),  # chloroform
        ("O", set()),  # water
    ],
)
def test_known_molecules(smiles, expected):
    assert groups(smiles) == expected


def test_output_is_uint8_matrix_in_input_order():
    y = functional_groups(["CC#N", "Cc1ccccc1", "O"])
    assert y.dtype == np.uint8 and y.shape == (3, 17)
    assert y[0, 6] == 1 and y[1, 7] == 1 and y[2].sum() == 0


def test_unparseable_smiles_is_named():
    with pytest.raises(LabelError, match=r"unparseable SMILES 'C1CC' \(molecule #1\)"):
        functional_groups(["CC", "C1CC"])


def test_unparseable_smarts_is_named():
    with pytest.raises(LabelError, match=r"SMARTS #1: '\[C'"):
        functional_groups(["CC"], smarts=["[CH3]", "[C"])


def test_smarts_file_roundtrip(tmp_path):
    path = tmp_path / "subs.txt"
    path.write_text("# comment\n[CH3]\tmethyl\n\nc1ccccc1\n[OX2H]\n", encoding="utf-8")
    names, smarts = load_smarts_file(path)
    assert names == ["methyl", "c1ccccc1", "[OX2H]"]
    y = functional_groups(["Cc1ccccc1", "CCO"], smarts=smarts)
    assert y.tolist() == [[1, 1, 0], [1, 0, 1]]


def test_smarts_file_bad_line_names_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("[CH3]\n[C\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"bad.txt:2"):
        load_smarts_file(path)
