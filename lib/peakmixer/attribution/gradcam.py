"""Grad-CAM by channel subset, and attribution scores: captum's infidelity / sensitivity and the true bands.

    cams = grad_cam(model, x, classes=[3], channels="specific")   # (B, 1, L) on the input axis
    grad_cam(model, x, [3], channels="complement", layer="extractor", relu=False)

Channel subsets act where the interpretable path defines them: the IP map (B, C_ip, L') is masked to the
class's own channels (`ip.class_channels`) or to the rest before the shared head, as for pred_2 / pred_3, and
Grad-CAM of the class *logit* through that masked pathway is taken at `layer`: ``stem`` (the first conv
block, half the input resolution; the paper's script hooked the first conv), ``extractor`` (its output),
``features`` (the map the head pools) or any module name. A (B, C, L) layer output is reduced over C, the
channel axis, and linearly interpolated to the input length. Every result carries its settings.

Scores of an attribution a (B, 1, L) for class k:
- `infidelity`: captum's E[(Iᵀa − (f(x) − f(x − I)))²] over Gaussian perturbations I, with the attribution's
  best scale fitted (``normalize``): that removes the map's scale, not the model's
  (`run_scores.fidelity_terms` computes it, with its parts, and says why);
- `sensitivity`: captum's max ‖a(x + δ) − a(x)‖ over uniform δ in an L∞ ball;
- against a true band mask s (synthetic data only): relevance mass accuracy (share of positive attribution
  inside s), relevance rank accuracy (share of the |s| highest points inside s) and the pointing game (is the
  maximum inside s), as Quantus defines them (a test checks that).

A trained run's scores over its test pairs, their chance levels and the scale-free share of infidelity are
in `peakmixer.attribution.run_scores`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from captum.metrics import sensitivity_max
from torch import nn

from peakmixer.ip import IPModel, class_channels

Channels = Literal["all", "specific", "complement"]
CHANNEL_SUBSETS: tuple[Channels, ...] = ("all", "specific", "complement")


@dataclass(frozen=True)
class CamSettings:
    """How a Grad-CAM was made; recorded beside every result."""

    channels: Channels = "all"
    layer: str = "stem"
    rule: Literal["argmax", "topk"] = "argmax"  # how class channels are read from the matrix
    relu: bool = True  # keep only evidence for the class (Grad-CAM's ReLU)
    normalize: Literal["max", "none"] = "max"  # per spectrum: divide by the largest |value|


def cam_layer(model: nn.Module, layer: str) -> nn.Module:
    """The module whose output Grad-CAM weighs: ``stem``, ``extractor``, ``features`` or a module name."""
    if layer == "stem":
        stem = model.extractor.stem
        return stem[0] if isinstance(stem[0], nn.Sequential) else stem  # CNN-Peak has two stem blocks
    if layer == "extractor":
        return model.extractor
    if layer == "features":
        return model.ip_conv if isinstance(model, IPModel) else model.mixer
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"no layer {layer!r}: use stem, extractor, features or a module name") from None


def channel_mask(model: nn.Module, k: int, channels: Channels, rule: str = "argmax") -> torch.Tensor | None:
    """(C_ip,) 0/1 mask of the IP map for class k's subset, or None for all channels."""
    if channels == "all":
        return None
    if not isinstance(model, IPModel):
        raise ValueError(f"channels={channels!r} needs a model with an interpretable path")
    own, rest = class_channels(model, k, rule=rule)
    keep = own if channels == "specific" else rest
    mask = torch.zeros(model.head.fc.in_features, device=model.head.fc.weight.device)
    mask[keep] = 1.0
    return mask


def pathway(model: nn.Module, mask: torch.Tensor | None):
    """x -> logits through the masked pathway (the plain forward for all channels)."""
    if mask is None:
        return model
    return lambda x: model.forward_head(model.forward_features(x), mask)


