"""The interpretable path evaluated from stored runs: Table 1, the ground-truth scores, the verdict, and
spot checks that re-score a stored run's model live.

Rows come from the results store (`studies.store`); each IP run there carries its attribution scores
(`attribution.run_scores`: means and medians over its test pairs) and PICNN's pathway scores, and its scores
per pair sit in the study's detail tables (`studies.ip_pairs` judges them). Spread over seeds is the sd of the
per-run means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from peakmixer.attribution.gradcam import CHANNEL_SUBSETS, GROUND_TRUTH_SCORES
from peakmixer.attribution.run_scores import RunScoring, score_model
from peakmixer.config import from_dict
from peakmixer.data.dataset import file_sha256, load
from peakmixer.ip import IPModel
from peakmixer.metrics import main_metric
from peakmixer.paths import MODELS_DIR, REPO_ROOT
from peakmixer.provenance import git_sha
from peakmixer.studies.claims import CONTRADICTED, SUPPORTED, judge, study_facts
from peakmixer.studies.ip_pairs import (
    VERDICT_SCORES,
    arms_text,
    chance_table,
    chance_text,
    compare_subsets,
    compare_with_others,
    fidelity_table,
    fidelity_text,
    ownership_table,
    subsets_text,
    verdict_tally,
    with_runs,
)
from peakmixer.studies.results import load_study, read_store
from peakmixer.studies.results_section import fmt_mean_sd, where_and_how_long
from peakmixer.studies.spot_check import find_run
from peakmixer.studies.store import append_rows, read_details
from peakmixer.studies.sweep import SweepConfig, dataset_path, stage_configs
from peakmixer.train.checkpoint import load_checkpoint, model_from_checkpoint, shipped_weights
from peakmixer.train.config import TrainConfig
from peakmixer.train.prepare import prepare_split

TABLE1_SCORES = {"infidelity": "lower", "sensitivity": "lower"}  # both: lower is better
MODE_NAMES = {
    "trainable": "trainable",
    "frozen": "frozen (untrainable)",
    "off": "off (no IP)",
    "redrawn": "redrawn (the authors' untrainable)",
}


def _mean_sd(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().astype(float)
    return float(v.mean()) if len(v) else np.nan, float(v.std(ddof=1)) if len(v) > 1 else np.nan, len(v)


def table1(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 1: infidelity and sensitivity of class-specific Grad-CAM, trainable vs frozen matrix, per
    dataset: mean ± sd over seeds of the per-run means, the mean per-run sd over test spectra, and the pairs
    a run scores and leaves out on average (the class owns no channel under the study's rule, or a flat map:
    the means are over the rest)."""
    out = []
    ip = rows[rows["ip_mode"].isin(["trainable", "frozen"])]
    for score in TABLE1_SCORES:
        for mode in ("trainable", "frozen"):
            for dataset, at in ip[ip["ip_mode"] == mode].groupby("dataset", sort=False):
                mean, sd, n = _mean_sd(at[f"{score}_mean"])
                out.append(
                    {
                        "score": score,
                        "correlation": mode,
                        "dataset": dataset,
                        "mean": mean,
                        "sd_over_seeds": sd,
                        "sd_over_spectra": float(at[f"{score}_sd"].mean()),
                        "seeds": n,
                        "pairs_per_run": float(at["scored_pairs"].mean()),
                        "left_out_per_run": float(at["degenerate_pairs"].mean())
                        if "degenerate_pairs" in at
                        else np.nan,
                    }
                )
    return pd.DataFrame(out)


def _score_row(dataset: str, mode: str, channels: str, score: str, values: pd.Series) -> dict[str, Any]:
    mean, sd, n = _mean_sd(values)
    return {
        "dataset": dataset,
        "ip_mode": mode,
        "channels": channels,
        "score": score,
        "mean": mean,
        "sd": sd,
        "seeds": n,
    }


