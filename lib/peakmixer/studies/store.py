"""The results store: committed sweep tables, read back for figures, re-checked live, summarised.

    results/<study>.csv   one row per finished run, written only by `studies.sweep.run_sweep`
    results/<study>.json  its sidecar: the sweep, the machine, the wall time, versions
    params/sweeps/<study>.yaml  the study itself (what `python -m peakmixer sweep --config` runs)

A stored row is valid while the run it describes would still compute the same: its ``config_id`` (see
`train.loop.config_fingerprint`: config, data hash, device type, precision, the model's code and the
training-path version) must equal the id the current code plans for that run on the row's own device type
and precision. A changed model invalidates the rows of that model only; a new git SHA alone invalidates
nothing. Notebooks draw valid rows, retrain a named subset live (`spot_check`) and report the agreement.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from peakmixer.attribution.gradcam import RunScoring
from peakmixer.config import ConfigError, MissingFile, apply_overrides, from_dict, load_yaml
from peakmixer.data.dataset import load
from peakmixer.metrics import main_metric
from peakmixer.paths import REPO_ROOT, RESULTS_DIR, STUDIES_DIR
from peakmixer.studies.sweep import (
    METRIC_COLUMNS,
    Run,
    SweepConfig,
    dataset_path,
    plan,
    read_results,
    row_state,
    run_identity,
    run_sweep,
    run_workers,
    stage_configs,
    sweep_from_dict,
)
from peakmixer.train.checkpoint import build_from_config
from peakmixer.train.prepare import label_space

# The studies behind Fig. 1, in the order their tables are read.
FIG1_STUDIES = ("fig1_mixers", "fig1d_grid", "fig1_w128")


# --- studies: the sweep YAMLs, adapted to a notebook's parameters -------------------------------------


def load_study(
    name: str,
    *,
    overrides: Sequence[str] = (),
    n: int = 0,
    data_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    studies_dir: Path = STUDIES_DIR,
) -> SweepConfig:
    """``params/sweeps/<name>.yaml`` with repository-relative paths, plus what a notebook changes.

    `overrides` are ``key=value`` strings on the study (``widths=[8]``, ``train.optim.epochs=2``); `n` > 0
    resizes its synthetic datasets; `data_dir` holds the synthetic files and the real datasets (by file
    name); `runs_dir` moves its run directories *and its table* away from the
    store (a recomputation never writes ``results/``); `device` and `precision` go to every run.
    """
    path = Path(studies_dir) / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in Path(studies_dir).glob("*.yaml"))
        raise MissingFile(f"no study {name!r} ({path}); known: {known}")
    data = apply_overrides(load_yaml(path), list(overrides))
    train = data.setdefault("train", {})
    for key, value in (("device", device), ("precision", precision)):
        if value != "auto":  # "auto" leaves the study's own setting
            train[key] = value
    cfg = sweep_from_dict(data)
    for key in ("out_dir", "results", "data_dir"):
        value = getattr(cfg, key)
        if value and not Path(value).is_absolute():
            setattr(cfg, key, str(REPO_ROOT / value))
    for ds in cfg.datasets:
        if ds.path and not Path(ds.path).is_absolute():  # a real dataset: in data_dir when one is given
            ds.path = str(Path(data_dir) / Path(ds.path).name if data_dir else REPO_ROOT / ds.path)
        if n > 0 and ds.kind:
            ds.n = n
    if data_dir:
        cfg.data_dir = str(data_dir)
    if runs_dir:  # one run folder for every study, as in the store: a run two studies need is trained once
        cfg.out_dir = str(Path(runs_dir))
        cfg.results = str(Path(runs_dir) / f"{name}.csv")
    return cfg


def in_store(cfg: SweepConfig) -> bool:
    """Whether the study writes the committed store (``results/``) rather than a private table."""
    return cfg.results_path.resolve().parent == RESULTS_DIR.resolve()


# --- reading and validating stored rows ----------------------------------------------------------------


def validate(cfg: SweepConfig, table: pd.DataFrame) -> pd.DataFrame:
    """`table` with ``valid`` and ``why`` columns: is each row still what the current code computes for
    its run (on the row's device type and precision), and if not, why not."""
    runs = {r.run_id: r for r in plan(cfg)}
    paths = {ds.name: dataset_path(cfg, ds) for ds in cfg.datasets}
    datasets = {name: load(p) for name, p in paths.items()}
    scoring = from_dict(RunScoring, cfg.scores) if cfg.scores else None
    valid, why = [], []
    for row in table.itertuples(index=False):
        run = runs.get(row.run_id)
        if run is None:
            valid.append(False)
            why.append("not a run of the study as configured now")
            continue
        name = run.dataset.name
        pre, tc = stage_configs(cfg, run, paths[name])
        expected = run_identity(pre, tc, datasets[name], device_type=row.device, precision=row.precision)
        state, reason = row_state(row.config_id, getattr(row, "scores_id", ""), expected, scoring)
        valid.append(state == "valid")
        why.append(reason)
    return table.assign(valid=valid, why=why)


@dataclass
class StoreView:
    """Rows of several studies: the valid ones, and the ones left out with the reason."""

    rows: pd.DataFrame
    stale: pd.DataFrame
    missing: list[str] = field(default_factory=list)  # planned runs with no valid row
    wall_seconds: dict[str, float] = field(default_factory=dict)
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # studies without a table yet


def read_store(studies: Mapping[str, SweepConfig], *, allow_missing: bool = False) -> StoreView:
    """The rows of `studies` (each study's own table), validated; duplicates across tables once. A study
    without a table is an error naming the command that makes it, or with `allow_missing` no rows."""
    valid, stale, missing, notes = [], [], [], []
    wall, machines = {}, {}
    for name, cfg in studies.items():
        path = cfg.results_path
        if not path.exists():
            how = (
                f"{path}: no results for study {name!r}; make them with `python -m peakmixer sweep --config "
                f"params/sweeps/{name}.yaml` (or ./run_all.sh --profile full), or set recompute: true"
            )
            if not allow_missing:
                raise MissingFile(how)
            notes.append(how)
        checked = validate(cfg, read_results(path)).assign(study=name)
        valid.append(checked[checked["valid"]])
        stale.append(checked[~checked["valid"]])
        side = path.with_suffix(".json")
        if side.exists():
            info = json.loads(side.read_text())
            wall[name] = float(info.get("wall_seconds", math.nan))
            machines[name] = info.get("machine", {})
    # the same run in two tables once; a run name with two ids (two budgets) twice, each for its study
    rows = pd.concat(valid, ignore_index=True).drop_duplicates(["run_id", "config_id"]).reset_index(drop=True)
    for name, cfg in studies.items():  # a run another table holds counts as made (`rows_of`)
        have = set(rows_of(rows, cfg).get("run_id", []))
        missing += [f"{name}: {r.run_id}" for r in plan(cfg) if r.run_id not in have]
    return StoreView(rows, pd.concat(stale, ignore_index=True), missing, wall, machines, notes)


def store_report(store: StoreView) -> str:
    """What the figures stand on: valid rows, rows left out (and why), planned runs still missing."""
    lines = [f"{len(store.rows)} valid runs."] + [f"NOTE: {n}" for n in store.notes]
    if len(store.stale):
        lines.append(f"{len(store.stale)} stored runs left out, no longer what the code computes:")
        lines += [f"  {r.run_id}: {r.why}" for r in store.stale.itertuples(index=False)]
    if store.missing:
        lines.append(f"{len(store.missing)} planned runs have no valid row yet (figures show what exists):")
        lines += [f"  {m}" for m in store.missing[:20]] + (["  ..."] if len(store.missing) > 20 else [])
    return "\n".join(lines)


def run_studies(studies: Mapping[str, SweepConfig], *, progress: bool = True, workers: int = 1) -> StoreView:
    """Run every study (resumable, in `workers` parallel processes) and return its rows: what the `full`
    profile and `recompute` do."""
    tables = [
        (
            run_workers(cfg, workers, progress=progress) if workers > 1 else run_sweep(cfg, progress=progress)
        ).assign(study=name)
        for name, cfg in studies.items()
    ]
    rows = pd.concat(tables, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)
    return StoreView(rows.assign(valid=True, why=""), pd.DataFrame(columns=[*rows.columns]))


# --- spot checks: retrain stored runs live and compare ----------------------------------------------


def find_run(studies: Mapping[str, SweepConfig], run_id: str) -> tuple[str, Run]:
    for name, cfg in studies.items():
        for run in plan(cfg):
            if run.run_id == run_id:
                return name, run
    known = sorted({r.run_id for cfg in studies.values() for r in plan(cfg)})
    raise ConfigError(f"spot check {run_id!r} is not a run of the studies; e.g. {known[:3]}")


# The spot check's tolerance: a fixed floor, or SPOT_CHECK_SEED_SDS times the spread over seeds of the same
# model in the store, whichever is larger. Why: retrained on the same kind of CPU, with the row's precision
# and thread count, a run comes out identical; on another CPU (other kernels, another order of sums) the same
# seed takes another path through training, and its score is then one more draw from the spread that seeds
# show. Two draws differ by more than 2.8 sd one time in twenty (their difference has sd x sqrt 2), so 3 sd
# is where a difference stops being explained by that, while a broken training path moves a score further.
SPOT_CHECK_SEED_SDS = 3.0


def _seed_sd(store: pd.DataFrame, row: pd.Series, metric: str) -> float:
    """The sd over seeds of the stored model `row` belongs to (NaN with fewer than two seeds)."""
    keys = [k for k in ("dataset", "width", "blocks", "mixer", "mixer_layers", "ip_mode") if k in store]
    same = np.logical_and.reduce([store[k] == row[k] for k in keys])
    values = store.loc[same, metric].astype(float)
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def _retrain(one: SweepConfig, threads: int, progress: bool) -> dict[str, Any]:
    """One spot check's live run (in a worker process, or here), on the row's thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run_sweep(one, progress=progress).iloc[0].to_dict()
    finally:
        torch.set_num_threads(before)


def spot_check(
    studies: Mapping[str, SweepConfig],
    store: pd.DataFrame,
    run_ids: Iterable[str],
    *,
    tolerance: float,
    seed_sds: float = 0.0,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    workers: int = 1,
) -> pd.DataFrame:
    """Retrain each named stored run from scratch, with the row's precision and thread count, and compare.

    Returns one row per run: the main metric stored and live, ``abs_delta``, whether the live run had the
    same ``config_id`` (same code, settings, data, device type and precision), ``same_machine`` (the stored
    row's CPU model name is this one's: a name, which does not tell every kind of CPU apart), and ``agrees``
    (``abs_delta`` within ``tolerance``: `tolerance`, or `seed_sds` times the spread over seeds of that model
    in the store where larger, see `SPOT_CHECK_SEED_SDS`). A row stored in a precision this machine only
    emulates (bf16 without native bf16) is named and not retrained. `workers` > 1 retrains that many runs side
    by side in their own processes (each on its row's thread count: rows made on one thread each take a core).
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from peakmixer.train.device import cpu_has_native_bf16

    out: dict[str, dict[str, Any]] = {}
    jobs: dict[str, tuple[SweepConfig, int, pd.Series, float]] = {}
    with tempfile.TemporaryDirectory(dir=runs_dir) as tmp:
        for run_id in run_ids:
            name, run = find_run(studies, run_id)
            stored = store[store["run_id"] == run_id]
            if stored.empty:  # not made yet, or stale: said, not hidden, and nothing to compare
                why = "the store has no valid row for it (not made yet, or stale)"
                out[run_id] = {"run_id": run_id, "checked": False, "agrees": False, "why": why}
                continue
            row = stored.iloc[0]
            if row["device"] == "cpu" and row["precision"] == "bf16" and not cpu_has_native_bf16():
                why = "stored in bf16, which this CPU only emulates (8-20x slower than fp32): not retrained"
                out[run_id] = {"run_id": run_id, "checked": False, "agrees": False, "why": why}
                continue
            cfg = studies[name]
            one = SweepConfig(
                datasets=[run.dataset],
                extractor=cfg.extractor,
                widths=[run.width],
                blocks=run.blocks,
                mixers=[run.mixer],
                mixer_layers=[run.layers],
                ip_modes=[run.ip],
                seeds=[run.seed],
                pretrain_seed=cfg.pretrain_seed,
                train={**cfg.train, "precision": row["precision"]},
                scores=cfg.scores,
                out_dir=str(Path(tmp) / name),
                results=str(Path(tmp) / f"{name}-{len(jobs)}.csv"),
                data_dir=cfg.data_dir,
            )
            metric = main_metric(row["task"])
            sd = _seed_sd(store, row, metric)
            allowed = max(tolerance, seed_sds * sd) if np.isfinite(sd) else tolerance
            jobs[run_id] = (one, int(row["threads"]), row, allowed)
            out[run_id] = {}
        if workers > 1 and len(jobs) > 1:
            # spawned: a fresh interpreter per worker, no forked torch thread pools
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
                futures = {r: pool.submit(_retrain, one, t, progress) for r, (one, t, _, _) in jobs.items()}
                lives = {r: f.result() for r, f in futures.items()}
        else:
            lives = {r: _retrain(one, t, progress) for r, (one, t, _, _) in jobs.items()}
    for run_id, (_, _, row, allowed) in jobs.items():
        live = lives[run_id]
        if live["run_id"] != run_id:
            raise RuntimeError(f"spot check of {run_id} retrained {live['run_id']}")
        metric = main_metric(row["task"])
        delta = float(live[metric]) - float(row[metric])
        out[run_id] = {
            "run_id": run_id,
            "checked": True,
            "metric": metric,
            "stored": float(row[metric]),
            "live": float(live[metric]),
            "abs_delta": abs(delta),
            "tolerance": allowed,
            "agrees": abs(delta) <= allowed,
            "same_config_id": live["config_id"] == row["config_id"],
            # another kind of CPU sums in another order: the same seed trains another model there
            "same_machine": live["device_name"] == row["device_name"],
            "stored_on": f"{row['device_name']} ({row['precision']}, {int(row['threads'])} threads)",
            "live_on": f"{live['device_name']} ({live['precision']}, {int(live['threads'])} threads)",
            "live_seconds": float(live["train_seconds"] + live["pretrain_seconds"]),
        }
    return pd.DataFrame(list(out.values()))


def spot_check_text(checks: pd.DataFrame) -> str:
    """One line per recomputed run and a summary line; disagreement is spelled out, never hidden."""
    if checks.empty:
        return "Spot check: nothing recomputed."
    missing = checks[~checks["checked"].astype(bool)]
    checks = checks[checks["checked"].astype(bool)]
    tail = [f"  {r.run_id}: NOT CHECKED, {r.why}" for r in missing.itertuples(index=False)]
    if checks.empty:
        return "\n".join(["Spot check: no named run could be retrained here; nothing recomputed.", *tail])
    lines = []
    elsewhere = ~checks["same_machine"].astype(bool)
    for c in checks.itertuples(index=False):
        state = "agrees" if c.agrees else "DISAGREES (beyond the tolerance)"
        same = "same run id" if c.same_config_id else "another run id (other device type or precision)"
        where = f"live on {c.live_on}" if c.same_machine else f"stored on {c.stored_on}, live on {c.live_on}"
        lines.append(
            f"  {c.run_id}: {c.metric} stored {c.stored:.4f}, live {c.live:.4f}, |Δ| = {c.abs_delta:.4f} "
            f"(tolerance {c.tolerance:.4f}), {state}; {same}; {where} in {c.live_seconds:.0f} s"
        )
    bad = ~checks["agrees"].astype(bool)
    crossed = int((bad & elsewhere).sum())
    head = (
        f"Spot check: {len(checks)} stored run(s) retrained live, max |Δ| = {checks['abs_delta'].max():.4f}: "
        + (
            "all agree."
            if not bad.any()
            else f"{int(bad.sum())} DISAGREE — the stored numbers are not reproduced here"
            + (
                f" ({crossed} of them stored from another kind of CPU, whose order of sums trains another "
                "model from the same seed)."
                if crossed
                else "."
            )
        )
    )
    return "\n".join([head, *lines, *tail])


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
    "0, contradicted below 0. Converged runs only (early stopping ended them)."
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


def claims(table: pd.DataFrame, classes: Mapping[str, int], *, mixer_layers: int = 4) -> pd.DataFrame:
    """The paper's Fig. 1 claims tested one by one per dataset and width on the converged rows of `table`
    (`judge`: MLPMixer with `mixer_layers` layers against each other mixer). ``fair`` says whether the
    pooled heads see at least 2K features (width >= 2 x classes) in both arms; below that the comparison
    is confounded. ``left_out`` names the runs of either arm that the epoch cap ended (not converged)."""
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
                    "outcome": outcome,
                    "reason": reason,
                    "left_out": ", ".join(a_out + b_out),
                }
            )
    return pd.DataFrame(rows)


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