@contextmanager
def eval_mode(model: nn.Module):
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def layer_cam(model: nn.Module, x: torch.Tensor, k: int, settings: CamSettings) -> torch.Tensor:
    """Grad-CAM (B, 1, L_layer) of class k at the layer's own resolution: the channel-wise weights (mean
    gradient over positions) times the activations, summed over channels; ReLU if asked."""
    mask = channel_mask(model, k, settings.channels, settings.rule)
    layer = cam_layer(model, settings.layer)
    return LayerGradCam(pathway(model, mask), layer).attribute(x, target=k, relu_attributions=settings.relu)


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    classes: Sequence[int] | torch.Tensor,
    settings: CamSettings | None = None,
    **options,
) -> torch.Tensor:
    """Grad-CAM maps (B, 1, L) on the input axis, spectrum i explained for class ``classes[i]``.

    `classes` is one class per spectrum (or one int for all); `settings` (or its fields as keywords) choose
    the channel subset, layer, rule, ReLU and normalisation. The model is used in eval mode.
    """
    settings = settings or CamSettings(**options)
    if x.dim() == 2:
        x = x.unsqueeze(1)
    targets = torch.as_tensor(classes, device=x.device).reshape(-1).expand(len(x)).tolist()
    out = torch.zeros(x.shape[0], 1, x.shape[-1], device=x.device)
    with eval_mode(model):
        for k in sorted(set(targets)):
            rows = torch.tensor([i for i, t in enumerate(targets) if t == k], device=x.device)
            cam = layer_cam(model, x[rows], k, settings)
            out[rows] = LayerAttribution.interpolate(cam, (x.shape[-1],), interpolate_mode="linear").float()
    peak = out.abs().amax(dim=-1)
    if zero := int((peak == 0).sum()):
        warnings.warn(
            f"Grad-CAM is zero everywhere for {zero} of {len(x)} spectra ({settings.channels} channels, "
            f"layer {settings.layer}): nothing at this layer supports the class (an untrained model, or "
            "channels that do not respond to it)",
            stacklevel=2,
        )
    if settings.normalize == "max":
        out = out / peak.unsqueeze(-1).clamp_min(1e-12)
    return out.detach()


def subsets_of(model: nn.Module) -> tuple[Channels, ...]:
    """The channel subsets a model can be explained with: all three with an interpretable path."""
    return CHANNEL_SUBSETS if isinstance(model, IPModel) else ("all",)


def cams_for(
    model: nn.Module,
    X: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    subsets: Sequence[Channels] | None = None,
    layer: str = "stem",
    rule: Literal["argmax", "topk"] = "argmax",
) -> dict[tuple[int, int, str], np.ndarray]:
    """Grad-CAM maps (L,) of (spectrum i of X, class k) pairs per channel subset, keyed (i, k, subset)."""
    idx = torch.tensor([i for i, _ in pairs], dtype=torch.long)
    classes = [k for _, k in pairs]
    out = {}
    for subset in subsets or subsets_of(model):
        maps = grad_cam(model, X[idx], classes, CamSettings(channels=subset, layer=layer, rule=rule))
        for (i, k), m in zip(pairs, maps[:, 0].cpu().numpy(), strict=True):
            out[(i, k, subset)] = m
    return out


