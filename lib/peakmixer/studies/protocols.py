"""Training recipes a sweep dataset can name (`recipe:`), or that its name implies (`sweep.dataset_entry`):
Ho et al.'s pre-train -> fine-tune protocol for bacteria data, and the paper's recipes for its datasets."""

from __future__ import annotations

from typing import Any

# Ho et al.'s protocol for bacteria data (real or synthetic): pre-train on the reference split, fine-tune on
# the fine-tune split with a random 10% held out per seed, small batches and a lower learning rate.
HO_PROTOCOL: dict[str, Any] = {
    "protocol": "pretrain_finetune",
    "train": {"data": {"train_split": "reference", "val_split": "val"}},
    "finetune": {
        "data": {"train_split": "finetune", "val_fraction": 0.1},
        "optim": {"lr": 3e-4, "batch_size": 8},
    },
}
# The paper's recipes for the real datasets (the authors' code, with one cosine period over the whole run
# instead of upstream's 10-epoch sawtooth); they override the sweep-wide training settings.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "synth-bac30": HO_PROTOCOL,
    "bacteria": HO_PROTOCOL
    | {
        "train": {
            "data": {"train_split": "reference", "val_fraction": 0.1},
            "optim": {"lr": 1e-3, "epochs": 50},
        }
    },
    "qm9s": {"train": {"optim": {"lr": 1e-4, "epochs": 200}}},
    # patience >= epochs: a warm restart lifts the rate back up, so early stopping would cut the recipe short
    "nist-ir": {
        "train": {
            "optim": {"lr": 2e-3, "epochs": 600, "scheduler": "cosine_restarts", "t_0": 40, "patience": 600}
        }
    },
}

__all__ = ["HO_PROTOCOL", "PROTOCOLS"]
