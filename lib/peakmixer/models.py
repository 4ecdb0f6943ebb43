"""PeakMixer models: a peak feature extractor followed by a feature mixer and a head.

    spectrum (B, 1, L) --extractor--> (B, C, L') --mixer--> (B, C, L') --head--> logits (B, K)
                       `------------ forward_features ----------'  `- forward_head -'

Extractors: `respeak` (substructures) and `cnnpeak` (bacteria). Mixers: `none`, `mlp`, `mlpmixer`,
`transformer`. Architectures and sizes follow the authors' code (UPSTREAM_SPEC §1); the departures are
deliberate fixes: no dead modules, no hard-coded lengths, one LayerNorm per mixer sub-block by default
(`shared_norm=True` restores the upstream tie), and the right token/channel naming.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from peakmixer.architecture import DEFAULTS, EXTRACTORS, MIXERS, RESPEAK_BLOCKS
from peakmixer.config import ConfigError
from peakmixer.provenance import source_digest

# --- building blocks -------------------------------------------------------------------------------


class ConvBNAct(nn.Sequential):
    """The upstream "CBL": Conv1d (no bias) -> BatchNorm1d -> LeakyReLU(0.01)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm1d(c_out),
            nn.LeakyReLU(0.01),
        )


def conv_out_length(length: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class SqueezeExcite(nn.Module):
    """ResPeak's "multi-SE": global mean over length -> two 1x1 CBLs -> sigmoid gate per channel.

    (B, C, L) -> (B, C, L). As upstream, the excitation has BatchNorm on a length-1 map, so training
    needs a batch of at least 2 (evaluation works with 1).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = max(channels // 4, 16)
        self.excite = nn.Sequential(ConvBNAct(channels, reduced, 1), ConvBNAct(reduced, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.excite(x.mean(dim=-1, keepdim=True)))


class SimpleSqueezeExcite(nn.Module):
    """CNN-Peak's "simple SE": a learnt linear squeeze over length, a channel linear, softmax over channels.

    (B, C, L) -> (B, C, L). Upstream hard-coded L=245 (input 1024); here L comes from the input length.
    """

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()
        self.squeeze = nn.Linear(length, 1)
        self.excite = nn.Linear(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x).flatten(1)  # (B, C), explicit so a batch of one keeps its batch axis
        return x * torch.softmax(self.excite(s), dim=1).unsqueeze(-1)


class Inception(nn.Module):
    """Three parallel CBLs (k 5/7/9, same padding) -> concat (3C) -> SE -> CBL(3C->C, k5, stride 2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(ConvBNAct(channels, channels, k, padding=k // 2) for k in (5, 7, 9))
        self.attention = SqueezeExcite(3 * channels)
        self.reduce = ConvBNAct(3 * channels, channels, 5, stride=2, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.attention(torch.cat([b(x) for b in self.branches], dim=1)))


class ResPeakBlock(nn.Module):
    """Inception(x) + shortcut(x); halves the length. Shortcut = 1x1 stride-2 conv (bias) -> BN -> ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.inception = Inception(channels)
        self.shortcut = nn.Sequential(
            nn.Conv1d(channels, channels, 1, stride=2), nn.BatchNorm1d(channels), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inception(x) + self.shortcut(x)


# --- extractors ------------------------------------------------------------------------------------


class ResPeak(nn.Module):
    """ResPeak extractor: CBL stem (k5, s2) then `blocks` ResPeak blocks. (B, 1, L) -> (B, C, L')."""

    def __init__(self, *, width: int, blocks: int, input_length: int, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_channels, width, 5, stride=2)
        self.blocks = nn.Sequential(*(ResPeakBlock(width) for _ in range(blocks)))
        self.out_channels = width
        length = conv_out_length(input_length, 5, 2)
        for _ in range(blocks):
            length = conv_out_length(length, 5, 2, 2)
        if length < 1:
            raise ValueError(f"input_length {input_length} is too short for {blocks} ResPeak blocks")
        self.out_length = length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class PeakBlock(nn.Module):
    """CNN-Peak's two-level tree: k5/7/9 branches, each feeding the two other kernel sizes (6 paths)
    -> concat (6C) -> simple SE -> CBL(6C->C, k5, stride 2). Each k5/7/9 conv shortens the map by 4."""

    KERNELS = (5, 7, 9)

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()

        def cbl(k: int) -> ConvBNAct:
            return ConvBNAct(channels, channels, k, padding=(k - 5) // 2)

        self.level1 = nn.ModuleList(cbl(k) for k in self.KERNELS)
        self.level2 = nn.ModuleList(
            nn.ModuleList(cbl(k) for k in self.KERNELS if k != k1) for k1 in self.KERNELS
        )
        self.attention = SimpleSqueezeExcite(6 * channels, length - 8)
        self.reduce = ConvBNAct(6 * channels, channels, 5, stride=2)
        self.out_length = conv_out_length(length - 8, 5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        firsts = [c1(x) for c1 in self.level1]  # each level-1 map feeds its two level-2 convs
        paths = [c2(h) for h, pair in zip(firsts, self.level2, strict=True) for c2 in pair]
        return self.reduce(self.attention(torch.cat(paths, dim=1)))


class CNNPeak(nn.Module):
    """CNN-Peak extractor (bacteria): two CBL (k5, s2) stems then one peak block. (B,1,L) -> (B,C,L')."""

    def __init__(self, *, width: int, input_length: int, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, width, 5, stride=2), ConvBNAct(width, width, 5, stride=2)
        )
        length = conv_out_length(conv_out_length(input_length, 5, 2), 5, 2)
        if length < 14:
            raise ValueError(f"input_length {input_length} is too short for CNN-Peak")
        self.peak = PeakBlock(width, length)
        self.out_channels = width
        self.out_length = self.peak.out_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.peak(self.stem(x))


# --- mixers ----------------------------------------------------------------------------------------


class FeedForward(nn.Sequential):
    """Linear -> GELU -> Dropout -> Linear -> Dropout, on the last axis."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class MixerBlock(nn.Module):
    """One 2D mixer layer on (B, L, C): residual token mixing (along positions), then residual channel
    mixing (along channels), each pre-normed by a LayerNorm over channels."""

    def __init__(
        self, tokens: int, channels: int, hidden: int, dropout: float, norms: tuple[nn.Module, nn.Module]
    ) -> None:
        super().__init__()
        self.token_norm, self.channel_norm = norms
        self.token_mixing = FeedForward(tokens, hidden, dropout)
        self.channel_mixing = FeedForward(channels, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mixing(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mixing(self.channel_norm(x))


class MLPMixer(nn.Module):
    """The paper's 2D MLPMixer over the extractor map. (B, C, L) -> (B, C, L), final LayerNorm applied.

    1x1 conv, then `layers` mixer blocks with hidden width `hidden` (768 in the paper) for both MLPs.
    `shared_norm=True` reuses one LayerNorm for every sub-block and the output, as the upstream code does.
    """

    def __init__(
        self,
        *,
        channels: int,
        tokens: int,
        layers: int,
        hidden: int = 768,
        dropout: float = 0.0,
        shared_norm: bool = False,
    ) -> None:
        super().__init__()
        self.proj = nn.Conv1d(channels, channels, 1)
        self.norm = nn.LayerNorm(channels)

        def norms() -> tuple[nn.Module, nn.Module]:
            return (self.norm, self.norm) if shared_norm else (nn.LayerNorm(channels), nn.LayerNorm(channels))

        self.blocks = nn.ModuleList(
            MixerBlock(tokens, channels, hidden, dropout, norms()) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).transpose(1, 2)  # (B, L, C)
        for block in self.blocks:
            x = block(x)
        return self.norm(x).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over positions of (B, L, C) (scaled dot-product, no mask)."""

    def __init__(self, channels: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.dropout = dropout

    def extra_repr(self) -> str:
        return f"heads={self.heads}, dropout={self.dropout}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        # Written out (not F.scaled_dot_product_attention) so that profile_model's FLOP counter sees it;
        # with a few tens of tokens the fused kernel would save nothing.
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        y = F.dropout(attn, self.dropout, self.training) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class TransformerLayer(nn.Module):
    """Pre-norm encoder layer on (B, L, C): x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, channels: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(channels)
        self.attn = SelfAttention(channels, heads, dropout)
        self.ffn_norm = nn.LayerNorm(channels)
        self.ffn = FeedForward(channels, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class TransformerMixer(nn.Module):
    """Transformer encoder over the positions of the extractor map. (B, C, L) -> (B, C, L).

    1x1 conv + learnt position embedding, `layers` pre-norm layers (FFN hidden `hidden`), final LayerNorm:
    the same frame as `MLPMixer` with self-attention in place of the token-mixing MLP.
    """

    def __init__(
        self,
        *,
        channels: int,
        tokens: int,
        layers: int,
        hidden: int = 768,
        heads: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.proj = nn.Conv1d(channels, channels, 1)
        self.pos = nn.Parameter(torch.zeros(1, tokens, channels))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(TransformerLayer(channels, heads, hidden, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).transpose(1, 2) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).transpose(1, 2)


# --- heads -----------------------------------------------------------------------------------------


class FlattenHead(nn.Module):
    """No mixer: flatten (C*L') -> [MLP of `layers` x `hidden` ReLU] -> Linear to K. (B,C,L') -> (B,K)."""

    def __init__(
        self, in_features: int, n_classes: int, *, layers: int = 0, hidden: int = 1024, dropout: float = 0.0
    ) -> None:
        super().__init__()
        dims = [in_features] + [hidden] * layers
        self.mlp = nn.Sequential(
            *(m for a, b in zip(dims, dims[1:], strict=False) for m in (nn.Linear(a, b), nn.ReLU()))
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dims[-1], n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.mlp(f.flatten(1))))


class PoolHead(nn.Module):
    """Mean over positions -> Linear(C, K). (B, C, L') -> (B, K)."""

    def __init__(self, channels: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(f.mean(dim=-1)))


# --- the model -------------------------------------------------------------------------------------


class PeakModel(nn.Module):
    """Extractor + mixer + head with the timm-style split `forward_head(forward_features(x))`."""

    def __init__(
        self, extractor: nn.Module, mixer: nn.Module, head: nn.Module, *, input_length: int, spec: dict
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.mixer = mixer
        self.head = head
        self.input_length = input_length
        self.spec = spec  # the build_model arguments, so a checkpoint can rebuild the model

    @property
    def n_classes(self) -> int:
        return self.spec["n_classes"]

    def extra_repr(self) -> str:
        return f"input_length={self.input_length}"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) or (B, 1, L) spectra -> (B, C, L') unpooled feature map (for the IP and Grad-CAM)."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[-1] != self.input_length or x.shape[1] != self.spec["in_channels"]:
            raise ValueError(
                f"expected spectra of shape (B, {self.input_length}) or (B, {self.spec['in_channels']}, "
                f"{self.input_length}), got {tuple(x.shape)}; resample with SpectraDataset.to_length"
            )
        return self.mixer(self.extractor(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, L') -> (B, K) logits."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_head(self, n_classes: int) -> None:
        """Replace the final linear layer with a fresh one for `n_classes` (fine-tuning to a new task)."""
        fc = self.head.fc
        self.head.fc = nn.Linear(fc.in_features, n_classes).to(fc.weight.device)
        self.spec = {**self.spec, "n_classes": n_classes}


def build_model(
    extractor: str = DEFAULTS.extractor,
    mixer: str = DEFAULTS.mixer,
    *,
    n_classes: int,
    width: int = DEFAULTS.width,
    blocks: int | None = DEFAULTS.blocks,
    mixer_layers: int = DEFAULTS.mixer_layers,
    mlp_layers: int = DEFAULTS.mlp_layers,
    input_length: int = DEFAULTS.input_length,
    **options,
) -> PeakModel:
    """Build extractor x mixer for `n_classes` outputs on spectra of `input_length` points.

    Args:
        extractor: ``respeak`` (`width` channels, `blocks` blocks, default 6) or ``cnnpeak`` (fixed
            topology: `blocks` must be left unset or 1).
        mixer: ``none`` (flatten -> linear), ``mlp`` (`mlp_layers` x 1024 ReLU), ``mlpmixer``
            (`mixer_layers` 2D mixer layers), ``transformer`` (`mixer_layers` encoder layers).
        options: ``hidden`` (mixer MLP width), ``mlp_hidden``, ``dropout``, ``shared_norm``, ``heads``
            (transformer), defaults in `DEFAULTS`, and ``in_channels`` (1).

    Returns a `PeakModel`; logits (B, K) from spectra (B, 1, L).
    """
    known = {k: getattr(DEFAULTS, k) for k in ("hidden", "mlp_hidden", "dropout", "shared_norm", "heads")}
    known["in_channels"] = 1
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"build_model got unknown option(s) {unknown}; known: {sorted(known)}")
    opt = known | options
    if extractor == "respeak":
        ext: nn.Module = ResPeak(
            width=width,
            blocks=RESPEAK_BLOCKS if blocks is None else blocks,
            input_length=input_length,
            in_channels=opt["in_channels"],
        )
    elif extractor == "cnnpeak":
        if blocks not in (None, 1):
            raise ConfigError(f"cnnpeak has a fixed topology (one peak block); got blocks={blocks}")
        ext = CNNPeak(width=width, input_length=input_length, in_channels=opt["in_channels"])
    else:
        raise ConfigError(f"unknown extractor {extractor!r}; choose from {EXTRACTORS}")
    c, tokens = ext.out_channels, ext.out_length
    mixers: dict[str, Callable[[], tuple[nn.Module, nn.Module]]] = {
        "none": lambda: (nn.Identity(), FlattenHead(c * tokens, n_classes, dropout=opt["dropout"])),
        "mlp": lambda: (
            nn.Identity(),
            FlattenHead(
                c * tokens, n_classes, layers=mlp_layers, hidden=opt["mlp_hidden"], dropout=opt["dropout"]
            ),
        ),
        "mlpmixer": lambda: (
            MLPMixer(
                channels=c,
                tokens=tokens,
                layers=mixer_layers,
                hidden=opt["hidden"],
                dropout=opt["dropout"],
                shared_norm=opt["shared_norm"],
            ),
            PoolHead(c, n_classes),
        ),
        "transformer": lambda: (
            TransformerMixer(
                channels=c,
                tokens=tokens,
                layers=mixer_layers,
                hidden=opt["hidden"],
                heads=_heads_for(c, opt["heads"]),
                dropout=opt["dropout"],
            ),
            PoolHead(c, n_classes),
        ),
    }
    if mixer not in mixers:
        raise ConfigError(f"unknown mixer {mixer!r}; choose from {MIXERS}")
    mix, head = mixers[mixer]()
    spec = dict(
        extractor=extractor,
        mixer=mixer,
        n_classes=n_classes,
        width=width,
        blocks=blocks,
        mixer_layers=mixer_layers,
        mlp_layers=mlp_layers,
        input_length=input_length,
        **opt,
    )
    return PeakModel(ext, mix, head, input_length=input_length, spec=spec)


def _heads_for(channels: int, wanted: int) -> int:
    """The largest head count <= `wanted` that divides `channels` (so any width works)."""
    return max(h for h in range(1, wanted + 1) if channels % h == 0)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (shared modules counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def profile_model(model: PeakModel) -> dict[str, float]:
    """Cost per spectrum: ``params``, ``macs`` and ``flops`` (= 2 x MACs) at batch 1, in eval mode.

    FLOPs come from `torch.utils.flop_counter` (conv, linear, matmul, attention); the paper's "GFLOPs"
    are thop MACs, i.e. our ``macs``. The model is copied, so its BatchNorm statistics are untouched; a
    model built on the meta device (``with torch.device("meta")``) is profiled from shapes alone.
    """
    from torch.utils.flop_counter import FlopCounterMode

    meta = next(model.parameters()).device.type == "meta"  # built on the meta device: shapes only, no memory
    probe = model.eval() if meta else copy.deepcopy(model).eval().cpu().float()
    x = torch.zeros(1, probe.spec["in_channels"], probe.input_length, device="meta" if meta else "cpu")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(x)
    flops = counter.get_total_flops()
    return {"params": count_params(model), "macs": flops / 2, "flops": float(flops)}


def code_fingerprint(model: nn.Module) -> str:
    """A short id of what `model` computes, for the results store's run identity.

    It hashes the module tree (`repr`: every layer with its shapes and settings) and the source of each
    peakmixer class in the tree, as an AST without docstrings, so comments, docstrings and formatting do
    not count but code does. Changing one mixer's code changes the ids of that mixer's models only;
    torch's own classes count by name (the torch version is recorded beside each stored run).
    """
    # each module's class and the peakmixer classes it inherits from (an inherited method is code it runs)
    types = {type(m) for m in model.modules()}
    types |= {c for t in types for c in t.__mro__[1:] if c.__module__.split(".")[0] == "peakmixer"}
    classes = sorted(types, key=lambda c: f"{c.__module__}.{c.__qualname__}")
    parts = [repr(model)] + [_class_digest(c) for c in classes]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@functools.cache  # reading a class's source parses its whole module: once per class and process
def _class_digest(cls: type) -> str:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__.split(".")[0] != "peakmixer":
        return name
    return name + ":" + source_digest(inspect.getsource(cls))


def describe(spec: dict) -> str:
    """Short human name, e.g. ``ResPeak-160x6 + MLPMixer-4``."""
    ext = {"respeak": "ResPeak", "cnnpeak": "CNN-Peak"}[spec["extractor"]]
    if spec["extractor"] == "respeak":
        ext += f"-{spec['width']}x{spec['blocks'] if spec['blocks'] is not None else 6}"
    else:
        ext += f"-{spec['width']}"
    mixer = spec["mixer"]
    if mixer == "none":
        return ext
    if mixer == "mlp":
        return f"{ext} + MLP-{spec['mlp_layers']}"
    name = {"mlpmixer": "MLPMixer", "transformer": "Transformer"}[mixer]
    return f"{ext} + {name}-{spec['mixer_layers']}"


__all__ = [
    "EXTRACTORS",
    "MIXERS",
    "PeakModel",
    "build_model",
    "code_fingerprint",
    "count_params",
    "describe",
    "profile_model",
]
