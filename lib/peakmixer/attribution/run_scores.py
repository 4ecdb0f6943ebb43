"""A trained run's attribution scores on its test spectra: one row per (spectrum, class) pair and map, the
class ownership of the interpretable path's channels, and the summary a results-store row keeps.

    scores = score_model(model, X, y, masks, task, RunScoring(n_spectra=50))
    scores.pairs, scores.channels, scores.summary      # score_run(...) == scores.summary

Maps per pair: Grad-CAM through all channels and, with an interpretable path, through the class's own
channels (``specific``) and through the rest (``complement``), under two ownership rules: ``argmax`` (the
paper's: a channel belongs to the class with its largest weight, so a class may own none; such a pair is
not scored under that rule and is counted: ``owned`` is False) and ``topk`` (the C_ip // K channels with the
class's largest weights: every class owns some).

Scores per map (a flat map, or a class without channels, scores NaN and is counted):
- captum's infidelity, the paper's column, and its parts on the same perturbations I. With
  ``normalize=True`` captum fits the map's best scale, so infidelity = E[Δf²] − E[Iᵀa·Δf]² / E[(Iᵀa)²]
  = E[Δf²]·(1 − ρ²), where Δf = f(x) − f(x − I) and ρ is the (uncentred) correlation of the map's predicted
  change Iᵀa with Δf. E[Δf²] (``delta_f2``) is how much the model's logit moves under the noise, whatever
  the map: a model that moves less scores a lower infidelity with any map. ``infidelity_share`` =
  infidelity / E[Δf²] = 1 − ρ² is the part that measures the map (0: it predicts the logit's changes
  exactly; 1: not at all); ``rho`` is ρ with its sign.
- captum's sensitivity_max.
- Against the true bands (synthetic data): relevance mass accuracy, rank accuracy and the pointing game,
  and beside them chance: ``mask_fraction``, the share of the axis inside the bands (a uniform map's mass
  accuracy; a random ranking's expected rank accuracy and pointing game), and the scores of a random map
  (uniform noise, one per pair, seeded): ``*_random``, with its infidelity share ``infidelity_share_random``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from captum.metrics import infidelity
from torch import nn

from peakmixer.attribution.gradcam import (
    GROUND_TRUTH_SCORES,
    CamSettings,
    ScoreSettings,
    channel_mask,
    eval_mode,
    grad_cam,
    pathway,
    sensitivity_scores,
)
from peakmixer.config import ConfigError
from peakmixer.ip import IPModel, channel_ownership

# Bump when the CAM or score code changes the numbers it stores (the run identity of the scores).
SCORES_VERSION = 5

RULES: tuple[str, ...] = ("argmax", "topk")
FIDELITY = ("infidelity", "delta_f2", "infidelity_share", "rho")


@dataclass(frozen=True)
class RunScoring:
    """How a sweep scores a trained model's explanations on its test split."""

    n_spectra: int = 100  # the first test spectra, each with its positive (multilabel) or true class
    layer: str = "stem"
    rule: Literal["argmax", "topk"] = "argmax"  # the rule of the summary's paper columns (Table 1)
    score: ScoreSettings = ScoreSettings()