def ground_truth_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Relevance mass / rank accuracy and pointing game per dataset, IP mode and channel subset (mean ± sd
    over seeds), with PICNN's pathway scores (pred_1 all channels, pred_2 class-specific, pred_3
    complementary) beside them."""
    out = []
    for (dataset, mode), at in rows.groupby(["dataset", "ip_mode"], sort=False):
        metric = "accuracy" if at["task"].iloc[0] == "multiclass" else "micro-F1"
        for subset in CHANNEL_SUBSETS:
            for name in GROUND_TRUTH_SCORES:
                col = f"{name}_{subset}"
                if col not in at or at[col].isna().all():
                    continue
                out.append(_score_row(dataset, mode, subset, name, at[col]))
        for path in ("pred_1", "pred_2", "pred_3"):
            col = f"pathway_{path}"
            if col in at and at[col].notna().any():
                subset = {"pred_1": "all", "pred_2": "specific", "pred_3": "complement"}[path]
                out.append(_score_row(dataset, mode, subset, f"pathway {path} ({metric})", at[col]))
    return pd.DataFrame(out)


def table1_over_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 1's columns (and the scale-free share) as the paper would compare them: per dataset and score,
    the difference of per-run means (trainable − frozen) with a 95% Welch t interval over seeds, and whether
    it favours the trainable matrix beyond that interval ("supported"), the frozen one ("contradicted"), or
    neither. The verdict on the path is pair-level (`ip_pairs.compare_arms`, `path_verdict_text`)."""
    scores = {f"{s}_mean": "lower" for s in (*TABLE1_SCORES, "infidelity_share")}
    out = []
    for dataset, at in rows.groupby("dataset", sort=False):
        for col, better in scores.items():
            if col not in at:
                continue
            a = at.loc[at["ip_mode"] == "trainable", col].dropna().astype(float).to_numpy()
            b = at.loc[at["ip_mode"] == "frozen", col].dropna().astype(float).to_numpy()
            if len(a) == 0 or len(b) == 0:
                continue
            diff, lo, hi, outcome, reason = judge(a, b, better)
            out.append(
                {
                    "dataset": dataset,
                    "score": col.removesuffix("_mean"),
                    "better": better,
                    "trainable": float(a.mean()),
                    "frozen": float(b.mean()),
                    "difference": diff,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": f"{len(a)}/{len(b)}",
                    "outcome": outcome,
                    "reason": reason,
                }
            )
    return pd.DataFrame(out)


# The paper's Table 1 as printed: class-specific Grad-CAM on NIST-IR and bacteria with the trainable and the
# untrainable (our "frozen") correlation matrix; lower is better. Beside it, our synthetic stand-in for each.
PAPER_TABLE1 = {
    ("infidelity", "trainable"): (0.6813, 8.5290),
    ("infidelity", "frozen"): (0.7183, 9.0944),
    ("sensitivity", "trainable"): (0.1069, 0.2831),
    ("sensitivity", "frozen"): (0.9682, 1.3614),
}
PAPER_DATASETS = (("NIST-IR", "synth-ir17"), ("bacteria", "synth-bac30"))


