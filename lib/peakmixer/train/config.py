"""A training run's settings: typed dataclasses loaded from YAML (`load_config`).

Model defaults come from `peakmixer.architecture.DEFAULTS`, the one place they are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from peakmixer.architecture import DEFAULTS
from peakmixer.config import (
    apply_overrides,
    from_dict,
    load_yaml,
)


@dataclass
class DataConfig:
    path: str = ""  # a SpectraDataset file
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.0  # > 0: validate on a random (stratified, seeded) share of train_split instead
    target: str = "y"  # "y", or an integer extra such as "y_group" (a multiclass target)
    normalize: Literal["none", "minmax", "standard"] = "none"  # per spectrum


@dataclass
class IPConfig:
    mode: Literal["off", "trainable", "frozen", "redrawn"] = "off"  # the interpretable path (peakmixer.ip)
    weight: float = 1.0  # λ: weight of the class-specific (pred_2) term of the loss
    channels: int = 0  # C_ip, channels of the IP map and matrix (0: the extractor's width)


@dataclass
class ModelConfig:
    """The model section of a config: the architecture (defaults: `models.DEFAULTS`) and its IP."""

    extractor: str = DEFAULTS.extractor
    mixer: str = DEFAULTS.mixer
    width: int = DEFAULTS.width
    blocks: int | None = DEFAULTS.blocks
    mixer_layers: int = DEFAULTS.mixer_layers
    mlp_layers: int = DEFAULTS.mlp_layers
    input_length: int = DEFAULTS.input_length
    hidden: int = DEFAULTS.hidden
    mlp_hidden: int = DEFAULTS.mlp_hidden
    dropout: float = DEFAULTS.dropout
    shared_norm: bool = DEFAULTS.shared_norm
    heads: int = DEFAULTS.heads
    ip: IPConfig = field(default_factory=IPConfig)


@dataclass
class OptimConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"  # AdamW as upstream; SGD (+momentum) as an alternative
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.01  # AdamW's default, as upstream
    batch_size: int = 64  # global: split over DDP processes
    epochs: int = 50
    scheduler: Literal["none", "cosine", "cosine_restarts"] = "cosine"
    t_max: int = 0  # cosine period in epochs; 0 = the whole run (upstream used 10: an unintended sawtooth)
    t_0: int = 40  # warm restarts (NIST-IR recipe): first period, then x t_mult
    t_mult: int = 2
    eta_min: float = 1e-6
    patience: int = 20  # early stopping, in epochs without a validation improvement > min_delta
    min_delta: float = 1e-4
    grad_clip: float = 0.0  # max gradient norm; 0 = off


@dataclass
class AugmentConfig:
    """Training-time augmentation of each batch (`train.augment`); all off by default. Amplitudes are
    shares of each spectrum's range (max - min), shifts and widths in points of the model's input."""

    noise: float = 0.0  # sd of added Gaussian noise
    baseline: float = 0.0  # largest amplitude of a random smooth (quadratic) baseline drift
    shift: float = 0.0  # largest shift of the whole spectrum along its axis, in points
    broaden: float = 0.0  # largest Gaussian broadening (sd, in points)
    scale: float = 0.0  # largest relative intensity scaling: x (1 +- scale)
    spikes: float = 0.0  # probability that a spectrum gets one cosmic-ray spike (0.5-2x its range)

    @property
    def active(self) -> bool:
        return any(
            v > 0 for v in (self.noise, self.baseline, self.shift, self.broaden, self.scale, self.spikes)
        )


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | cuda:1 | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    init_from: str = ""  # checkpoint to start from (pre-train -> fine-tune)
    new_head: bool = False  # with init_from: a fresh final layer (e.g. another number of classes)
    checkpoint_every: int = 0  # also write last.pt every N optimizer steps (0 = at epoch ends only)
    max_steps: int = 0  # stop after N optimizer steps in total (0 = no limit); resume continues
    eval_batch_size: int = 256
    progress: bool = True  # a bar and a line per epoch
    # seconds: a status line at least this often while training, also with progress off (0: none)
    progress_every: float = 20.0
    threads: int = 0  # CPU threads for this run (0: as the process has them; see `default_threads`)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A `TrainConfig` from YAML plus ``key=value`` overrides; unknown keys raise `ConfigError`."""
    data = load_yaml(path) if path else {}
    return from_dict(TrainConfig, apply_overrides(data, overrides or []))