def scores_identity(scoring: RunScoring, config_id: str) -> str:
    """The identity of a run's stored scores: how they were made, the score code's version and the run."""
    blob = json.dumps([asdict(scoring), SCORES_VERSION, config_id], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def explained_pairs(
    X: torch.Tensor, y: torch.Tensor, task: str, n_spectra: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(spectra, classes, row of each) for the first `n_spectra` spectra: one pair per positive label
    (multilabel) or the true class (multiclass)."""
    rows, classes = [], []
    for i in range(min(n_spectra, len(X))):
        ks = torch.nonzero(y[i]).flatten().tolist() if task == "multilabel" else [int(y[i])]
        rows += [i] * len(ks)
        classes += ks
    idx = np.asarray(rows, dtype=np.int64)
    return X[idx], torch.as_tensor(classes, dtype=torch.long), idx


class _Recorded:
    """A pathway's forward that keeps what captum feeds it and gets back: the logits of the spectra and of the
    perturbed spectra, so the parts of infidelity need no forward of their own."""

    def __init__(self, forward) -> None:
        self.forward = forward
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        self.calls.append((x.detach(), out.detach().float()))
        return out

    def split(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits of `clean`, logits of every other input, in call order)."""
        same = [torch.equal(x, clean) for x, _ in self.calls]
        first = same.index(True)
        rest = [out for (_, out), s in zip(self.calls, same, strict=True) if not s]
        return self.calls[first][1], torch.cat(rest)


def _share_and_rho(predicted: torch.Tensor, moved: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 − ρ², ρ) per row of the map's predicted changes and the logit's changes (B, n)."""
    rho = (predicted * moved).mean(1) / ((predicted**2).mean(1) * (moved**2).mean(1)).sqrt()
    return 1 - rho**2, rho


def fidelity_terms(
    model: nn.Module,
    x: torch.Tensor,
    classes: torch.Tensor,
    cams: torch.Tensor,
    cam: CamSettings,
    score: ScoreSettings,
    random_maps: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Per pair (B,): captum's infidelity of `cams` (B, 1, L) for ``classes[i]`` through the channel subset's
    pathway, and on the same Gaussian perturbations E[Δf²], the share infidelity / E[Δf²] and ρ; with
    `random_maps`, their share on the same perturbations too (``infidelity_share_random``)."""
    if not score.normalize:  # without the fitted scale, infidelity is not E[Δf²](1 − ρ²): no share to give
        raise ConfigError("scores: infidelity is scored with normalize: true (the map's best scale fitted)")
    out = {key: np.full(len(x), np.nan) for key in (*FIDELITY, "infidelity_share_random")}
    if len(x) == 0:
        return out
    n = score.n_perturb_samples
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(score.seed)
        noise = torch.randn((len(x), n, *x.shape[1:]), dtype=x.dtype, device=x.device) * score.noise_sd
    targets = classes.tolist()
    with eval_mode(model):
        for k in sorted(set(targets)):
            rows = [i for i, t in enumerate(targets) if t == k]
            xs, a = x[rows], cams[rows].to(x.dtype)
            draws = noise[rows].reshape(len(rows) * n, *x.shape[1:])  # captum's order: repeat_interleave
            fwd = _Recorded(pathway(model, channel_mask(model, k, cam.channels, cam.rule)))
            value = infidelity(
                fwd,
                lambda inputs, d=draws: (d, inputs - d),
                xs,
                a,
                target=k,
                n_perturb_samples=n,
                normalize=True,
            )
            before, after = fwd.split(xs)
            moved = before[:, k, None] - after[:, k].view(len(rows), n)
            flat_draws = draws.view(len(rows), n, -1).float()
            predicted = (flat_draws * a.reshape(len(rows), 1, -1).float()).sum(-1)
            _, rho = _share_and_rho(predicted, moved)
            d2 = (moved**2).mean(1).cpu().numpy()
            value = value.detach().float().cpu().numpy()
            out["infidelity"][rows] = value
            out["delta_f2"][rows] = d2
            out["infidelity_share"][rows] = value / d2
            out["rho"][rows] = rho.cpu().numpy()
            if random_maps is not None:
                guess = (flat_draws * random_maps[rows].reshape(len(rows), 1, -1).float()).sum(-1)
                out["infidelity_share_random"][rows] = _share_and_rho(guess, moved)[0].cpu().numpy()
    return out


def maps_of(model: nn.Module) -> list[tuple[str, str]]:
    """(channel subset, ownership rule) of every map a model is scored with ("" for all channels)."""
    if not isinstance(model, IPModel):
        return [("all", "")]
    return [("all", "")] + [(subset, rule) for rule in RULES for subset in ("specific", "complement")]


def _owns(model: nn.Module, k: int, subset: str, rule: str) -> bool:
    """Whether class k has any channel in `subset` (always, for all channels)."""
    mask = channel_mask(model, k, subset, rule)
    return mask is None or bool(mask.sum() > 0)


def score_pairs(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    masks: np.ndarray | None,
    task: str,
    scoring: RunScoring,
    maps: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per explained (spectrum, class) pair and map (`maps_of`, or those of `maps` alone), with
    every score and its chance level (see the module's docstring); `masks` (K, L) are the true bands, or
    None (no ground truth)."""
    x, k, rows = explained_pairs(X, y, task, scoring.n_spectra)
    noise = torch.rand((len(x), 1, x.shape[-1]), generator=torch.Generator().manual_seed(scoring.score.seed))
    base: dict[str, np.ndarray] = {"pair": np.arange(len(x)), "spectrum": rows, "class": k.numpy()}
    s = None
    if masks is not None:
        s = np.asarray(masks, bool)[k.numpy()]
        base["mask_fraction"] = s.mean(1)
        for name, fn in GROUND_TRUTH_SCORES.items():
            base[f"{name}_random"] = fn(noise[:, 0].numpy(), s)
    with warnings.catch_warnings():  # a flat map is counted (``flat``), not warned about map by map
        warnings.simplefilter("ignore")
        frames = [
            _score_map(model, x, k, s, noise, base, subset, rule, scoring)
            for subset, rule in (maps or maps_of(model))
        ]
    return pd.concat(frames, ignore_index=True)


def _score_map(
    model: nn.Module,
    x: torch.Tensor,
    k: torch.Tensor,
    s: np.ndarray | None,
    noise: torch.Tensor,
    base: dict[str, np.ndarray],
    subset: str,
    rule: str,
    scoring: RunScoring,
) -> pd.DataFrame:
    """`score_pairs`' rows of one map: (channel subset, rule)."""
    cam = CamSettings(channels=subset, layer=scoring.layer, rule=rule or "argmax")
    cams = grad_cam(model, x, k, cam)
    owned = np.array([_owns(model, int(c), subset, cam.rule) for c in k.tolist()], dtype=bool)
    flat = np.ptp(cams[:, 0].cpu().numpy(), axis=1) == 0
    usable = owned & ~flat
    frame = dict(base) | {"channels": subset, "rule": rule, "owned": owned, "flat": flat}
    if s is not None:
        for name, fn in GROUND_TRUTH_SCORES.items():
            frame[name] = np.where(usable, fn(cams[:, 0].cpu().numpy(), s), np.nan)
    idx = np.flatnonzero(usable)
    terms = fidelity_terms(model, x[idx], k[idx], cams[idx], cam, scoring.score, noise[idx].to(x.device))
    for key, values in terms.items():
        frame[key] = _placed(values, idx, len(x))
    # sensitivity (10 Grad-CAMs a pair) for the maps the claims compare: class-specific and all channels
    sens = []
    if len(idx) and subset != "complement":
        sens = sensitivity_scores(model, x[idx], k[idx], cam, scoring.score).numpy()
    frame["sensitivity"] = _placed(np.asarray(sens, float), idx if len(sens) else idx[:0], len(x))
    return pd.DataFrame(frame)


def _placed(values: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[idx] = values
    return out


# The columns `summarise` fills (a store row keeps them): the paper's rule (argmax) under the old names.
SCORE_COLUMNS = (
    "scored_pairs",
    "degenerate_pairs",
    *(f"{name}_{subset}" for name in GROUND_TRUTH_SCORES for subset in ("all", "specific", "complement")),
    "infidelity_mean",
    "infidelity_sd",
    "sensitivity_mean",
    "sensitivity_sd",
    "infidelity_median",
    "sensitivity_median",
    "delta_f2_mean",
    "infidelity_share_mean",
    "infidelity_share_median",
    "rho_mean",
    "infidelity_share_random_mean",
    "mask_fraction",
    *(f"{name}_random" for name in GROUND_TRUTH_SCORES),
    "classes_without_channels",
    "degenerate_pairs_topk",
    *(f"{name}_specific_topk" for name in GROUND_TRUTH_SCORES),
    "infidelity_share_topk_mean",
)


def _mean(frame: pd.DataFrame, col: str, how: str = "mean") -> float:
    """`how` (mean, median, std) of a column over the pairs that have it; NaN where too few."""
    v = frame[col].dropna().astype(float) if col in frame else pd.Series(dtype=float)
    return float(getattr(v, how)()) if len(v) > (1 if how == "std" else 0) else np.nan


def _unscored(frame: pd.DataFrame) -> float:
    """Pairs of a map left out: the class owns no channel there, or the map is flat."""
    return float((~frame["owned"].astype(bool) | frame["flat"].astype(bool)).sum())


def _specific_summary(specific: pd.DataFrame, other: pd.DataFrame, other_rule: str) -> dict[str, float]:
    """The class-specific map's columns: the paper's (infidelity, sensitivity), their medians, the
    scale-free share and ρ, the random map's share, and the other rule's share and pairs left out."""
    out = {"degenerate_pairs": _unscored(specific)}
    for col in ("infidelity", "sensitivity"):
        out |= {f"{col}_mean": _mean(specific, col), f"{col}_sd": _mean(specific, col, "std")}
    for col in ("infidelity", "sensitivity", "infidelity_share"):
        out[f"{col}_median"] = _mean(specific, col, "median")
    for col in ("delta_f2", "infidelity_share", "rho", "infidelity_share_random"):
        out[f"{col}_mean"] = _mean(specific, col)
    if other.empty:  # scored under one rule only (a spot check)
        return out
    out[f"degenerate_pairs_{other_rule}"] = _unscored(other)
    out[f"infidelity_share_{other_rule}_mean"] = _mean(other, "infidelity_share")
    out |= {
        f"{name}_specific_{other_rule}": _mean(other, name) for name in GROUND_TRUTH_SCORES if name in other
    }
    return out


def summarise(
    pairs: pd.DataFrame, channels: pd.DataFrame | None = None, rule: str = "argmax"
) -> dict[str, float]:
    """A run's summary of `score_pairs`' rows: means over the scored pairs of each map (NaN where none),
    with the class-specific map under `rule` in the paper's columns (infidelity, sensitivity). A map not
    scored at all (`score_pairs(maps=...)`) has no columns here."""
    if pairs.empty:
        return {"scored_pairs": 0.0}
    out: dict[str, float] = {"scored_pairs": float(pairs["pair"].nunique())}
    maps = {"all": pairs[pairs["channels"] == "all"]}
    chance = ("mask_fraction", *(f"{name}_random" for name in GROUND_TRUTH_SCORES))
    out |= {col: _mean(maps["all"], col) for col in chance if col in pairs and not maps["all"].empty}
    if (pairs["channels"] != "all").any():
        for subset in ("specific", "complement"):
            maps[subset] = pairs[(pairs["channels"] == subset) & (pairs["rule"] == rule)]
        other = next(r for r in RULES if r != rule)
        out |= _specific_summary(
            maps["specific"], pairs[(pairs["channels"] == "specific") & (pairs["rule"] == other)], other
        )
    if channels is not None and not channels.empty:
        out["classes_without_channels"] = float((channels[f"channels_{rule}"] == 0).sum())
    for subset, frame in maps.items():
        if not frame.empty:
            out |= {f"{name}_{subset}": _mean(frame, name) for name in GROUND_TRUTH_SCORES if name in frame}
    return out


@dataclass
class RunScores:
    """A run's scores: per pair and map, the channels each class owns (IP models), and the summary."""

    pairs: pd.DataFrame
    channels: pd.DataFrame
    summary: dict[str, float]


def score_model(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    masks: np.ndarray | None,
    task: str,
    scoring: RunScoring,
    maps: Sequence[tuple[str, str]] | None = None,
) -> RunScores:
    """`score_pairs` (every map, or `maps`), the channel ownership of an IP model and their `summarise`."""
    pairs = score_pairs(model, X, y, masks, task, scoring, maps)
    channels = pd.DataFrame(channel_ownership(model) if isinstance(model, IPModel) else [])
    return RunScores(pairs, channels, summarise(pairs, channels, scoring.rule))


def score_run(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    masks: np.ndarray | None,
    task: str,
    scoring: RunScoring,
) -> dict[str, float]:
    """The summary of `score_model`: what a results-store row keeps."""
    return score_model(model, X, y, masks, task, scoring).summary


__all__ = [
    "FIDELITY",
    "RULES",
    "SCORES_VERSION",
    "SCORE_COLUMNS",
    "RunScores",
    "RunScoring",
    "explained_pairs",
    "fidelity_terms",
    "maps_of",
    "score_model",
    "score_pairs",
    "score_run",
    "scores_identity",
    "summarise",
]