def mean_class_cams(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    task: str,
    *,
    channels: Channels = "specific",
    layer: str = "stem",
    per_class: int = 40,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per class k: the mean spectrum and the mean Grad-CAM for k of (up to `per_class`) spectra that
    carry k (multilabel) or are of class k (multiclass)."""
    channels = channels if channels in subsets_of(model) else "all"
    K = y.shape[1] if task == "multilabel" else int(y.max()) + 1
    spectra, cams = {}, {}
    for k in range(K):
        members = torch.nonzero(y[:, k] > 0 if task == "multilabel" else y == k).flatten()[:per_class]
        if len(members) == 0:
            continue
        maps = grad_cam(model, X[members], k, CamSettings(channels=channels, layer=layer))
        spectra[k] = X[members, 0].mean(0).cpu().numpy()
        cams[k] = maps[:, 0].mean(0).cpu().numpy()
    return spectra, cams


# --- captum's infidelity and sensitivity ----------------------------------------------------------------


@dataclass(frozen=True)
class ScoreSettings:
    """Every setting of the attribution scores (Table 1); recorded with them."""

    noise_sd: float = 0.01  # infidelity: sd of the Gaussian perturbation, in spectrum units
    n_perturb_samples: int = 10  # captum's default, pinned
    normalize: bool = True  # infidelity with the optimal scale of the attribution (scale-free)
    sensitivity_radius: float = 0.02  # captum's default L∞ radius, pinned
    sensitivity_samples: int = 10
    seed: int = 0  # perturbations are drawn from this seed


def sensitivity_scores(
    model: nn.Module,
    x: torch.Tensor,
    classes: Sequence[int] | torch.Tensor,
    cam: CamSettings,
    score: ScoreSettings,
) -> torch.Tensor:
    """captum `sensitivity_max` (B,) of the Grad-CAM explanation for ``classes[i]``: the largest change of
    the (normalised) map under uniform perturbations within ``sensitivity_radius``."""
    targets = torch.as_tensor(classes, device=x.device).reshape(-1).expand(len(x)).tolist()
    out = torch.zeros(len(x))
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(score.seed)
        for k in sorted(set(targets)):
            rows = torch.tensor([i for i, t in enumerate(targets) if t == k])

            def explain(inputs: torch.Tensor | tuple[torch.Tensor], _k: int = k) -> tuple[torch.Tensor]:
                x_in = inputs[0] if isinstance(inputs, tuple) else inputs
                return (grad_cam(model, x_in, _k, cam),)  # captum iterates over the explanation: a tuple

            out[rows] = (
                sensitivity_max(
                    explain,
                    x[rows],
                    perturb_radius=score.sensitivity_radius,
                    n_perturb_samples=score.sensitivity_samples,
                )
                .float()
                .cpu()
            )
    return out


# --- against the true bands -------------------------------------------------------------------------------


def relevance_mass_accuracy(attr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) share of the positive attribution that lies inside the mask; NaN for an empty mask or a map
    with no positive attribution (it explains nothing: not a score of 0, nor of 1)."""
    a = np.clip(np.asarray(attr, float).reshape(len(attr), -1), 0, None)
    s = np.asarray(mask, bool).reshape(len(mask), -1)
    total = a.sum(1)
    out = np.divide((a * s).sum(1), total, out=np.full(len(a), np.nan), where=total > 0)
    out[s.sum(1) == 0] = np.nan
    return out


def relevance_rank_accuracy(attr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) share of the |mask| highest-attributed points that lie inside the mask; NaN for an empty mask
    or a constant map (its ranking would only say where the band happens to lie)."""
    a = np.asarray(attr, float).reshape(len(attr), -1)
    s = np.asarray(mask, bool).reshape(len(mask), -1)
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        n = int(s[i].sum())
        if n and np.ptp(a[i]) > 0:
            out[i] = s[i][np.argsort(-a[i], kind="stable")[:n]].mean()
    return out


def pointing_game(attr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) 1 where a maximum of the attribution lies inside the mask, else 0; NaN for an empty mask or a
    constant map (every point would be "the maximum")."""
    a = np.asarray(attr, float).reshape(len(attr), -1)
    s = np.asarray(mask, bool).reshape(len(mask), -1)
    hit = (s & (a == a.max(1, keepdims=True))).any(1).astype(float)
    hit[(s.sum(1) == 0) | (np.ptp(a, axis=1) == 0)] = np.nan
    return hit


GROUND_TRUTH_SCORES = {
    "mass_accuracy": relevance_mass_accuracy,
    "rank_accuracy": relevance_rank_accuracy,
    "pointing_game": pointing_game,
}


def settings_record(cam: CamSettings, score: ScoreSettings | None = None) -> dict:
    """The settings as a flat dict for sidecars and tables."""
    return {**{f"cam_{k}": v for k, v in asdict(cam).items()}, **asdict(score or ScoreSettings())}


__all__ = [
    "CHANNEL_SUBSETS",
    "CamSettings",
    "ScoreSettings",
    "cam_layer",
    "cams_for",
    "mean_class_cams",
    "subsets_of",
    "channel_mask",
    "grad_cam",
    "layer_cam",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "sensitivity_scores",
]
