"""Summaries over seeds and the paper's claims (Fig. 1): Welch intervals, a verdict per claim in words, and
the bottleneck table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from peakmixer.data.dataset import load
from peakmixer.metrics import main_metric
from peakmixer.studies.outcomes import paired_bootstrap
from peakmixer.studies.store import METRIC_COLUMNS
from peakmixer.studies.sweep import SweepConfig, dataset_path, plan, stage_configs
from peakmixer.train.checkpoint import build_from_config
from peakmixer.train.prepare import label_space

# The studies behind Fig. 1, in the order their tables are read.


# --- summaries and the paper's claims -------------------------------------------------------------------

SUMMARY_KEYS = ["dataset", "task", "extractor", "width", "blocks", "mixer", "mixer_layers"]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per model: `<metric>_mean`, `<metric>_sd`, gmacs, params, n_seeds, synthetic."""
    metrics = [
        m
        for m in (*METRIC_COLUMNS, "all_negative_hamming_accuracy", "best_val")
        if m in table and table[m].notna().any()
    ]
    keys = SUMMARY_KEYS + (["ip_mode"] if "ip_mode" in table and table["ip_mode"].nunique() > 1 else [])
    g = table.groupby(keys, sort=False)
    out = g.agg(params=("params", "first"), macs=("macs", "first"), n_seeds=("seed", "nunique")).reset_index()
    if "synthetic" in table:
        out["synthetic"] = g["synthetic"].first().astype(bool).values
    for m in metrics:
        out[f"{m}_mean"] = g[m].mean().values
        out[f"{m}_sd"] = g[m].std(ddof=1).values
    out["gmacs"] = out["macs"] / 1e9
    return out


def study_facts(studies: Mapping[str, SweepConfig]) -> dict[str, dict[str, Any]]:
    """Per dataset of the studies: its class count, whether it is synthetic, and the extractor's output
    positions (tokens) at each width's input length — what the pooled-head check needs."""
    facts: dict[str, dict[str, Any]] = {}
    for cfg in studies.values():
        for ds in cfg.datasets:
            if ds.name in facts:
                continue
            data = load(dataset_path(cfg, ds))
            run = plan(SweepConfig(datasets=[ds], widths=cfg.widths[:1], mixers=["none"], seeds=[0]))[0]
            _, tc = stage_configs(cfg, run, "")
            with torch.device("meta"):
                model = build_from_config(tc, len(label_space(data, tc)[1]), data.task)
            facts[ds.name] = {
                "classes": len(label_space(data, tc)[1]),
                "synthetic": bool(data.provenance.get("synthetic")),
                "tokens": int(model.extractor.out_length),
            }
    return facts


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean difference a − b and its Welch t interval (unequal variances); NaN bounds below 2 seeds each."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff, diff - half, diff + half


SUPPORTED, CONTRADICTED, NOT_RESOLVED = "supported", "contradicted", "not resolved at this sample size"
TEST = (
    "Test: per claim, the mean difference of the main metric over seeds with a two-sided 95% Welch t "
    "interval (unequal variances; no correction across the claims); supported when the interval lies above "
    "0, contradicted below 0. Converged runs only (early stopping ended them). Beside it, where every run "
    "of both arms kept its outcome per test spectrum: a 95% paired bootstrap interval over the test spectra "
    "(the seeds' mean of each arm, both tested on every draw), which the seeds' interval leaves out."
)


def judge(a: np.ndarray, b: np.ndarray, better: str = "higher") -> tuple[float, float, float, str, str]:
    """Mean difference a − b, its Welch interval, one of `SUPPORTED` / `CONTRADICTED` / `NOT_RESOLVED` for
    "a is better" (`better`: "higher" or "lower" values), and the reason when no interval decides."""
    diff, lo, hi = welch_interval(a, b)
    gain_lo, gain_hi = (lo, hi) if better == "higher" else (-hi, -lo)
    if np.ptp(np.r_[a, b]) == 0:
        return diff, lo, hi, NOT_RESOLVED, "every run scored the same"
    if not np.isfinite(lo):
        return diff, lo, hi, NOT_RESOLVED, f"{min(len(a), len(b))} seed: no interval"
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # each arm's seeds agree exactly (a coarse metric): no spread
        return diff, lo, hi, NOT_RESOLVED, "no spread within either arm: no t interval"
    if gain_lo > 0:
        return diff, lo, hi, SUPPORTED, ""
    if gain_hi < 0:
        return diff, lo, hi, CONTRADICTED, ""
    return diff, lo, hi, NOT_RESOLVED, ""


