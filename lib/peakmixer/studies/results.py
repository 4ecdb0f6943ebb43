"""The results store read back: each study's rows, validated against the current code, for figures.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from peakmixer.attribution.run_scores import RunScoring
from peakmixer.config import MissingFile, apply_overrides, from_dict, load_yaml
from peakmixer.data.dataset import load
from peakmixer.paths import REPO_ROOT, RESULTS_DIR, STUDIES_DIR

# The studies behind Fig. 1, in the order their tables are read.
from peakmixer.studies.store import read_details, read_results, row_state
from peakmixer.studies.sweep import (
    SweepConfig,
    dataset_path,
    plan,
    run_identity,
    run_sweep,
    stage_configs,
    sweep_from_dict,
)
from peakmixer.studies.workers import run_workers

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
    profile and `recompute` do. A stored row the study now plans otherwise (its settings, code or data
    changed) is trained again and replaced (`run_sweep(replace_changed=True)`): updating the store means
    making it what the code computes."""

    def sweep(cfg: SweepConfig) -> pd.DataFrame:
        if workers > 1:
            return run_workers(cfg, workers, progress=progress, replace_changed=True)
        return run_sweep(cfg, progress=progress, replace_changed=True)

    tables = [sweep(cfg).assign(study=name) for name, cfg in studies.items()]
    rows = pd.concat(tables, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)
    return StoreView(rows.assign(valid=True, why=""), pd.DataFrame(columns=[*rows.columns]))


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


def outcomes_of(studies: Mapping[str, SweepConfig], rows: pd.DataFrame) -> pd.DataFrame:
    """The outcome per test spectrum of each valid row of `rows` that kept one, from its study's
    ``_spectra`` table (runs shared by several studies once)."""
    frames = [
        read_details(cfg.results_path, "spectra", rows_of(rows, cfg), key="config_id")
        for cfg in studies.values()
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(["run_id", "config_id", "spectrum"])
