"""Checkpoints: atomic save, a checked load (`weights_only=True`), the model a checkpoint or config describes,
export of the weights alone (fp16, as shipped) and the RNG state that makes resume exact.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from peakmixer.config import (
    BadInput,
    ConfigError,
    MissingFile,
    from_dict,
)
from peakmixer.data.dataset import input_grid, load
from peakmixer.files import atomic
from peakmixer.ip import IPModel, attach_ip
from peakmixer.models import PeakModel, build_model
from peakmixer.train.config import TrainConfig


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then an atomic rename: a kill never leaves a torn checkpoint."""
    with atomic(path) as tmp:
        torch.save(state, tmp)


class CheckpointError(BadInput, ValueError):
    """A file that is not a readable peakmixer checkpoint (truncated, corrupt, foreign)."""


# What torch's zip reader says of a truncated or foreign archive (measured on torch 2.13).
_NOT_A_CHECKPOINT = ("PytorchStreamReader", "inline_container", "zip archive", "central directory")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only); a file that is
    not one (truncated, corrupt, another format, missing our keys) is a `CheckpointError` naming it."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: checkpoint not found")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        raise CheckpointError(f"{path}: not a readable checkpoint (not a torch file: it starts {head!r})")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    except RuntimeError as e:
        # torch's zip reader says a damaged or foreign archive this way; any other RuntimeError is a bug
        if not any(sign in str(e) for sign in _NOT_A_CHECKPOINT):
            raise
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})") from None
    missing = [k for k in ("model", "model_spec", "config") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a peakmixer checkpoint (no {', '.join(missing)})")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> PeakModel | IPModel:
    """Rebuild a model (with its interpretable path, if it has one) from a checkpoint's spec and weights."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    spec = dict(ckpt["model_spec"])
    extractor, mixer, ip = spec.pop("extractor"), spec.pop("mixer"), spec.pop("ip", None)
    model = build_model(extractor, mixer, **spec)
    if ip is not None:
        model = attach_ip(model, mode=ip["mode"], task=ip["task"], channels=ip["channels"])
    model.load_state_dict(ckpt["model"])
    return model


# What a shipped model keeps of its checkpoint: enough to rebuild, identify and evaluate it.
EXPORT_KEYS = (
    "model",
    "model_spec",
    "config",
    "config_id",
    "task",
    "label_names",
    "metrics",
    "data_hash",
    "input_axis",
    "synthetic_data",
)


def shipped_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors rounded to fp16, as `export_model` ships them (half the size; a model loads
    them back into fp32). Attribution scores in the store are made on weights rounded the same way, so
    that re-scoring a shipped model reproduces them exactly."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def export_model(checkpoint: str | Path, out: str | Path) -> Path:
    """A slim copy of a trained model for shipping (``models/``): fp16 weights (`shipped_weights`), spec,
    config, run identity, labels and validation metrics; no optimiser state or RNG. Written atomically;
    loads like a checkpoint (`model_from_checkpoint`)."""
    ckpt = load_checkpoint(checkpoint)
    ckpt.setdefault("input_axis", torch.from_numpy(checkpoint_axis(ckpt)))
    if "synthetic_data" not in ckpt:  # made before checkpoints said so: ask the training data, if here
        path = from_dict(TrainConfig, ckpt["config"]).data.path
        known = bool(path) and Path(path).exists()
        ckpt["synthetic_data"] = bool(load(path).provenance.get("synthetic")) if known else None
    missing = [k for k in EXPORT_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{checkpoint}: not a peakmixer checkpoint (missing {missing})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # runs saved before checkpoints kept these have none
    kept = {k: ckpt[k] for k in (*EXPORT_KEYS, "split_record", "spectrum_kind", "preprocess") if k in ckpt}
    save_checkpoint(out, kept | {"model": shipped_weights(ckpt["model"])})
    return out


def checkpoint_axis(ckpt: dict[str, Any]) -> np.ndarray:
    """The wavenumber axis a model's inputs lie on. Checkpoints carry it; for one made before they did,
    it is derived from the training data named in its config."""
    if "input_axis" in ckpt:
        return np.asarray(ckpt["input_axis"], dtype=np.float64)
    cfg = from_dict(TrainConfig, ckpt["config"])
    if not cfg.data.path or not Path(cfg.data.path).exists():
        raise ConfigError("the checkpoint has no input axis and its training data are not here to derive it")
    return input_grid(load(cfg.data.path).axis, cfg.model.input_length)


def checkpoint_scaling(ckpt: dict[str, Any]) -> str:
    """How raw spectra are scaled for the model (`data.preprocess.import_scaling`): ``preprocess``,
    ``none`` or ``minmax``. A checkpoint saved before it was recorded: its pipeline's, else min-max."""
    return str(ckpt.get("import_scaling") or ("preprocess" if ckpt.get("preprocess") else "minmax"))


def spectrum_kind(ckpt: dict[str, Any]) -> str | None:
    """``ir`` or ``raman``: what the model was trained on, where known. A checkpoint saved before they
    recorded it is known by its benchmark file's name (`synth.ensure_synth` names them by kind)."""
    if ckpt.get("spectrum_kind"):
        return str(ckpt["spectrum_kind"])
    name = Path(from_dict(TrainConfig, ckpt["config"]).data.path or "").name
    return "ir" if name.startswith("synth-ir") else "raman" if name.startswith("synth-bac") else None


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def build_from_config(cfg: TrainConfig, n_classes: int, task: str = "multilabel") -> PeakModel | IPModel:
    """The model a config describes, for `n_classes` outputs; `task` decides the IP's sampling."""
    m = cfg.model
    model = build_model(
        m.extractor,
        m.mixer,
        n_classes=n_classes,
        width=m.width,
        blocks=m.blocks,
        mixer_layers=m.mixer_layers,
        mlp_layers=m.mlp_layers,
        input_length=m.input_length,
        hidden=m.hidden,
        mlp_hidden=m.mlp_hidden,
        dropout=m.dropout,
        shared_norm=m.shared_norm,
        heads=m.heads,
    )
    return attach_ip(model, mode=m.ip.mode, task=task, channels=m.ip.channels)
