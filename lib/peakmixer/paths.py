"""Every path the package uses, in one place: the checkout it works in and the folders inside it.

The checkout (``params/``, ``results/``, ``models/``, ``notebooks/``) is where this package sits in a clone
(``lib/peakmixer/``), or the folder ``PEAKMIXER_REPO`` names, for a package installed elsewhere
(``pip install .``). Commands that read or write repository files refuse to run outside a checkout
(`in_checkout`), so an installed package never writes beside itself.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES = PACKAGE_DIR / "resources"  # shipped with the package: the dataset registry, normal-mode tables
REPO_ROOT = Path(os.environ.get("PEAKMIXER_REPO") or PACKAGE_DIR.parents[1]).resolve()

PARAMS_DIR = REPO_ROOT / "params"
TRAIN_PARAMS = PARAMS_DIR / "train"
STUDIES_DIR = PARAMS_DIR / "sweeps"
RESULTS_DIR = REPO_ROOT / "results"
MODELS_DIR = REPO_ROOT / "models"
FIGURES_DIR = REPO_ROOT / "figures"
DATA_DIR = REPO_ROOT / "data"
RUNS_DIR = REPO_ROOT / "runs"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
README = REPO_ROOT / "README.md"
DOCS_DIR = REPO_ROOT / "docs"


def in_checkout(root: Path = REPO_ROOT) -> bool:
    """Whether `root` is a PeakMixer checkout (its parameters and pyproject are there)."""
    return (root / "params").is_dir() and (root / "pyproject.toml").is_file()
