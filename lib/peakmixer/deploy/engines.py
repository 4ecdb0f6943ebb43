"""One interface to a trained model, run by torch or by ONNX Runtime: `open_model(path, engine)`.

A ``.pt`` (a run's checkpoint or a shipped model) runs in torch by default, or in ONNX Runtime (exported in
memory, unchecked: `export` is the checked path); an ``.onnx`` written by `export` runs in ONNX Runtime, and
needs no torch model code at all. Either way the model says what its input is (`axis`, `normalize`) and how
to read its output (`task`, `label_names`, `threshold`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from peakmixer.config import BadInput, MissingFile, from_dict
from peakmixer.deploy.onnx_export import model_metadata, read_metadata, run_session, session, write_onnx
from peakmixer.train.checkpoint import (
    checkpoint_axis,
    checkpoint_scaling,
    load_checkpoint,
    model_from_checkpoint,
    spectrum_kind,
)
from peakmixer.train.config import TrainConfig
from peakmixer.train.evaluate import class_probabilities
from peakmixer.train.prepare import normalize

ENGINES = ("torch", "onnxruntime")


@dataclass
class DeployedModel:
    """A model ready to score spectra on its axis: ``logits`` maps (N, 1, L) float32 to (N, K)."""

    path: Path
    engine: str
    precision: str  # fp32 or int8 (the file's), torch: fp32
    axis: np.ndarray
    label_names: list[str]
    task: str
    normalize: str  # applied after the importers' min-max, as in training
    kind: str | None  # ir / raman, where known
    config_id: str
    synthetic: bool | None
    logits: Callable[[np.ndarray], np.ndarray]
    threshold: float = 0.5  # multilabel: a label is predicted at probability >= threshold
    preprocess: dict | None = None  # the pipeline raw spectra go through first (`data.preprocess`)
    import_scaling: str = "minmax"  # without a pipeline: how raw spectra are scaled (minmax or none)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) of spectra (N, L) already on `axis` and scaled as the model's
        importer scaled them (min-max, or by the model's pipeline; `read_spectra` does both)."""
        X = normalize(np.asarray(rows, dtype=np.float64), self.normalize).astype(np.float32)[:, None, :]
        return class_probabilities(self.task, self.logits(X))

    def predicted(self, probs: np.ndarray) -> list[list[int]]:
        """Per spectrum, the predicted classes: labels at or above the threshold, or the likeliest class."""
        if self.task == "multilabel":
            return [[int(k) for k in np.flatnonzero(p >= self.threshold)] for p in probs]
        return [[int(p.argmax())] for p in probs]


def _torch_logits(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def logits(X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([model(x).float() for x in torch.from_numpy(X).split(256)]).numpy()

    return logits


def _onnx_logits(source: Path | bytes) -> Callable[[np.ndarray], np.ndarray]:
    sess = session(source)
    return lambda X: run_session(sess, X)


def open_model(path: str | Path, engine: str | None = None) -> DeployedModel:
    """The model in `path` (``.pt`` or ``.onnx``) on `engine` (default: torch for ``.pt``, ONNX Runtime for
    ``.onnx``). An ``.onnx`` cannot run in torch; that is refused in one line."""
    path = Path(path)
    if engine not in (None, *ENGINES):
        raise BadInput(f"engine {engine!r}: not one of {', '.join(ENGINES)}")
    if not path.exists():
        raise MissingFile(f"{path}: model not found")
    if path.suffix == ".onnx":
        if engine == "torch":
            raise BadInput(f"{path}: an ONNX model runs with --engine onnxruntime, not torch")
        meta = read_metadata(path)
        return DeployedModel(
            path,
            "onnxruntime",
            meta["precision"],
            np.asarray(meta["input_axis"], dtype=np.float64),
            list(meta["label_names"]),
            meta["task"],
            meta["normalize"],
            meta["spectrum_kind"] or None,
            meta["config_id"],
            meta["synthetic_data"],
            _onnx_logits(path),
            preprocess=meta.get("preprocess"),
            import_scaling=meta.get("importer_normalize", "minmax"),
        )
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt).eval()
    if engine == "onnxruntime":
        with tempfile.TemporaryDirectory(prefix="peakmixer-onnx-") as tmp:
            onnx_path = Path(tmp) / "model.onnx"
            write_onnx(model, onnx_path, model_metadata(path, ckpt), model.input_length)
            logits = _onnx_logits(onnx_path.read_bytes())
    else:
        logits = _torch_logits(model)
    return DeployedModel(
        path,
        engine or "torch",
        "fp32",
        checkpoint_axis(ckpt),
        list(ckpt["label_names"]),
        ckpt["task"],
        from_dict(TrainConfig, ckpt["config"]).data.normalize,
        spectrum_kind(ckpt),
        str(ckpt.get("config_id", "")),
        ckpt.get("synthetic_data"),
        logits,
        preprocess=ckpt.get("preprocess"),
        import_scaling=checkpoint_scaling(ckpt),
    )
