"""The same network with its 1-D convolutions written as 2-D ones of height 1, for ONNX Runtime.

ONNX Runtime's CPU provider runs 2-D convolutions in its blocked (NCHWc) layout and 1-D ones through
im2col + GEMM; on a 2-core EPYC the ResPeak-160 extractor ran 1.6x faster in the 2-D form, measured
2026-12-07. The extractor works on (B, C, 1, L) maps throughout, so that the layout changes once at its
entrance and once at its exit, not at every layer: every ResPeak and CNN-Peak operation (convolution,
batch norm, activation, concatenation over channels, a mean over the last axis) means the same on them.
The copy computes the same logits as the original (tested); the original is not changed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from peakmixer.models import SimpleSqueezeExcite


class Height1Conv(nn.Conv2d):
    """A Conv1d's weights as a (1, k) Conv2d, always with a bias (zeros where the Conv1d has none): the
    exporter builds a missing bias at run time from the weight's shape, which keeps ONNX Runtime from
    folding the batch norm that follows into the convolution."""

    @classmethod
    def of(cls, conv: nn.Conv1d) -> Height1Conv:
        if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":  # none in our extractors
            raise ValueError(f"cannot rewrite a Conv1d with padding {conv.padding!r} ({conv.padding_mode})")
        new = cls(
            conv.in_channels,
            conv.out_channels,
            (1, conv.kernel_size[0]),
            stride=(1, conv.stride[0]),
            padding=(0, conv.padding[0]),
            dilation=(1, conv.dilation[0]),
            groups=conv.groups,
            bias=True,
        )
        new.weight.data = conv.weight.data.unsqueeze(2).clone()
        new.bias.data = conv.bias.data.clone() if conv.bias is not None else torch.zeros(conv.out_channels)
        return new


def _batch_norm_2d(bn: nn.BatchNorm1d) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new.load_state_dict(bn.state_dict())
    return new


class Height1SimpleSqueezeExcite(nn.Module):
    """CNN-Peak's simple SE on (B, C, 1, L) maps: its gate gets two trailing axes instead of one."""

    def __init__(self, se: SimpleSqueezeExcite) -> None:
        super().__init__()
        self.squeeze, self.excite = se.squeeze, se.excite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x).flatten(1)
        return x * torch.softmax(self.excite(s), dim=1)[:, :, None, None]


class Height1Extractor(nn.Module):
    """(B, C_in, L) -> the wrapped extractor on (B, C_in, 1, L) -> (B, C, L')."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.inner = extractor
        self.out_channels = extractor.out_channels
        self.out_length = extractor.out_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.unsqueeze(2)).squeeze(2)


def _rewrite(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv1d):
            setattr(module, name, Height1Conv.of(child))
        elif isinstance(child, nn.BatchNorm1d):
            setattr(module, name, _batch_norm_2d(child))
        elif isinstance(child, SimpleSqueezeExcite):
            setattr(module, name, Height1SimpleSqueezeExcite(child))
        else:
            _rewrite(child)


def height1_form(model: nn.Module) -> nn.Module:
    """A copy of `model` (a `PeakModel` or `IPModel`, in eval mode) whose extractor runs as 2-D
    convolutions of height 1; mixer, interpretable path and head are unchanged."""
    twin = copy.deepcopy(model)
    extractor = twin.extractor
    _rewrite(extractor)
    twin.extractor = Height1Extractor(extractor)
    return twin.eval()  # the new batch norms too (modules are made in training mode)
