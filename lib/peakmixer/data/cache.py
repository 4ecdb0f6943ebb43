"""Where downloaded data and the files made from them live (a module of its own: the importers and the
downloaders both need it, and neither should import the other)."""

from __future__ import annotations

import os
from pathlib import Path

import pooch

from peakmixer.data.dataset import DatasetError

ENV_CACHE = "PEAKMIXER_DATA"
SMARTS_957 = "substructures_957.txt"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: `cache_dir`, else ``$PEAKMIXER_DATA``, else the user cache."""
    return Path(cache_dir or os.environ.get(ENV_CACHE) or pooch.os_cache("peakmixer")).expanduser()


def smarts_957_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The 957-substructure SMARTS list written by ``data download qm9s``; `DatasetError` if absent."""
    path = cache_root(cache_dir) / "qm9s" / SMARTS_957
    if not path.exists():
        raise DatasetError(f"{path} does not exist: run `python -m peakmixer data download qm9s` first")
    return path
