"""The IR band table of the paper's 17 functional groups (`IR17_BANDS`), shared by the synthetic generators
(`synth.ir17`, `synth.ir17_realistic`), the figures' textbook bands (`textbook_bands`) and sim-to-real's band
rule."""

from __future__ import annotations

from typing import NamedTuple

from peakmixer.data.labels import NIST17_NAMES

IR17_LABELS = NIST17_NAMES  # the paper's 17 NIST-IR groups, in its label order
GROUP_INDEX = {name: i for i, name in enumerate(IR17_LABELS)}  # group name -> label index


class Band(NamedTuple):
    """One row of `IR17_BANDS`: a group's band, centre anywhere in [lo, hi] cm-1."""

    label: int  # index into IR17_LABELS
    mode: str  # vibrational assignment
    lo: float  # centre range, cm-1
    hi: float
    fwhm: float  # nominal full width at half maximum, cm-1
    rel: float  # relative intensity: strong 1.0, medium ~0.5, weak ~0.2
    p: float = 1.0  # probability the band is present when the group is (at least one band always is)


def _ir(label: str, mode: str, lo: float, hi: float, fwhm: float, rel: float, p: float = 1.0) -> Band:
    return Band(GROUP_INDEX[label], mode, lo, hi, fwhm, rel, p)


