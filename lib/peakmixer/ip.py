"""The interpretable path (IP): a learnt class x channel correlation matrix that ties channels to classes.

A multi-label port of PICNN (Guo et al., AAAI 2024) as the paper uses it, and a multi-class form (bacteria):

    spectrum (B,1,L) -> extractor -> mixer -> extra Conv1d (C -> C_ip) -> F (B, C_ip, L')
    pred_1 = head(F)               head = mean over positions -> Linear(C_ip, K), shared by all paths
    pred_2 = head(F * m)           m ~ Bernoulli(s @ P), s ~ the model's own prediction (straight-through)
    pred_3 = head(F * (1 - m_c))   m_c: channels of the sample's true classes (the complement)

P = softmax over classes of the K x C_ip correlation matrix (each channel's weights over classes sum to 1).
Training minimises L(pred_1) + weight * L(pred_2 on the entries whose sampled class was right), which makes
a class's own channels sufficient for its prediction. Modes: ``trainable`` (the matrix is a parameter),
``frozen`` (random at initialisation, a buffer, never updated: the paper's "untrainable"), ``redrawn``
(`RedrawnIPModel`: random and drawn afresh for every training batch, as the authors' code does) and ``off``
(no path: `build_model` returns the ordinary model). Without targets the model returns pred_1 and samples
nothing, so inference, evaluation and profiling see an ordinary classifier.

Fixed relative to the authors' code: the complement masks the rows of the positive classes (upstream
indexed the matrix with the 0/1 target, i.e. rows 0 and 1), the matrix is drawn once (not every forward),
the interpretation term is on by default (weight 1), the heads take logits (no sigmoid + BCE), and the
multi-class form exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from peakmixer.architecture import IP_MODES
from peakmixer.config import ConfigError
from peakmixer.models import PeakModel, PoolHead

IPMode = Literal["off", "trainable", "frozen", "redrawn"]


@dataclass
class IPOutput:
    """What the model returns with targets: the three pathways' logits and where pred_2 counts."""

    pred_1: torch.Tensor  # (B, K) all channels
    pred_2: torch.Tensor  # (B, K) class-specific channels of the sampled classes
    pred_3: torch.Tensor  # (B, K) complementary channels (those of the true classes removed)
    correct: torch.Tensor  # (B, K) bool (multilabel) or (B,) bool (multiclass): the sample was right


