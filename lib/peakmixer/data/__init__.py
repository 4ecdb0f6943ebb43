"""Layer 1, data: every source becomes a `SpectraDataset`.

`dataset` (the container, its file format, axes, splits, resampling), `labels` (label sets, SMARTS),
`io/` (one reader per spectrum format and the batch importer), `download` (the dataset registry, checked
downloads), `cache` (where downloads live), `split_record` (fingerprints of the rows a model saw).
"""

from peakmixer.data.dataset import (
    DatasetError,
    SpectraDataset,
    file_sha256,
    load,
    named_axis,
    resample_spectra,
    toy_dataset,
)

__all__ = [
    "DatasetError",
    "SpectraDataset",
    "file_sha256",
    "load",
    "named_axis",
    "resample_spectra",
    "toy_dataset",
]