# Centre ranges and intensities from IR correlation tables: R. M. Silverstein, F. X. Webster, D. J. Kiemle,
# "Spectrometric Identification of Organic Compounds", 7th ed., Wiley 2005, ch. 2 (Appendix B chart), and
# G. Socrates, "Infrared and Raman Characteristic Group Frequencies", 3rd ed., Wiley 2001. Ranges are widened
# to cover gas-phase positions (NIST-IR is mostly gas phase: free O-H near 3650, monomer acid C=O near 1780).
# FWHM are typical values, not tabulated ones. The label semantics follow the Fine et al. 2020 SMARTS: alkane
# means non-methyl sp3 carbon (CH2, CH, C), methyl means CH3.
IR17_BANDS: tuple[Band, ...] = (
    #    group               mode                              lo      hi     FWHM  rel    p
    _ir("alkane",           "CH2 asym. stretch",             2915,   2936,   25, 1.00),
    _ir("alkane",           "CH2 sym. stretch",              2845,   2865,   20, 0.60),
    _ir("alkane",           "CH2 scissoring",                1445,   1475,   20, 0.35),
    _ir("alkane",           "CH2 rocking (chain >= 4)",       715,    730,   12, 0.15, 0.35),
    _ir("methyl",           "CH3 asym. stretch",             2950,   2975,   22, 1.00),
    _ir("methyl",           "CH3 sym. stretch",              2865,   2885,   20, 0.50),
    _ir("methyl",           "CH3 asym. deformation",         1440,   1465,   20, 0.40),
    _ir("methyl",           "CH3 umbrella",                  1370,   1385,   15, 0.35),
    _ir("alkene",           "=C-H stretch",                  3010,   3100,   25, 0.40),
    _ir("alkene",           "C=C stretch",                   1620,   1680,   20, 0.35),
    _ir("alkene",           "=C-H out-of-plane",              880,    995,   20, 0.90),
    _ir("alkyne",           "C#C-H stretch",                 3260,   3330,   15, 0.90),
    _ir("alkyne",           "C#C stretch",                   2100,   2260,   15, 0.20),
    _ir("alkyne",           "C#C-H bend",                     610,    700,   20, 0.70),
    _ir("alcohols",         "O-H stretch, free",             3580,   3670,   25, 0.60, 0.5),
    _ir("alcohols",         "O-H stretch, H-bonded",         3200,   3550,  250, 0.70, 0.6),
    _ir("alcohols",         "C-O stretch",                   1000,   1260,   30, 0.80),
    _ir("alcohols",         "O-H in-plane bend",             1330,   1420,   40, 0.30, 0.6),
    _ir("amines",           "N-H stretch",                   3300,   3500,   50, 0.30),
    _ir("amines",           "N-H scissoring (primary)",      1580,   1650,   30, 0.40, 0.6),
    _ir("amines",           "C-N stretch",                   1020,   1250,   30, 0.40),
    _ir("amines",           "N-H wag",                        665,    910,   60, 0.50, 0.6),
    _ir("nitriles",         "C#N stretch",                   2210,   2260,   12, 0.70),
    _ir("aromatics",        "aryl C-H stretch",              3000,   3100,   25, 0.30),
    _ir("aromatics",        "ring C=C stretch",              1585,   1615,   15, 0.45),
    _ir("aromatics",        "ring C=C stretch",              1470,   1520,   15, 0.50),
    _ir("aromatics",        "overtone/combination",          1660,   2000,   60, 0.08, 0.6),
    _ir("aromatics",        "C-H out-of-plane",               690,    900,   20, 1.00),
    _ir("alkyl halides",    "C-F stretch",                   1000,   1400,   40, 1.00, 0.35),
    _ir("alkyl halides",    "C-Cl stretch",                   600,    800,   25, 0.80, 0.45),
    _ir("alkyl halides",    "C-Br stretch",                   500,    690,   25, 0.70, 0.25),
    _ir("alkyl halides",    "C-I stretch",                    485,    600,   25, 0.60, 0.05),
    _ir("esters",           "C=O stretch",                   1730,   1770,   20, 1.00),
    _ir("esters",           "C-C(=O)-O asym. stretch",       1160,   1300,   35, 0.90),
    _ir("esters",           "O-C-C stretch",                 1000,   1100,   30, 0.50),
    _ir("ketones",          "C=O stretch",                   1680,   1745,   20, 1.00),
    _ir("ketones",          "C-C(=O)-C stretch",             1100,   1230,   30, 0.40),
    _ir("aldehydes",        "C=O stretch",                   1685,   1740,   20, 1.00),
    _ir("aldehydes",        "C-H stretch (Fermi doublet)",   2800,   2860,   20, 0.35),
    _ir("aldehydes",        "C-H stretch (Fermi doublet)",   2700,   2760,   20, 0.30),
    _ir("carboxylic acids", "O-H stretch, dimer (broad)",    2900,   3100,  450, 0.45),
    _ir("carboxylic acids", "O-H stretch, monomer",          3550,   3585,   25, 0.40, 0.5),
    _ir("carboxylic acids", "C=O stretch",                   1690,   1800,   25, 1.00),
    _ir("carboxylic acids", "C-O stretch",                   1210,   1320,   30, 0.70),
    _ir("carboxylic acids", "O-H in-plane bend",             1395,   1440,   30, 0.30, 0.6),
    _ir("carboxylic acids", "O-H out-of-plane",               900,    950,   50, 0.35, 0.6),
    _ir("ether",            "C-O-C asym. stretch",           1070,   1150,   30, 1.00),
    _ir("ether",            "aryl-O asym. stretch",          1200,   1275,   30, 0.80, 0.35),
    _ir("ether",            "C-O-C sym. stretch",            1020,   1075,   25, 0.40, 0.5),
    _ir("ether",            "O-CH3 C-H stretch",             2815,   2835,   15, 0.25, 0.3),
    _ir("acyl halides",     "C=O stretch",                   1775,   1815,   15, 1.00),
    _ir("acyl halides",     "C-Cl stretch",                   550,    730,   25, 0.50),
    _ir("acyl halides",     "C-C(=O) stretch",                850,    960,   25, 0.40, 0.5),
    _ir("amides",           "amide I C=O stretch",           1630,   1695,   25, 1.00),
    _ir("amides",           "N-H stretch",                   3180,   3500,   60, 0.50, 0.75),
    _ir("amides",           "amide II N-H bend",             1510,   1570,   25, 0.50, 0.7),
    _ir("nitro",            "NO2 asym. stretch",             1500,   1570,   20, 1.00),
    _ir("nitro",            "NO2 sym. stretch",              1335,   1385,   20, 0.80),
    _ir("nitro",            "C-N stretch",                    840,    870,   15, 0.30),
)  # fmt: skip


def textbook_bands(label: str) -> list[tuple[float, float, str]]:
    """(lo, hi, assignment) of a functional group's IR bands in `IR17_BANDS` (centre ranges, cm-1), for
    annotating figures; empty for a name that is not one of the 17 groups (e.g. a bacterial isolate)."""
    if label not in GROUP_INDEX:
        return []
    return [(b.lo, b.hi, b.mode) for b in IR17_BANDS if b.label == GROUP_INDEX[label]]