def table1_beside_paper(rows: pd.DataFrame) -> pd.DataFrame:
    """Each cell of the paper's Table 1 beside ours: per score and dataset, the paper's trainable and frozen
    values, ours (mean over seeds), the difference with its 95% Welch interval (`table1_over_seeds`), whether
    ours shows the paper's direction beyond the interval (``reproduced``), the other one (``reversed``), or
    neither (``not resolved``), and the pairs each arm leaves out per run; ``no runs`` where the store has
    none."""
    verdict = table1_over_seeds(rows) if not rows.empty else pd.DataFrame()
    if verdict.empty:  # no trainable-and-frozen pair of runs yet
        verdict = pd.DataFrame(columns=["dataset", "score"])
    out = []
    for score in TABLE1_SCORES:
        for k, (paper, ours) in enumerate(PAPER_DATASETS):
            pt, pf = PAPER_TABLE1[(score, "trainable")][k], PAPER_TABLE1[(score, "frozen")][k]
            row = {"score": score, "paper_dataset": paper, "paper_trainable": pt, "paper_frozen": pf}
            at = verdict[(verdict["dataset"] == ours) & (verdict["score"] == score)]
            if at.empty:
                out.append(row | {"dataset": ours, "beside_paper": "no runs"})
                continue
            r = at.iloc[0]
            # the verdict asks "is the trainable matrix lower?": the paper's direction decides what agrees
            agrees = {SUPPORTED: pt < pf, CONTRADICTED: pt > pf}.get(r["outcome"])
            word = "not resolved" if agrees is None else ("reproduced" if agrees else "reversed")
            keep = ["dataset", "trainable", "frozen", "difference", "ci_low", "ci_high", "n"]
            left = {f"left_out_{m}": _left_out(rows, ours, m) for m in ("trainable", "frozen")}
            out.append(row | {c: r[c] for c in keep} | left | {"beside_paper": word})
    return pd.DataFrame(out)


def _left_out(rows: pd.DataFrame, dataset: str, mode: str) -> str:
    """The pairs a run of this arm leaves out of its means, of those it scores ("a of b", mean over seeds)."""
    at = rows[(rows["dataset"] == dataset) & (rows["ip_mode"] == mode)]
    if at.empty or "degenerate_pairs" not in at or at["degenerate_pairs"].isna().all():
        return ""
    return f"{at['degenerate_pairs'].mean():.3g} of {at['scored_pairs'].mean():.3g}"


def beside_paper_text(frame: pd.DataFrame) -> list[str]:
    """One sentence per cell of `table1_beside_paper`."""
    lines = []
    for r in frame.itertuples(index=False):
        head = (
            f"- {r.score}, {r.dataset} in place of {r.paper_dataset}: the paper {r.paper_trainable:.4f} "
            f"trainable vs {r.paper_frozen:.4f} frozen"
        )
        if r.beside_paper == "no runs":
            lines.append(f"{head}; ours: no runs yet.")
            continue
        ci = (
            f"95% interval [{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
            if np.isfinite([r.ci_low, r.ci_high]).all()
            else "no interval with one seed in an arm"
        )
        left = (
            f"; pairs left out per run: {r.left_out_trainable} trainable, {r.left_out_frozen} frozen"
            if r.left_out_trainable and r.left_out_frozen
            else ""
        )
        lines.append(
            f"{head}; ours {r.trainable:.4f} vs {r.frozen:.4f}, difference {r.difference:+.4f} "
            f"({ci}, n = {r.n} seeds{left}): **{r.beside_paper}**."
        )
    return lines


def table1_over_seeds_text(verdict: pd.DataFrame) -> str:
    """`table1_over_seeds` as lines."""
    if verdict.empty:
        return "No trainable and frozen runs to compare."
    lines = [
        "Table 1's columns over seeds: per score, trainable − frozen of the per-run means with a two-sided "
        "95% Welch t interval (unequal variances; no correction across the scores)."
    ]
    for v in verdict.itertuples(index=False):
        ci = "" if not np.isfinite(v.ci_low) else f", 95% CI [{v.ci_low:+.3g}, {v.ci_high:+.3g}]"
        lines.append(
            f"  {v.dataset}, {v.score} ({v.better} is better): trainable {v.trainable:.4g} vs frozen "
            f"{v.frozen:.4g}, difference {v.difference:+.3g}{ci} (n = {v.n}): {v.outcome}"
            + (f" ({v.reason})" if v.reason else "")
        )
    tally = verdict["outcome"].value_counts()
    lines.append("Tally: " + ", ".join(f"{k} {n}" for k, n in tally.items()) + f" (of {len(verdict)}).")
    return "\n".join(lines)


# --- pair-level detail and the benchmark's worth ----------------------------------------------------------

LINEAR_MARGIN = 0.05  # the network must beat a linear model by this much for its maps to be worth explaining


