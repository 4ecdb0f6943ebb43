"""Spot checks: retrain named stored runs live and compare each with its stored row, within a tolerance
set by the spread over seeds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from peakmixer.config import ConfigError
from peakmixer.metrics import main_metric, within
from peakmixer.studies.sweep import Run, SweepConfig, plan, run_sweep

# The studies behind Fig. 1, in the order their tables are read.


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
    row's `machine_label` is this one's: CPU model name and kernel instruction sets), and ``agrees``
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
            "agrees": within(delta, allowed),
            "same_config_id": live["config_id"] == row["config_id"],
            # another kind of CPU sums in another order: the same seed trains another model there
            "same_machine": machine_label(live) == machine_label(row),
            "stored_on": f"{machine_label(row)} ({row['precision']}, {int(row['threads'])} threads)",
            "live_on": f"{machine_label(live)} ({live['precision']}, {int(live['threads'])} threads)",
            "live_seconds": float(live["train_seconds"] + live["pretrain_seconds"]),
        }
    return pd.DataFrame(list(out.values()))


def machine_label(row: Mapping[str, Any]) -> str:
    """A stored run's device name with, for a CPU run, its kernel instruction sets: ``AMD EPYC [avx2 fma]``,
    or ``[sets not recorded]`` for a row written before they were."""
    if row["device"] != "cpu":
        return str(row["device_name"])
    kernels = row.get("cpu_kernels", "")
    kernels = kernels if isinstance(kernels, str) and kernels else "sets not recorded"
    return f"{row['device_name']} [{kernels}]"


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