CLAIMS = (
    ("none", "MLPMixer beats no mixer"),
    ("mlp", "MLPMixer beats the MLP mixer at the same width"),
    ("transformer", "MLPMixer beats the Transformer mixer"),
)
# The paper's MLP claim is "better at lower cost". At one width the MLP head costs a few % fewer MACs than
# 4 MLPMixer layers (and several times the parameters), so "at lower MACs" is tested across widths: each
# MLPMixer against the MLP at the narrowest width that costs at least as many MACs.
PARETO_CLAIM = "MLPMixer beats an MLP mixer of at least its MACs"


def claims(
    table: pd.DataFrame,
    classes: Mapping[str, int],
    *,
    mixer_layers: int = 4,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The paper's Fig. 1 claims tested one by one per dataset and width on the converged rows of `table`
    (`judge`: MLPMixer with `mixer_layers` layers against each other mixer). ``fair`` says whether the
    pooled heads see at least 2K features (width >= 2 x classes) in both arms; below that the comparison
    is confounded. ``left_out`` names the runs of either arm that the epoch cap ended (not converged).
    With `outcomes` (the studies' ``_spectra`` rows), a claim whose runs all have theirs also gets a paired
    bootstrap interval over the test spectra (``spectra_ci_low`` / ``_high``, over ``spectra`` spectra)."""
    rows = []
    if "ip_mode" in table:  # the mixer claims are about models without the interpretable path
        table = table[table["ip_mode"].fillna("off").isin(["off", ""])]
    table = table[table["mixer"].isin(["none", "mlp"]) | (table["mixer_layers"] == mixer_layers)]
    for (dataset, task), at in table.groupby(["dataset", "task"], sort=True):
        metric = main_metric(task)
        arm = dict(iter(at.groupby(["mixer", "width"])))
        widths = sorted(at["width"].unique())
        pairs = [(w, other, w, claim) for w in widths for other, claim in CLAIMS]
        for w in widths:  # the MLPMixer at width w against the narrowest wider MLP of at least its MACs
            if ("mlpmixer", w) in arm:  # (an MLP of width w that costs as much: the same-width test says it)
                ours = arm["mlpmixer", w]["macs"].iloc[0]
                costlier = [
                    v for (m, v), g in arm.items() if m == "mlp" and v > w and g["macs"].iloc[0] >= ours
                ]
                pairs += [(w, "mlp", min(costlier), PARETO_CLAIM)] if costlier else []
        for width, other, other_width, claim in pairs:
            if ("mlpmixer", width) not in arm or (other, other_width) not in arm:
                continue
            ours, theirs = arm["mlpmixer", width], arm[other, other_width]
            (a_rows, a_out), (b_rows, b_out) = _converged(ours), _converged(theirs)
            a, b = (r[metric].dropna().to_numpy(float) for r in (a_rows, b_rows))
            over_spectra = _over_spectra(a_rows, b_rows, task, outcomes) if len(a) and len(b) else None
            if len(a) and len(b):
                diff, lo, hi, outcome, reason = judge(a, b)
            elif a_out or b_out:  # runs exist but the epoch cap ended them: said, not dropped
                diff, lo, hi, outcome = math.nan, math.nan, math.nan, NOT_RESOLVED
                reason = "no converged run in " + " and ".join(
                    side for side, n in (("the MLPMixer's arm", len(a)), ("the other arm", len(b))) if n == 0
                )
            else:
                continue
            cost = {
                f"{key}_{side}": float(r[col].iloc[0]) / scale if col in r else math.nan
                for side, r in (("mlpmixer", ours), ("other", theirs))
                for key, col, scale in (("gmacs", "macs", 1e9), ("params", "params", 1.0))
            }
            rows.append(
                {
                    "dataset": dataset,
                    "width": int(width),
                    "other_width": int(other_width),
                    "claim": claim,
                    "metric": metric,
                    "mlpmixer": float(a.mean()) if len(a) else math.nan,
                    "other": float(b.mean()) if len(b) else math.nan,
                    "difference": diff,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_mlpmixer": len(a),
                    "n_other": len(b),
                    **cost,
                    "fair": min(int(width), int(other_width)) >= 2 * classes[dataset],
                    "spectra_ci_low": over_spectra[1] if over_spectra else math.nan,
                    "spectra_ci_high": over_spectra[2] if over_spectra else math.nan,
                    "spectra": over_spectra[3] if over_spectra else 0,
                    "outcome": outcome,
                    "reason": reason,
                    "left_out": ", ".join(a_out + b_out),
                }
            )
    return pd.DataFrame(rows)


def _over_spectra(
    a_rows: pd.DataFrame, b_rows: pd.DataFrame, task: str, outcomes: pd.DataFrame | None
) -> tuple[float, float, float, int] | None:
    """`paired_bootstrap` of two arms' runs from their test outcomes; None unless every run has them."""
    if outcomes is None or outcomes.empty:
        return None
    by_run = dict(iter(outcomes.groupby(["run_id", "config_id"])))
    arms = [[by_run.get((r.run_id, r.config_id)) for r in rows.itertuples()] for rows in (a_rows, b_rows)]
    if any(f is None for side in arms for f in side):
        return None
    return paired_bootstrap(arms[0], arms[1], task)


def _converged(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rows that early stopping ended, and the run ids of those the epoch cap ended (not converged)."""
    if "ended_by" not in rows:
        return rows, []
    done = rows["ended_by"] == "early_stop"
    return rows[done], sorted(rows.loc[~done, "run_id"].astype(str))


def verdict_text(claim_table: pd.DataFrame, *, synthetic: Iterable[str] = ()) -> str:
    """The verdict in words, computed from `claims` (never typed): fair widths first, the rest marked."""
    if claim_table.empty:
        return "No claim could be tested: the table lacks MLPMixer rows or rows to compare them with."
    synthetic = set(synthetic)
    lines = [f"On SYNTHETIC data ({', '.join(sorted(synthetic))})." if synthetic else "", TEST]
    for fair, title in ((True, "Widths with C >= 2K"), (False, "Confounded widths (C < 2K: pooled heads)")):
        part = claim_table[claim_table["fair"] == fair]
        if part.empty:
            continue
        lines.append(f"{title}:")
        for c in part.itertuples(index=False):
            ci = "" if not np.isfinite(c.ci_low) else f", 95% CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
            if c.spectra:
                ci += f"; over {c.spectra} test spectra [{c.spectra_ci_low:+.4f}, {c.spectra_ci_high:+.4f}]"
            other = f" (the MLP at width {c.other_width})" if c.other_width != c.width else ""
            cost = f"; {c.gmacs_mlpmixer:.3f} vs {c.gmacs_other:.3f} GMACs"
            if np.isfinite(c.params_mlpmixer):
                cost += f", {c.params_mlpmixer / 1e6:.2f} M vs {c.params_other / 1e6:.2f} M params"
            left = f"; left out, not converged: {c.left_out}" if c.left_out else ""
            lines.append(
                f"  {c.dataset}, width {c.width}: {c.claim}{other}: {c.outcome}"
                + (f" ({c.reason})" if c.reason else "")
                + " ("
                + (
                    f"{c.metric} {c.mlpmixer:.4f} vs {c.other:.4f}, difference {c.difference:+.4f}{ci}, "
                    if np.isfinite(c.difference)
                    else ""
                )
                + f"n = {c.n_mlpmixer}/{c.n_other}{cost}{left})"
            )
    fair = claim_table[claim_table["fair"]]
    if not fair.empty:
        tally = fair["outcome"].value_counts()
        lines.append(
            "Tally at fair widths: "
            + ", ".join(f"{k} {v}" for k, v in tally.items())
            + f" (of {len(fair)} claim tests)."
        )
    return "\n".join(line for line in lines if line)


def bottleneck_table(rows: pd.DataFrame, facts: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """MLPMixer with 0 layers (1x1 conv + LayerNorm + mean pooling, no mixing) against no mixer (flatten),
    seed by seed: the pooled head's cost when C is small, measured rather than assumed."""
    out = []
    zero = rows[(rows["mixer"] == "mlpmixer") & (rows["mixer_layers"] == 0)]
    for z in zero.itertuples(index=False):
        none = rows[
            (rows["mixer"] == "none")
            & (rows["dataset"] == z.dataset)
            & (rows["width"] == z.width)
            & (rows["seed"] == z.seed)
        ]
        if none.empty:
            continue
        metric = main_metric(z.task)
        out.append(
            {
                "dataset": z.dataset,
                "width": int(z.width),
                "seed": int(z.seed),
                "classes": facts[z.dataset]["classes"],
                "pooled_features": int(z.width),
                "flattened_features": int(z.width) * facts[z.dataset]["tokens"],
                "metric": metric,
                "mlpmixer_0_layers": float(getattr(z, metric)),
                "no_mixer": float(none.iloc[0][metric]),
            }
        )
    table = pd.DataFrame(out)
    if not table.empty:
        table["gap"] = table["no_mixer"] - table["mlpmixer_0_layers"]
    return table