def study_details(cfg: SweepConfig, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The valid rows' attribution scores per pair (with each run's dataset, IP mode and seed) and their
    channels per class, from the study's detail tables."""
    pairs = with_runs(read_details(cfg.results_path, "pairs", rows), rows)
    return pairs, read_details(cfg.results_path, "channels", rows)


def class_labels(cfg: SweepConfig) -> dict[str, list[str]]:
    """Each dataset's class names."""
    return {ds.name: list(load(dataset_path(cfg, ds)).label_names) for ds in cfg.datasets}


def against_linear(
    cfg: SweepConfig, rows: pd.DataFrame, margin: float = LINEAR_MARGIN, *, compute: bool = True
) -> pd.DataFrame:
    """Per dataset of the study and IP mode: the network's main test metric (mean over seeds) against a
    logistic regression on the same training spectra (for a pre-train → fine-tune protocol: the reference
    and fine-tune spectra), and whether it is ahead by at least `margin`. Without `compute`, a dataset whose
    baseline is not stored yet is left out."""
    out = []
    for ds in cfg.datasets:
        at = rows[rows["dataset"] == ds.name]
        linear = _linear_of(cfg, ds, compute=compute) if not at.empty else None
        if linear is None:
            continue
        metric = main_metric(at["task"].iloc[0])
        for mode, part in at.groupby("ip_mode", sort=False):
            network = float(part[metric].mean())
            out.append(
                {
                    "dataset": ds.name,
                    "ip_mode": mode,
                    "metric": metric,
                    "network": network,
                    "seeds": len(part),
                    "linear": linear,
                    "margin": network - linear,
                    "required": margin,
                    "worth_explaining": network - linear >= margin,
                }
            )
    return pd.DataFrame(out)


def _linear_of(cfg: SweepConfig, ds: Any, *, compute: bool = True) -> float | None:
    """The linear baseline of one study dataset, from ``linear_baselines.csv`` beside the study's results
    (keyed by the data's hash and the training splits), computed and added there when missing."""
    from peakmixer.studies.calibration import linear_baseline

    path = dataset_path(cfg, ds)
    splits = [ds.train.get("data", {}).get("train_split", "train")]
    if ds.protocol == "pretrain_finetune":
        splits.append(ds.finetune.get("data", {}).get("train_split", "finetune"))
    key = {"dataset": ds.name, "data_sha256": file_sha256(path), "train_splits": " ".join(splits)}
    table_path = cfg.results_path.with_name("linear_baselines.csv")
    known = pd.read_csv(table_path, dtype=str) if table_path.exists() else pd.DataFrame(columns=list(key))
    hit = known[(known[list(key)] == pd.Series(key)).all(axis=1)]
    if not hit.empty:
        return float(hit["value"].iloc[0])
    if not compute:
        return None
    value = linear_baseline(load(path), splits)
    row = key | {"model": "logistic regression on standardised spectra", "value": value, "git_sha": git_sha()}
    append_rows(table_path, pd.DataFrame([row]), key=list(key))
    return value


def against_linear_text(table: pd.DataFrame) -> str:
    """The first lines of 03: is each benchmark worth explaining at this budget?"""
    if table.empty:
        return "No runs to hold against a linear model."
    lines = []
    for dataset, at in table.groupby("dataset", sort=False):
        ahead = at.loc[at["worth_explaining"].astype(bool), "ip_mode"].tolist()
        required = at["required"].iloc[0]
        cells = ", ".join(
            f"{r.ip_mode} {r.network:.3f} ({r.margin:+.3f})" for r in at.itertuples(index=False)
        )
        if len(ahead) == len(at):
            verdict = (
                f"The network is ahead by at least {required:.2f} in every mode: its maps explain something "
                "a linear model does not do."
            )
        else:
            where, rest = (
                ("in NO mode", "every mode") if not ahead else (f"only in {', '.join(ahead)}", "the others")
            )
            verdict = (
                f"The network is ahead by {required:.2f} {where}: in {rest}, at this budget, a linear "
                f"model on these spectra comes within {required:.2f} of it or beats it, so the maps there "
                "say little about what the network adds."
            )
        lines.append(
            f"{dataset}: a linear model (logistic regression on the same spectra) scores "
            f"{at['linear'].iloc[0]:.3f} {at['metric'].iloc[0]}; the network {cells}. {verdict}"
        )
    return "\n".join(lines)


