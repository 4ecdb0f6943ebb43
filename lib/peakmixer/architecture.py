"""The model's choices and defaults, in one place and without torch: `models.build_model`,
`train.ModelConfig`, the command line's options and the sweeps take theirs from here."""

from __future__ import annotations

from dataclasses import dataclass

EXTRACTORS = ("respeak", "cnnpeak")
MIXERS = ("none", "mlp", "mlpmixer", "transformer")
LAYERED_MIXERS = ("mlpmixer", "transformer")  # the mixers `mixer_layers` counts the layers of
# the interpretable path: none, a learnt matrix, a fixed random one, or a random one drawn afresh for every
# training batch (the authors' code)
IP_MODES = ("off", "trainable", "frozen", "redrawn")


@dataclass(frozen=True)
class Architecture:
    """The model's defaults, in one place: `build_model`, `train.ModelConfig` and the command line take
    theirs from `DEFAULTS` (the paper's ResPeak-160x6 + MLPMixer-4 on 1024 points)."""

    extractor: str = "respeak"
    mixer: str = "mlpmixer"
    width: int = 160  # extractor channels
    blocks: int | None = None  # ResPeak blocks (None: 6); CNN-Peak has one
    mixer_layers: int = 4
    mlp_layers: int = 3
    input_length: int = 1024
    hidden: int = 768  # the mixer MLP's hidden width
    mlp_hidden: int = 1024  # the MLP mixer's layer width
    dropout: float = 0.0
    shared_norm: bool = False
    heads: int = 8  # transformer


DEFAULTS = Architecture()
RESPEAK_BLOCKS = 6  # ResPeak's blocks when `blocks` is None