# --- rows per figure, and the README's results section --------------------------------------------------


def rows_of(rows: pd.DataFrame, cfg: SweepConfig) -> pd.DataFrame:
    """The rows that are runs of study `cfg` as it is configured now. Tables share runs, so rows are picked
    by plan, not by table, and each must carry the config id `cfg` plans for its run (`validate`): a row
    of another study with the same run name but another budget does not count."""
    if rows.empty:
        return rows.reset_index(drop=True)
    mine = rows[rows["run_id"].isin({r.run_id for r in plan(cfg)})]
    if mine.empty:
        return mine.reset_index(drop=True)
    checked = validate(cfg, mine)
    return checked[checked["valid"]].drop_duplicates("run_id").reset_index(drop=True)


def panel_rows(rows: pd.DataFrame, mixer_layers: int) -> pd.DataFrame:
    """Rows of panels a-c and of the verdict: no mixer, the MLP, and MLPMixer / Transformer at one depth."""
    keep = rows["mixer"].isin(["none", "mlp"]) | (rows["mixer_layers"] == mixer_layers)
    return rows[keep].reset_index(drop=True)


def fmt_mean_sd(mean: float, sd: float, n: int) -> str:
    return f"{mean:.4f}" if n < 2 or not np.isfinite(sd) else f"{mean:.4f} ± {sd:.4f}"


