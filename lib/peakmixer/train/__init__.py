"""Layer 2, training: one loop for CPU and CUDA (AMP, DDP), checkpoints and run identity.

The public names, importable from here: `TrainConfig`, `load_config`, `train`, `load_checkpoint`,
`model_from_checkpoint`, `evaluate_checkpoint`, `predict`, `export_model`.
"""

from peakmixer.train.loop import (
    TrainConfig,
    evaluate_checkpoint,
    export_model,
    load_checkpoint,
    load_config,
    model_from_checkpoint,
    predict,
    train,
)

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
