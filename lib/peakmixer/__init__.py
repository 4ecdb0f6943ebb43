"""PeakMixer: peak feature extractors + 2D MLP feature mixer + interpretable path for vibrational spectra.

The main names, importable from here (loaded on first use, so ``import peakmixer`` stays light):

    load, SpectraDataset          a dataset file and its contents (`peakmixer.data`)
    import_files                  spectrum files into a dataset (`data.io`)
    make_synth, ensure_synth      the synthetic benchmarks (`peakmixer.synth`)
    load_config                   a YAML training config (`peakmixer.train`; `train.train` runs it)
    load_checkpoint               a trained run's checkpoint
    evaluate_checkpoint           a run's metrics on a split
    build_model                   ResPeak / CNN-Peak + a mixer (`peakmixer.models`)
    attach_ip                     the interpretable path (`peakmixer.ip`)
    grad_cam                      Grad-CAM maps through all / class-specific channels (`attribution`)
    Explainer, explain_files      a trained model's predictions and Grad-CAM figures (`report.explain`)
    GradCamViewer                 the interactive Grad-CAM viewer (`report.viewer`)
    open_model, predict_files     a .pt or .onnx model on torch or ONNX Runtime; predictions (`deploy`)

The package is built in layers, each importing only from those below it (checked by import-linter):
utilities (`paths`, `config`, `files`, `provenance`) < `data` < core (`models`, `ip`, `metrics`, `train`,
`attribution`, `deploy`) < `synth` < `studies` < `report` < commands (`commands`, `cli`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "load": "data",
    "SpectraDataset": "data",
    "import_files": "data.io",
    "make_synth": "synth",
    "ensure_synth": "synth",
    "load_config": "train",
    "load_checkpoint": "train",
    "evaluate_checkpoint": "train",
    "build_model": "models",
    "attach_ip": "ip",
    "grad_cam": "attribution",
    "Explainer": "report.explain",
    "explain_files": "report.explain",
    "GradCamViewer": "report.viewer",
    "open_model": "deploy",
    "predict_files": "deploy",
}
__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'peakmixer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"peakmixer.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
