"""The results store's tables: one module for their columns, a typed reader, one locked and atomic writer
and the one rule that says whether a stored row is still valid.

    results/<study>.csv   one row per finished run, written only by `sweep.run_sweep`
    results/<study>.json  its sidecar: the sweep, the machine, the wall time, versions
    results/<study>_pairs.csv, _channels.csv   a scored study's detail: every run's attribution scores per
                          (spectrum, class) pair and map, and the channels each class owns (IP runs)

Every writer takes the table's lock (a hidden file beside it) and replaces the file atomically, so a kill
never leaves half a row and two processes never lose each other's rows; tables written together (the
sim-to-real tables, the calibration table) are replaced together under one lock (`write_tables`).
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from peakmixer.attribution.run_scores import SCORE_COLUMNS, RunScoring, scores_identity
from peakmixer.files import atomic, write_csvs

if TYPE_CHECKING:  # annotations only: the sweep writes through this module
    from peakmixer.studies.sweep import Run

METRIC_COLUMNS = ("micro_f1", "macro_f1", "samples_f1", "hamming_accuracy", "emr", "accuracy")
# One row per finished run: what it is, how it scored, how it ended, and where and with what it was made.
COLUMNS = (
    "run_id",
    "config_id",
    "init_id",
    "dataset",
    "synthetic",
    "task",
    "extractor",
    "width",
    "blocks",
    "mixer",
    "mixer_layers",
    "seed",
    "params",
    "macs",
    *METRIC_COLUMNS,
    "all_negative_hamming_accuracy",
    "best_epoch",
    "best_val",
    "epochs_run",
    "epoch_cap",
    "ended_by",
    "train_seconds",
    "pretrain_seconds",
    "spectra_per_second",
    "device",
    "device_name",
    "cpu_kernels",
    "precision",
    "threads",
    "torch",
    "data_sha256",
    "git_sha",
    "finished_at",
    # interpretable-path runs, and runs scored for their explanations (`scores` of the sweep)
    "ip_mode",
    "ip_channels",
    "pathway_pred_1",
    "pathway_pred_2",
    "pathway_pred_3",
    *SCORE_COLUMNS,
    "scores_id",
)
# Read as text whatever they look like: an all-digit id must not become an integer, nor "12e345" inf.
TEXT_COLUMNS = (
    "run_id",
    "config_id",
    "init_id",
    "dataset",
    "task",
    "extractor",
    "mixer",
    "ended_by",
    "device",
    "device_name",
    "cpu_kernels",
    "precision",
    "torch",
    "data_sha256",
    "git_sha",
    "finished_at",
    "ip_mode",
    "scores_id",
)


def row_state(config_id: str, scores_id: str, expected: str, scoring: RunScoring | None) -> tuple[str, str]:
    """The one rule for a stored row, as (state, why): ``valid`` when its config id is `expected` (what the
    code computes for its run on the row's own device type and precision, `run_identity`) and, for a scored
    study, its scores id is what the score code gives that run; ``other run`` when the id differs (trained
    with other settings, code or data); ``other scores`` when only the scores differ (its model can be
    scored again). `results.validate` counts the store with it; a sweep acts on it."""
    if config_id != expected:
        return "other run", f"config id {config_id} != {expected}: settings, code or data changed"
    if scoring is not None and scores_id != scores_identity(scoring, expected):
        return "other scores", "its attribution scores were made with other settings or score code"
    return "valid", ""


def run_row(run: Run, summary: dict[str, Any], pretrain_seconds: float, synthetic: bool, cap: int) -> dict:
    """The store's row of a finished run: what it is (run and config ids, model, seed), how it scores on the
    test split, what it cost, how it ended, and where and when it was made (`summary`: `train`'s)."""
    test = summary.get("test", {})
    spec = summary["model_spec"]
    return {
        "run_id": run.run_id,
        "config_id": summary["config_id"],
        "init_id": summary["init_id"],
        "dataset": run.dataset.name,
        "synthetic": synthetic,
        "task": summary["task"],
        "extractor": spec["extractor"],
        "width": run.width,
        "blocks": _blocks(spec),
        "mixer": run.mixer,
        "mixer_layers": spec["mlp_layers"] if run.mixer == "mlp" else run.layers,
        "seed": run.seed,
        "params": summary["params"],
        "macs": summary["macs"],
        **{m: test.get(m, np.nan) for m in METRIC_COLUMNS},
        "all_negative_hamming_accuracy": test.get("all_negative", {}).get("hamming_accuracy", np.nan),
        "best_epoch": summary["best_epoch"],
        "best_val": summary["best_val"],
        "epochs_run": summary["epochs_run"],
        "epoch_cap": cap,
        "ended_by": summary["ended_by"],
        "train_seconds": summary["train_seconds"],
        "pretrain_seconds": pretrain_seconds,
        "spectra_per_second": summary["spectra_per_second"],
        "device": summary["device"].split(":")[0],
        "device_name": summary["gpu"] or summary["cpu"],
        # empty for a GPU run, and for a run recorded before the key ("not recorded")
        "cpu_kernels": "" if summary["gpu"] else summary.get("cpu_kernels", ""),
        "precision": summary["precision"],
        "threads": summary["threads"],
        "torch": summary["torch"],
        "data_sha256": summary["data_hash"],
        "git_sha": summary["git_sha"],  # where and when the run was trained
        "finished_at": summary["finished_at"],
        "ip_mode": run.ip,
        "ip_channels": spec.get("ip", {}).get("channels", np.nan),
        **{f"pathway_{k}": v for k, v in test.get("pathways", {}).items()},
    }


def _blocks(spec: dict[str, Any]) -> int:
    if spec["blocks"] is not None:
        return spec["blocks"]
    return 6 if spec["extractor"] == "respeak" else 1


def read_results(path: str | Path) -> pd.DataFrame:
    """A results table (ids and names read as text), or an empty one with the store's columns."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values=[""])
    for c in TEXT_COLUMNS:
        if c in table:
            table[c] = table[c].fillna("")
    if (
        "ip_mode" in table
    ):  # rows written before the column existed had the path off (their config id says so)
        table["ip_mode"] = table["ip_mode"].replace("", "off")
    return table


def stored_ids(table: pd.DataFrame) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[str, str]]]:
    """Per stored run: its config id, its scores id, and the device type and precision it was made with."""
    known = dict(zip(table["run_id"], table["config_id"], strict=True))
    scored = dict(zip(table["run_id"], table["scores_id"], strict=True)) if "scores_id" in table else {}
    made_on = (
        dict(zip(table["run_id"], zip(table["device"], table["precision"], strict=True), strict=True))
        if {"device", "precision"} <= set(table)
        else {}
    )
    return known, scored, made_on


def append_row(path: Path, row: dict[str, Any]) -> bool:
    """Add one row unless the table already has that run (another process finished it meanwhile), under
    the table's lock, rewriting it atomically so a kill never leaves half a line; True when added."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_of(path)):
        old = read_results(path)
        if row["run_id"] in set(old["run_id"]):
            return False
        new = pd.DataFrame([row])
        table = new if old.empty else pd.concat([old, new], ignore_index=True)
        with atomic(path) as tmp:
            table.to_csv(tmp, index=False)
    return True


def replace_row(path: Path, run_id: str, values: dict[str, Any], *, whole: bool = False) -> None:
    """Set columns of one row (a run scored again; with `whole`, a run trained again: every column, those
    `values` lack emptied), in its place, under the table's lock (a row another worker appends meanwhile is
    kept), rewriting the table atomically."""
    with locked(lock_of(path)):
        table = read_results(path)
        at = table.index[table["run_id"] == run_id]
        if whole:
            for key in set(table) - set(values):
                table.loc[at, key] = "" if table[key].dtype == object else np.nan
        for key, value in values.items():
            if key not in table:  # a column newer than the table: text where the value is (not float NaN)
                table[key] = "" if isinstance(value, str) else np.nan
            table.loc[at, key] = value
        with atomic(path) as tmp:
            table.to_csv(tmp, index=False)


def drop_rows(path: Path, run_ids: list[str]) -> int:
    """Remove runs from a results table and its detail tables (a row to be made again from scratch: the
    sweep then makes it as if it had never been stored), under the tables' locks, atomically; the number of
    rows removed."""
    with locked(lock_of(path)):
        table = read_results(path)
        keep = ~table["run_id"].isin(run_ids)
        with atomic(path) as tmp:
            table[keep].to_csv(tmp, index=False)
    for kind in ("pairs", "channels"):
        if detail_table(path, kind).exists():
            for run_id in run_ids:
                replace_run_rows(detail_table(path, kind), run_id, pd.DataFrame())
    return int((~keep).sum())


def detail_table(results: Path, kind: str) -> Path:
    """A study's detail table beside its results table: ``<study>_pairs.csv`` or ``_channels.csv`` (a scored
    study's attribution details), ``_spectra.csv`` (each run's outcome per test spectrum)."""
    return results.with_name(f"{results.stem}_{kind}.csv")


def replace_run_rows(path: Path, run_id: str, frame: pd.DataFrame) -> None:
    """Replace one run's rows of a detail table with `frame` (none: its rows dropped), under the table's lock,
    atomically; numbers to 6 significant digits (scores, not identities)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_of(path)):
        old = pd.read_csv(path, dtype={"run_id": str, "scores_id": str}) if path.exists() else pd.DataFrame()
        keep = old[old["run_id"] != run_id] if not old.empty else old
        parts = [t for t in (keep, frame) if not t.empty]
        table = pd.concat(parts, ignore_index=True) if parts else keep
        with atomic(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")


def append_rows(path: Path, frame: pd.DataFrame, *, key: list[str]) -> None:
    """Add rows to a small keyed table (a row whose `key` columns are already there is not added again),
    under the table's lock, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_of(path)):
        old = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
        if not old.empty:
            seen = set(map(tuple, old[key].astype(str).to_numpy()))
            frame = frame[[tuple(map(str, r)) not in seen for r in frame[key].to_numpy()]]
        table = pd.concat([t for t in (old, frame) if not t.empty], ignore_index=True)
        with atomic(path) as tmp:
            table.to_csv(tmp, index=False)


def read_details(results: Path, kind: str, valid: pd.DataFrame, *, key: str = "scores_id") -> pd.DataFrame:
    """The detail rows of the `valid` results rows (same run and `key`: the scores id of attribution
    details, the config id of test outcomes), or an empty frame."""
    path = detail_table(results, kind)
    if not path.exists() or valid.empty:
        return pd.DataFrame()
    table = pd.read_csv(
        path, dtype={"run_id": str, key: str, "rule": str}, keep_default_na=False, na_values=[""]
    )
    if "rule" in table:
        table["rule"] = table["rule"].fillna("")  # "" for all channels: no rule
    keys = valid[["run_id", key]].drop_duplicates()
    return table.merge(keys, on=["run_id", key], how="inner")


def write_tables(frames: dict[Path, pd.DataFrame]) -> list[Path]:
    """Replace whole tables that belong together (the calibration table), under the first one's lock and
    atomically, all or none: a crash leaves them agreeing, a second writer waits."""
    first = next(iter(frames))
    first.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_of(first)):
        return write_csvs(frames)


def lock_of(table: Path) -> Path:
    """The lock file of a results table (beside it, hidden)."""
    return table.with_name(f".{table.name}.lock")


@contextmanager
def locked(lock: Path):
    """An exclusive lock on `lock` (a file) for the block; other processes wait for it."""
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