def _pair_sections(cfg: SweepConfig, rows: pd.DataFrame) -> list[str]:
    """The README's pair-level parts: worth explaining, the scale-free fidelity, the arms on the same pairs,
    specific against all channels, chance and channel ownership (from the committed detail tables)."""
    out = []
    linear = against_linear(cfg, rows, compute=False)
    if not linear.empty:
        out += ["", "**Worth explaining?** " + against_linear_text(linear).replace("\n", "\n\n")]
    pairs, channels = study_details(cfg, rows)
    if pairs.empty:
        return out + ["", "No pair-level scores in the store yet (runs scored before score version 4)."]
    gt = list(GROUND_TRUTH_SCORES)
    fid = fidelity_table(pairs)
    arms = compare_with_others(pairs, "trainable", ("frozen", "redrawn"), scores=VERDICT_SCORES)
    sub = compare_subsets(pairs, rules=[cfg.scores.get("rule", "argmax")], scores=["infidelity_share", *gt])
    chance = chance_table(pairs)
    own = ownership_table(channels, pairs, rows)
    out += [
        "",
        "**Fidelity that measures the map** (class-specific Grad-CAM; share = infidelity / E[Δf²] = 1 − ρ², "
        "lower is better; 95% bootstrap intervals over test spectra, seeds pooled):",
        "",
        *fidelity_text(fid),
        "",
        "**The verdict on the path: trainable against frozen and redrawn, on the pairs both scored** "
        "(fidelity by the scale-free share; a score against the true bands is supported only where the "
        "trainable map also beats chance):",
        "",
        *arms_text(arms),
        "",
        *verdict_tally(arms),
        "",
        "**The paper's claim within each model: class-specific channels against all channels and against "
        "the rest (the complement):**",
        "",
        *subsets_text(sub),
        "",
        "**Against chance** (class-specific maps, argmax rule):",
        "",
        *chance_text(chance[(chance["channels"] == "specific") & (chance["rule"] == "argmax")]),
    ]
    if not own.empty:
        out += ["", "**Channel ownership** (argmax rule; per run):", ""]
        out += [
            f"- {r.run_id}: {r.without_channels_argmax} of {r.classes} classes own no channel"
            + (f" ({r.classes_without})" if r.classes_without else "")
            + f"; channels per class {r.fewest}–{r.most} (median {r.median:g}); pairs left out of {r.pairs}: "
            f"argmax {r.pairs_left_out_argmax} ({r.pairs_unowned_argmax} unowned, {r.pairs_flat_argmax} flat "
            f"maps), top-{r.channels_topk} {r.pairs_left_out_topk} ({r.pairs_flat_topk} flat maps)."
            for r in own.itertuples(index=False)
        ]
    return out


# --- spot checks: re-score a stored run's model live ----------------------------------------------------


def model_of(config_id: str, candidates: Iterable[Path]) -> Path | None:
    """The first checkpoint among `candidates` whose run identity is `config_id`."""
    for path in candidates:
        if path.exists() and load_checkpoint(path).get("config_id") == config_id:
            return path
    return None


