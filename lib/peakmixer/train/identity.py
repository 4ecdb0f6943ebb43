"""Run identity: the short id of everything that decides what a run computes (`config_fingerprint`), used by
the results store and by `train(resume=True)`; and the machine a run was made on.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from peakmixer.config import (
    to_dict,
)
from peakmixer.data.dataset import SpectraDataset, data_identity, file_sha256
from peakmixer.models import code_fingerprint
from peakmixer.train.checkpoint import build_from_config, load_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.device import cpu_fields, cpu_kernels, resolve_device, resolve_precision
from peakmixer.train.prepare import label_space

# What a run computes beyond its config and data: the training loop, loss, optimiser and schedule set-up,
# data preparation and metrics. Bump it when a change there changes results (not for a refactor);
# tests/test_identity.py replays a short reference run and fails until the version is bumped.
TRAINING_PATH_VERSION = 1

# Settings that change where or how a run is observed, not what it computes. `device` and `precision` are
# replaced by the device type and the resolved precision ("auto" means bf16 on one machine, fp32 on another).
_VOLATILE = (
    "out_dir",
    "progress",
    "progress_every",
    "threads",  # recorded with the run (a row's `threads`), as where it ran
    "checkpoint_every",
    "max_steps",
    "eval_batch_size",
    "device",
)


def _without_defaults(d: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """Settings added after runs were stored count only when they are used: augmentation that is off
    computes what a run made before it existed computed, so it leaves the identity as it was."""
    if not cfg.augment.active:
        d.pop("augment", None)
    return d


def settings_digest(cfg: TrainConfig, *, starts_from: str = "") -> str:
    """8 hex digits of the settings that decide what a run computes, less its data, code, device and the
    path it starts from (`starts_from`: that start's own digest instead): a sweep names run folders with
    it, so that two studies with one run name at two budgets never share a folder."""
    d = _without_defaults({k: v for k, v in to_dict(cfg).items() if k not in (*_VOLATILE, "init_from")}, cfg)
    d["data"] = {k: v for k, v in d["data"].items() if k != "path"}
    blob = json.dumps([d, starts_from], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def config_fingerprint(
    cfg: TrainConfig,
    data_id: str,
    *,
    model_code: str,
    device_type: str,
    precision: str,
    init_id: str = "",
) -> str:
    """The run identity: a short id of everything that decides what a run computes.

    That is the config (less `_VOLATILE` keys and the data's path), the data (`data.data_identity`), the
    device type and resolved precision, the model's `code_fingerprint`, `TRAINING_PATH_VERSION` and, for a
    run that starts from a checkpoint, that checkpoint's own identity (`init_id`) instead of its path. Two
    runs with one id compute the same thing; the results store and `train(resume=True)` rely on it.
    """
    d = _without_defaults({k: v for k, v in to_dict(cfg).items() if k not in _VOLATILE}, cfg)
    d |= {"precision": precision, "init_from": init_id}
    d["data"] = {k: v for k, v in d["data"].items() if k != "path"}  # the data count by data_id
    if d["model"].get("ip", {}).get("mode", "off") == "off":
        d["model"].pop("ip", None)  # settings of an interpretable path that is not there change nothing
    blob = [d, data_id, device_type, model_code, TRAINING_PATH_VERSION]
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]


def init_identity(path: str | Path) -> str:
    """The identity of a checkpoint a run starts from, so that another start is another run: its run's
    config id and which of its weights — ``ID:best`` (a run's best model is fixed by its config),
    ``ID:last:STEP`` (a resume point), ``ID:export`` (fp16-rounded, shipped) — or, for a checkpoint made
    elsewhere, the file's sha256."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    run = ckpt.get("config_id")
    if not run:
        return "sha256:" + file_sha256(path)
    if "optimizer" not in ckpt:
        return f"{run}:export"
    if path.name == "last.pt":
        return f"{run}:last:{ckpt['state']['global_step']}"
    return f"{run}:best" if path.name == "best.pt" else "sha256:" + file_sha256(path)


def planned_config_id(
    cfg: TrainConfig,
    dataset: SpectraDataset,
    *,
    device_type: str | None = None,
    precision: str | None = None,
    init_id: str | None = None,
) -> str:
    """The id `train(cfg)` will give its run, without training; device type and precision default to
    what this machine resolves, `init_id` to the identity of `cfg.init_from` (which must then exist)."""
    device = resolve_device(cfg.device) if device_type is None else torch.device(device_type)
    precision = precision or resolve_precision(cfg.precision, device)
    if init_id is None:
        init_id = init_identity(cfg.init_from) if cfg.init_from else ""
    task, names = label_space(dataset, cfg)
    model_code = _planned_model_code(cfg, len(names), task)
    return model_config_id(
        cfg, dataset, model_code, device_type=device.type, precision=precision, init_id=init_id
    )


_MODEL_CODES: dict[tuple[str, int, str], str] = {}


def _planned_model_code(cfg: TrainConfig, n_classes: int, task: str) -> str:
    """`code_fingerprint` of the model `cfg` builds, once per model settings and process: checking a store
    plans the same few models hundreds of times (500 builds, about a minute of module set-up)."""
    key = (json.dumps(asdict(cfg.model), sort_keys=True), n_classes, task)
    if key not in _MODEL_CODES:
        with torch.device("meta"):  # structure only: no memory, no initialisation cost
            _MODEL_CODES[key] = code_fingerprint(build_from_config(cfg, n_classes, task))
    return _MODEL_CODES[key]


def model_config_id(
    cfg: TrainConfig,
    dataset: SpectraDataset,
    model_code: str,
    *,
    device_type: str,
    precision: str,
    init_id: str,
) -> str:
    """`config_fingerprint` of `cfg` training the model whose `code_fingerprint` is `model_code` on
    `dataset`: the id a run records, a plan expects."""
    return config_fingerprint(
        cfg,
        data_identity(dataset, cfg.data.path),
        model_code=model_code,
        device_type=device_type,
        precision=precision,
        init_id=init_id,
    )


def machine() -> dict[str, Any]:
    """Where a run was made: CPU model and its kernel instruction sets (`cpu_kernels`), GPU model, torch
    version and intra-op threads."""
    cpu = cpu_fields().get("model name") or platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return {
        "cpu": cpu,
        "cpu_kernels": cpu_kernels(),
        "gpu": gpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
