"""Layer 2, training: one loop for CPU and CUDA (AMP, DDP), checkpoints and run identity.

`config` (typed settings from YAML), `device` (device, CPU flags, precision), `distributed` (DDP),
`prepare` (a split as tensors, the loss, prediction), `checkpoint` (save, checked load, export),
`identity` (the run id the results store keys on), `loop` (`train`), `evaluate` (a saved model on a split).

The public names, importable from here: `TrainConfig`, `load_config`, `train`, `load_checkpoint`,
`model_from_checkpoint`, `evaluate_checkpoint`, `predict`, `export_model`.
"""

from peakmixer.train.checkpoint import export_model, load_checkpoint, model_from_checkpoint
from peakmixer.train.config import TrainConfig, load_config
from peakmixer.train.evaluate import evaluate_checkpoint
from peakmixer.train.loop import train
from peakmixer.train.prepare import predict

__all__ = [
    "TrainConfig",
    "evaluate_checkpoint",
    "export_model",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "predict",
    "train",
]