def rescore_check(
    studies: Mapping[str, SweepConfig],
    store: pd.DataFrame,
    run_ids: Iterable[str],
    *,
    tolerance: float,
    models_dir: Path = MODELS_DIR,
) -> pd.DataFrame:
    """Re-score each named stored run's best model live (its class-specific map under the study's rule, or
    all channels without a path) and compare every stored score that map gives with it.

    The model is the one whose run identity is the stored row's: the run's own directory when this machine
    made it, else a shipped copy in ``models/``; without either the run is reported NOT CHECKED. One row per
    run: where the model came from, how many scores were compared, the largest |difference| (a score that is
    a number on one side and missing on the other counts as infinite), agreement.
    """
    out = []
    for run_id in run_ids:
        name, run = find_run(studies, run_id)
        cfg = studies[name]
        row = store[store["run_id"] == run_id]
        if row.empty:  # not made yet, or stale: said, not hidden
            out.append({"run_id": run_id, "checked": False, "agrees": False})
            continue
        row = row.iloc[0]
        path = dataset_path(cfg, run.dataset)
        _, tc = stage_configs(cfg, run, path)
        local = Path(tc.out_dir) / "best.pt"
        source = model_of(row["config_id"], [local, *sorted(Path(models_dir).glob("*.pt"))])
        if source is None:  # neither this machine's run nor a shipped copy of it: said, not hidden
            out.append({"run_id": run_id, "checked": False, "agrees": False, "why": "its model is not here"})
            continue
        ckpt = load_checkpoint(source)
        ckpt["model"] = shipped_weights(ckpt["model"])  # scores are made on the weights as shipped
        model = model_from_checkpoint(ckpt)
        train_cfg = from_dict(TrainConfig, ckpt["config"])
        dataset = load(path)
        test = prepare_split(dataset, train_cfg.data.test_split, train_cfg)
        part = dataset.split(train_cfg.data.test_split).to_length(train_cfg.model.input_length)
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            # the map of the paper's columns alone (the other maps cost three times as much): its own scores
            scoring = from_dict(RunScoring, cfg.scores)
            maps = [("specific", scoring.rule)] if isinstance(model, IPModel) else [("all", "")]
            live = score_model(model, test.X, test.y, part.masks, test.task, scoring, maps).summary
        # every stored score is compared; a number on one side and NaN on the other is a disagreement
        deltas = {}
        for key, value in live.items():
            stored = float(row[key]) if key in row and row[key] == row[key] else np.nan
            both_nan = np.isnan(stored) and np.isnan(value)
            deltas[key] = (
                0.0 if both_nan else abs(value - stored) if np.isfinite([value, stored]).all() else np.inf
            )
        worst = max(deltas, key=deltas.get)
        out.append(
            {
                "run_id": run_id,
                "checked": True,
                "model_from": "run directory" if source == local else f"models/{source.name}",
                "scores_compared": len(deltas),
                "max_abs_delta": deltas[worst],
                "worst_score": worst,
                "tolerance": tolerance,
                "agrees": deltas[worst] <= tolerance,
            }
        )
    return pd.DataFrame(out)


def rescore_text(checks: pd.DataFrame) -> str:
    if checks.empty:
        return "Spot check: nothing re-scored."
    unchecked = checks[~checks["checked"]]
    why = unchecked["why"] if "why" in unchecked else pd.Series(index=unchecked.index, dtype=object)
    stale = "no valid row in the store (not made yet, or stale)"
    tail = [
        f"  {r}: NOT CHECKED, {w if isinstance(w, str) else stale}"
        for r, w in zip(unchecked["run_id"], why, strict=True)
    ]
    checks = checks[checks["checked"]]
    if checks.empty:
        return "\n".join(["Spot check: no named run has a valid stored row; nothing re-scored.", *tail])
    bad = int((~checks["agrees"].astype(bool)).sum())
    lines = [
        f"Spot check: {len(checks)} stored run(s) re-scored live from their trained model: "
        + ("all agree." if bad == 0 else f"{bad} DISAGREE — the stored scores are not reproduced here.")
    ]
    for c in checks.itertuples(index=False):
        state = "agrees" if c.agrees else f"DISAGREES (beyond {c.tolerance})"
        lines.append(
            f"  {c.run_id} ({c.model_from}): {c.scores_compared} scores, max |Δ| = {c.max_abs_delta:.2e} "
            f"({c.worst_score}): {state}"
        )
    return "\n".join(lines + tail)