def readme_results(
    studies: Mapping[str, SweepConfig] | None = None, *, grid_study: str = "fig1d_grid", mixer_layers: int = 4
) -> str:
    """The README's "Results" section, made from the committed store alone (valid rows only)."""
    studies = dict(studies or {name: load_study(name) for name in FIG1_STUDIES})
    store = read_store(studies, allow_missing=True)
    if store.rows.empty:
        return "No finished run in the results store yet: make them with `./run_all.sh --profile full`."
    facts = study_facts(studies)
    main = panel_rows(
        pd.concat([rows_of(store.rows, cfg) for name, cfg in studies.items() if name != grid_study]),
        mixer_layers,
    ).drop_duplicates("run_id")
    out = [
        "All numbers below come from the committed results store (`results/*.csv`, one row per training "
        "run with its provenance), written by `python -m peakmixer sweep --config "
        "params/sweeps/<study>.yaml` and nothing else; this section is generated from it and a test "
        "fails when they disagree. "
        + (
            "The data are the embedded **synthetic** benchmarks. "
            if all(f["synthetic"] for f in facts.values())
            else ""
        )
        + "Mean ± sd over seeds on the test split; every run stopped early on its validation split or at the "
        "epoch cap (column *stopped early*)."
    ]
    summary = summarize(main)
    for dataset, at in summary.groupby("dataset", sort=False):
        task = at["task"].iloc[0]
        metric = main_metric(task)
        extra = ["emr", "hamming_accuracy"] if task == "multilabel" else ["macro_f1"]
        label = dataset + (" (synthetic)" if facts[dataset]["synthetic"] else "")
        out += [
            "",
            f"**{label}** — {facts[dataset]['classes']} classes, main metric {metric}:",
            "",
            "| width | mixer | GMACs | params | "
            + " | ".join([metric] + extra)
            + " | seeds | epochs run (median) | stopped early |",
            "|---|---|---|---|" + "---|" * (len(extra) + 4),
        ]
        for r in at.sort_values(["width", "gmacs"]).itertuples(index=False):
            runs = main[
                (main["dataset"] == dataset)
                & (main["width"] == r.width)
                & (main["mixer"] == r.mixer)
                & (main["mixer_layers"] == r.mixer_layers)
            ]
            name = {"none": "none", "mlp": f"MLP ({r.mixer_layers} x 1024)"}.get(
                r.mixer, f"{r.mixer} ({r.mixer_layers} layers)".replace("mlpmixer", "MLPMixer")
            )
            cells = [
                fmt_mean_sd(getattr(r, f"{m}_mean"), getattr(r, f"{m}_sd"), r.n_seeds)
                for m in [metric, *extra]
            ]
            early = int((runs["ended_by"] == "early_stop").sum())
            out.append(
                f"| {r.width} | {name} | {r.gmacs:.4f} | {r.params / 1e6:.3f} M | "
                + " | ".join(cells)
                + f" | {r.n_seeds} | {int(runs['epochs_run'].median())} | {early} of {len(runs)} |"
            )
    claim_table = claims(main, {k: f["classes"] for k, f in facts.items()}, mixer_layers=mixer_layers)
    synthetic = [k for k, f in facts.items() if f["synthetic"]]
    out += [
        "",
        "**Verdict** (computed from the rows above):",
        "",
        "```",
        verdict_text(claim_table, synthetic=synthetic),
        "```",
    ]
    if grid_study in studies:
        grid = rows_of(store.rows, studies[grid_study])
        out += grid_table(grid)
        # the 0-layer runs are the grid's; the no-mixer runs they are set against are the panels' own
        neck = bottleneck_table(pd.concat([grid, main]).drop_duplicates("run_id"), facts)
        if not neck.empty:
            out += [
                "",
                "**The pooled-head bottleneck, measured** (panel d's MLPMixer with 0 layers — 1x1 conv, "
                "LayerNorm, mean over positions, linear head: no mixing at all — against no mixer, which "
                "flattens all positions; same seed):",
                "",
                "| dataset | width | classes K | features into the head (pooled / flattened) | no mixer "
                "| MLPMixer 0 layers | gap |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in neck.itertuples(index=False):
                out.append(
                    f"| {r.dataset} | {r.width} | {r.classes} | {r.pooled_features} / "
                    f"{r.flattened_features} | {r.no_mixer:.4f} | {r.mlpmixer_0_layers:.4f} | {r.gap:+.4f} |"
                )
    out += ["", "**Where and how long** (from each table's sidecar and rows):", ""]
    out += where_and_how_long(studies, store)
    return "\n".join(out)


def grid_table(grid: pd.DataFrame) -> list[str]:
    """Panel d in the README: per dataset, width by MLPMixer layers, the main metric of each run."""
    out: list[str] = []
    for dataset, rows in grid[grid["mixer"] == "mlpmixer"].groupby("dataset", sort=False):
        metric = main_metric(rows["task"].iloc[0])
        layers = sorted(rows["mixer_layers"].astype(int).unique())
        seeds = ", ".join(str(s) for s in sorted(rows["seed"].astype(int).unique()))
        out += [
            "",
            f"**Panel d, {dataset}**: {metric} by ResPeak width and MLPMixer layers (seed {seeds}; 0 layers: "
            "no mixing):",
            "",
            "| width | " + " | ".join(f"{n} layer{'' if n == 1 else 's'}" for n in layers) + " |",
            "|---|" + "---|" * len(layers),
        ]
        for width, at in rows.groupby(rows["width"].astype(int)):
            by_layers = at.groupby(at["mixer_layers"].astype(int))[metric].mean()
            cells = [f"{by_layers[n]:.4f}" if n in by_layers else "–" for n in layers]
            out.append(f"| {width} | " + " | ".join(cells) + " |")
    return out


def where_and_how_long(studies: Mapping[str, SweepConfig], store: StoreView) -> list[str]:
    """One line per study: its runs, the machine and the training wall time, and what is still missing."""
    out = []
    for name, cfg in studies.items():
        rows = read_results(cfg.results_path)
        valid, planned = len(rows_of(store.rows, cfg)), len(plan(cfg))
        if rows.empty:
            out.append(f"- `{name}`: no table yet ({valid} of its {planned} runs come from other tables).")
            continue
        machine = store.machines.get(name, {})
        out.append(
            f"- `{name}`: {len(rows)} runs ({valid} valid now, {planned} planned), "
            f"{store.wall_seconds.get(name, math.nan) / 3600:.1f} h of training wall time on "
            f"{', '.join(sorted(set(rows['device_name'])))} ({machine.get('cores', '?')} cores, "
            f"{', '.join(sorted(set(rows['precision'])))}, torch {', '.join(sorted(set(rows['torch'])))})."
        )
    if store.missing:
        out.append(
            f"- Not yet in the store: {len(store.missing)} planned runs (the full sweep is resumable)."
        )
    return out