class IPModel(nn.Module):
    """Extractor + mixer + the interpretable path. ``forward(x) -> (B, K)`` logits (pred_1);
    ``forward(x, y) -> IPOutput`` (sampling; for training and pathway metrics).

    Args:
        extractor, mixer: the backbone's parts (a `PeakModel`'s), giving an unpooled (B, C, L') map.
        channels: C_ip, the channels of the extra conv and of the matrix (a class needs several).
        n_classes: K.
        task: ``multilabel`` (Bernoulli class sampling) or ``multiclass`` (one categorical class).
        mode: ``trainable`` or ``frozen``.
        spec: the `build_model` arguments, so a checkpoint can rebuild the model.
    """

    def __init__(
        self,
        extractor: nn.Module,
        mixer: nn.Module,
        *,
        in_channels: int,
        channels: int,
        n_classes: int,
        task: Literal["multilabel", "multiclass"],
        mode: Literal["trainable", "frozen"],
        input_length: int,
        spec: dict,
    ) -> None:
        super().__init__()
        if mode not in ("trainable", "frozen"):
            raise ValueError(f"IPModel mode must be trainable or frozen, got {mode!r}")
        self.extractor = extractor
        self.mixer = mixer
        self.ip_conv = nn.Conv1d(in_channels, channels, 3, padding=1)  # the figure's "extra conv layer"
        self.head = PoolHead(channels, n_classes)
        self.task = task
        self.mode = mode
        self.input_length = input_length
        self.spec = spec
        correlation = torch.rand(n_classes, channels)  # P = softmax over classes: ~1/K each at first
        if mode == "trainable":
            self.correlation = nn.Parameter(correlation)
        else:
            self.register_buffer("correlation", correlation)

    def extra_repr(self) -> str:
        return f"task={self.task}, mode={self.mode}, input_length={self.input_length}"

    @property
    def n_classes(self) -> int:
        return self.spec["n_classes"]

    def channel_weights(self) -> torch.Tensor:
        """P (K, C_ip): each channel's weights over the classes (columns sum to 1)."""
        return torch.softmax(self.correlation.float(), dim=0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) or (B, 1, L) spectra -> (B, C_ip, L'), the map the channel masks act on."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[-1] != self.input_length:
            raise ValueError(f"expected spectra of shape (B, 1, {self.input_length}), got {tuple(x.shape)}")
        return self.ip_conv(self.mixer(self.extractor(x)))

    def forward_head(self, features: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C_ip, L') -> (B, K) logits; `channel_mask` ((C_ip,) or (B, C_ip)) keeps a channel subset."""
        if channel_mask is not None:
            features = features * channel_mask.to(features.dtype).reshape(-1, features.shape[1], 1)
        return self.head(features)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor | IPOutput:
        features = self.forward_features(x)
        pred_1 = self.forward_head(features)
        if y is None:
            return pred_1
        P = self.channel_weights()
        if self.task == "multilabel":
            p = torch.sigmoid(pred_1.float())
            s = torch.bernoulli(p.detach(), generator=generator)
            correct = s == y
            s_hat = p + (s - p).detach()  # straight-through: the value of s, the gradient of p
            true_rows = y.float()
        else:
            p = torch.softmax(pred_1.float(), dim=1)
            cls = torch.multinomial(p.detach(), 1, generator=generator).squeeze(1)
            s = F.one_hot(cls, p.shape[1]).float()
            correct = cls == y
            s_hat = p + (s - p).detach()
            true_rows = F.one_hot(y, p.shape[1]).float()
        q = (s_hat @ P).clamp(0, 1)  # (B, C_ip) keep-probability of each channel
        m = torch.bernoulli(q.detach(), generator=generator)
        pred_2 = self.forward_head(features, q + (m - q).detach())
        with torch.no_grad():  # the complement only reports; it never trains
            own = torch.bernoulli((true_rows[:, :, None] * P[None]).clamp(0, 1), generator=generator)
            pred_3 = self.forward_head(features, 1.0 - own.amax(dim=1))
        return IPOutput(pred_1, pred_2, pred_3, correct)

    def reset_head(self, n_classes: int) -> None:
        """A fresh head and correlation matrix for `n_classes` (fine-tuning to another label set)."""
        fc = self.head.fc
        self.head.fc = nn.Linear(fc.in_features, n_classes).to(fc.weight.device)
        fresh = torch.rand(n_classes, fc.in_features, device=fc.weight.device)
        if self.mode == "trainable":
            self.correlation = nn.Parameter(fresh)
        else:
            self.correlation = fresh
        self.spec = {**self.spec, "n_classes": n_classes}


class RedrawnIPModel(IPModel):
    """The authors' untrainable path: the matrix is random and drawn afresh for every training batch, so no
    channel is ever tied to a class. Out of training (evaluation, Grad-CAM) it keeps the last matrix drawn,
    which the checkpoint holds: channels read from it are as arbitrary as the training saw them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "mode": "frozen"})
        self.mode = "redrawn"

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor | IPOutput:
        if y is not None and self.training:
            fresh = torch.rand(self.correlation.shape, generator=generator, device=self.correlation.device)
            self.correlation.copy_(fresh)
        return super().forward(x, y, generator=generator)


def attach_ip(
    model: PeakModel,
    *,
    mode: IPMode,
    task: Literal["multilabel", "multiclass"],
    channels: int = 0,
) -> PeakModel | IPModel:
    """`model` with an interpretable path (its own head is replaced by the IP's shared GAP + FC head), or
    `model` itself for mode ``off``. `channels` = C_ip (0: the backbone's width, as upstream)."""
    if mode == "off":
        return model
    if mode not in IP_MODES:
        raise ConfigError(f"unknown interpretable-path mode {mode!r}; choose from {IP_MODES}")
    width = model.extractor.out_channels
    c_ip = channels or width
    spec = {**model.spec, "ip": {"mode": mode, "task": task, "channels": c_ip}}
    cls = RedrawnIPModel if mode == "redrawn" else IPModel
    return cls(
        model.extractor,
        model.mixer,
        in_channels=width,
        channels=c_ip,
        n_classes=model.n_classes,
        task=task,
        mode=mode,
        input_length=model.input_length,
        spec=spec,
    )


def ip_loss(out: IPOutput, y: torch.Tensor, task: str, weight: float) -> torch.Tensor:
    """L(pred_1, y) + weight * L(pred_2, y) over the entries (multilabel) or samples (multiclass) whose
    sampled class was right; the second term is 0 when there are none. In fp32, from logits."""
    p1, p2 = out.pred_1.float(), out.pred_2.float()
    if task == "multilabel":
        main = F.binary_cross_entropy_with_logits(p1, y)
        keep = out.correct
        extra = F.binary_cross_entropy_with_logits(p2[keep], y[keep]) if keep.any() else p2.sum() * 0
    else:
        main = F.cross_entropy(p1, y)
        keep = out.correct
        extra = F.cross_entropy(p2[keep], y[keep]) if keep.any() else p2.sum() * 0
    return main + weight * extra


def class_channels(
    model: IPModel, k: int, rule: Literal["argmax", "topk"] = "argmax", n: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class k's channels, the complement), as index tensors into the C_ip channels of the IP map.

    ``argmax``: the channels whose largest weight is class k's (a partition over classes; a class may own
    none). ``topk``: the `n` channels with the largest weight for class k (default C_ip // K, at least 1).
    """
    if not isinstance(model, IPModel):
        raise TypeError("class-specific channels need a model with an interpretable path (model.ip.mode)")
    P = model.channel_weights().detach()
    K, C = P.shape
    if not 0 <= k < K:
        raise IndexError(f"class {k} out of range for {K} classes")
    if rule == "argmax":
        own = P.argmax(dim=0) == k
    elif rule == "topk":
        own = torch.zeros(C, dtype=torch.bool, device=P.device)
        own[P[k].topk(n or max(1, C // K)).indices] = True
    else:
        raise ValueError(f"unknown rule {rule!r}; choose argmax or topk")
    idx = torch.arange(C, device=P.device)
    return idx[own], idx[~own]


def channel_ownership(model: IPModel, topk: int = 0) -> list[dict[str, float]]:
    """Per class: how many channels it owns under the argmax rule (0 for a class the rule leaves without
    any) and under the top-k rule (`topk`, default C_ip // K), and its largest weight in the matrix."""
    P = model.channel_weights().detach().cpu()
    K, C = P.shape
    n = topk or max(1, C // K)
    owners = P.argmax(dim=0)
    return [
        {
            "class": k,
            "channels_argmax": int((owners == k).sum()),
            "channels_topk": n,
            "largest_weight": float(P[k].max()),
        }
        for k in range(K)
    ]


@torch.no_grad()
def pathway_metrics(
    model: IPModel,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    task: str,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """PICNN's pathway scores on a split: the main metric of pred_1 (all channels), pred_2 (the sampled
    classes' channels) and pred_3 (the true classes' channels removed), with seeded sampling."""
    from peakmixer.metrics import compute_metrics, main_metric

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    outs: dict[str, list[torch.Tensor]] = {"pred_1": [], "pred_2": [], "pred_3": []}
    for i in range(0, len(X), batch_size):
        out = model(X[i : i + batch_size].to(device), y[i : i + batch_size].to(device), generator=gen)
        for name in outs:
            outs[name].append(getattr(out, name).float().cpu())
    model.train(was_training)
    metric = main_metric(task)
    return {name: compute_metrics(task, y.numpy(), torch.cat(v).numpy())[metric] for name, v in outs.items()}


__all__ = [
    "IPModel",
    "IPOutput",
    "IP_MODES",
    "RedrawnIPModel",
    "attach_ip",
    "channel_ownership",
    "class_channels",
    "ip_loss",
    "pathway_metrics",
]