def readme_ip_results(study: str = "ip_table1", cfg: SweepConfig | None = None) -> str:
    """The README's Table 1 section, made from the study's committed rows alone: the main test metric per IP
    mode (what the path costs), Table 1, and the verdict."""
    cfg = cfg or load_study(study)
    store = read_store({study: cfg}, allow_missing=True)
    rows = store.rows
    if rows.empty:
        return f"No finished run of `{study}` in the store yet: `./run_all.sh --profile full` makes them."
    facts = study_facts({study: cfg})
    synthetic = [k for k, f in facts.items() if f["synthetic"]]
    ip = cfg.train["model"]["ip"]
    table = Path(cfg.results).resolve()
    shown = table.relative_to(REPO_ROOT) if table.is_relative_to(REPO_ROOT) else table
    out = [
        f"From `{shown}` (ResPeak-{cfg.widths[0]} + MLPMixer-{cfg.mixer_layers[0]}, "
        f"interpretable path with {ip['channels']} channels; Grad-CAM of each run scored on the first "
        f"{cfg.scores['n_spectra']} test spectra). Mean ± sd over seeds"
        + (", on the embedded **synthetic** benchmarks." if len(synthetic) == len(facts) else "."),
        "",
        "| dataset | main test metric | " + " | ".join(MODE_NAMES[m] for m in cfg.ip_modes) + " |",
        "|---|---|" + "---|" * len(cfg.ip_modes),
    ]
    for dataset, at in rows.groupby("dataset", sort=False):
        metric = main_metric(at["task"].iloc[0])
        cells = []
        for mode in cfg.ip_modes:
            mean, sd, n = _mean_sd(at.loc[at["ip_mode"] == mode, metric])
            cells.append(f"{fmt_mean_sd(mean, sd, n)} ({n})" if n else "not yet")
        out.append(f"| {dataset} | {metric} (seeds) | " + " | ".join(cells) + " |")
    table = table1(rows)
    if not table.empty:
        datasets = list(dict.fromkeys(table["dataset"]))
        paper_of = {ours: (k, paper) for k, (paper, ours) in enumerate(PAPER_DATASETS)}
        heads = [h for d in datasets for h in ([d, f"{paper_of[d][1]} (paper)"] if d in paper_of else [d])]
        out += [
            "",
            "**Table 1** (class-specific Grad-CAM; lower is better; n = seeds), each synthetic stand-in "
            "beside the paper's value for the real dataset it stands in for:",
            "",
            "| score | correlation matrix | " + " | ".join(heads) + " |",
            "|---|---|" + "---|" * len(heads),
        ]
        for (score, mode), at in table.groupby(["score", "correlation"], sort=False):
            cells = []
            for d in datasets:
                cell = at[at["dataset"] == d]
                n = int(cell["seeds"].iloc[0]) if not cell.empty else 0
                cells.append(
                    f"{fmt_mean_sd(cell['mean'].iloc[0], cell['sd_over_seeds'].iloc[0], n)} (n = {n})"
                    if n
                    else ""
                )
                if d in paper_of:
                    cells.append(f"{PAPER_TABLE1[(score, mode)][paper_of[d][0]]:.4f}")
            out.append(f"| {score} | {MODE_NAMES[mode]} | " + " | ".join(cells) + " |")
    out += [
        "",
        "**Beside the paper's Table 1** (the paper's real datasets, our synthetic stand-ins: compare the "
        "direction, trainable against frozen, not the values):",
        "",
        *beside_paper_text(table1_beside_paper(rows)),
    ]
    out += _pair_sections(cfg, rows)
    out += [
        "",
        "**Table 1's columns over seeds** (per-run means, Welch; how the paper's numbers compare; the "
        "verdict on the path is the pair-level one above):",
        "",
        "```",
        table1_over_seeds_text(table1_over_seeds(rows)),
        "```",
    ]
    out += ["", "**Where and how long:**", ""] + where_and_how_long({study: cfg}, store)
    return "\n".join(out)
