"""The textbook rule: a chemist's reading of the real spectra without any model. Each functional group
scores by the strongest absorbance in the bands a chemist reads it by (`MARKERS`); its ROC-AUC per label on
a real set is what any synthetic-trained model should beat on that label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from peakmixer.config import ConfigError
from peakmixer.data.dataset import SpectraDataset
from peakmixer.studies.sim2real_scoring import ranking

# The bands a chemist reads each group by, named in the band table (`ir17_bands.IR17_BANDS`: Silverstein,
# Webster & Kiemle 2005 ch. 2; Socrates 2001). Each inner tuple is one band the group needs (any of its modes'
# centre ranges); a group with two needs both. Alkyl halides have none: their C-X stretch moves over
# 485-1400 cm-1 with the halogen, where most skeletons absorb.
MARKERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "alkane": (("CH2 asym. stretch", "CH2 sym. stretch"),),
    "methyl": (("CH3 asym. stretch", "CH3 sym. stretch"),),
    "alkene": (("=C-H stretch",), ("C=C stretch",)),
    "alkyne": (("C#C stretch",),),
    "alcohols": (("O-H stretch, free", "O-H stretch, H-bonded"),),
    "amines": (("N-H stretch",),),
    "nitriles": (("C#N stretch",),),
    "aromatics": (("aryl C-H stretch",), ("ring C=C stretch",)),
    "esters": (("C=O stretch",),),
    "ketones": (("C=O stretch",),),
    "aldehydes": (("C=O stretch",), ("C-H stretch (Fermi doublet)",)),
    "carboxylic acids": (("C=O stretch",), ("O-H stretch, dimer (broad)", "O-H stretch, monomer")),
    "ether": (("C-O-C asym. stretch", "aryl-O asym. stretch"),),
    "acyl halides": (("C=O stretch",),),
    "amides": (("amide I C=O stretch",), ("N-H stretch",)),
    "nitro": (("NO2 asym. stretch",), ("NO2 sym. stretch",)),
}
BANDS_NAME = "sim2real_bands.csv"  # the textbook rule's per-label ROC-AUC, beside the store's table
CHANCE_BAND = 0.55  # the README names the labels the textbook rule ranks no better than this


def marker_windows(label: str) -> list[list[tuple[float, float]]]:
    """Per band `label` needs (`MARKERS`), the centre ranges (cm-1) of its modes in the band table."""
    from peakmixer.synth.ir17_bands import IR17_BANDS, IR17_LABELS

    k = IR17_LABELS.index(label)
    own = [b for b in IR17_BANDS if b.label == k]
    windows = []
    for modes in MARKERS[label]:
        unknown = set(modes) - {b.mode for b in own}
        if unknown:
            raise ConfigError(f"MARKERS[{label!r}]: {sorted(unknown)} are not {label} bands of IR17_BANDS")
        windows.append(sorted({(b.lo, b.hi) for b in own if b.mode in modes}))
    return windows


def textbook_scores(ds: SpectraDataset) -> dict[str, np.ndarray]:
    """Per label of `MARKERS`, a score per spectrum with no training: on the spectrum scaled to a maximum of
    1, its highest point inside the label's band ranges above its median; the least over the bands the label
    needs. The textbook's rule: a group shows where the correlation tables put it."""
    x = np.asarray(ds.axis)
    X = np.asarray(ds.X, dtype=float)
    X = X / np.maximum(X.max(axis=1, keepdims=True), 1e-12)
    base = np.median(X, axis=1)
    out = {}
    for label in MARKERS:
        heights = []
        for ranges in marker_windows(label):
            inside = np.zeros(x.size, dtype=bool)
            for lo, hi in ranges:
                inside |= (x >= lo) & (x <= hi)
            heights.append(X[:, inside].max(axis=1) - base if inside.any() else np.full(len(X), np.nan))
        out[label] = np.min(heights, axis=0)
    return out


def textbook_rule(ds: SpectraDataset, name: str) -> pd.DataFrame:
    """Per label of `ds` that `MARKERS` names: its band ranges, positives in `ds`, and the ROC-AUC of
    `textbook_scores` (`ranking`: NaN without `MIN_CLASS` spectra with the label and as many without, or
    where the axis misses one of its ranges). No such label: no row."""
    names = list(ds.label_names)
    labels = [n for n in MARKERS if n in names]
    if not labels:
        return pd.DataFrame(columns=["set", "label", "bands_cm1", "positives", "spectra", "auc"])
    scores = textbook_scores(ds)
    y = np.asarray(ds.y)[:, [names.index(n) for n in labels]]
    ranked = np.stack([np.nan_to_num(scores[n]) for n in labels], axis=1)
    auc = ranking(y, ranked, labels)
    auc |= {n: float("nan") for n in labels if not np.isfinite(scores[n]).all()}
    return pd.DataFrame(
        {
            "set": name,
            "label": labels,
            "bands_cm1": [
                " and ".join("/".join(f"{lo:g}-{hi:g}" for lo, hi in r) for r in marker_windows(n))
                for n in labels
            ],
            "positives": y.sum(axis=0).astype(int),
            "spectra": len(ds),
            "auc": [auc[n] for n in labels],
        }
    )
