"""Resumable sweeps: dataset x extractor width x mixer x mixer layers x seed, into one tidy table.

    python -m peakmixer sweep --config params/sweeps/example.yaml

Every run goes through the normal training path (`peakmixer.train.train`) in its own run directory.
A finished run has a row in ``results.csv`` and is skipped next time; a killed run resumes from its
``last.pt``. Datasets with ``protocol: pretrain_finetune`` follow Ho et al.: pre-train on the reference
split once per model, then fine-tune per seed on a fresh random train/validation split of the fine-tune
set, and test on the test split; the spread over seeds is the fine-tuning spread, as in their paper.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .config import ConfigError, apply_overrides, from_dict, load_yaml
from .data import file_sha256, load
from .metrics import main_metric
from .provenance import git_sha
from .train import TrainConfig, config_fingerprint, train

METRIC_COLUMNS = ("micro_f1", "macro_f1", "samples_f1", "hamming_accuracy", "emr", "accuracy")
COLUMNS = (
    "run_id",
    "config_id",
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
    "train_seconds",
    "spectra_per_second",
    *METRIC_COLUMNS,
    "all_negative_hamming_accuracy",
    "best_epoch",
    "best_val",
    "device",
    "precision",
    "git_sha",
)


@dataclass
class SweepDataset:
    name: str  # the dataset's name in the table and figures
    path: str  # a SpectraDataset file
    protocol: Literal["standard", "pretrain_finetune"] = "standard"
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides (the pre-train stage)
    finetune: dict[str, Any] = field(default_factory=dict)  # overrides of the fine-tune stage


@dataclass
class SweepConfig:
    datasets: list[SweepDataset] = field(default_factory=list)
    extractor: str = "respeak"
    widths: list[int] = field(default_factory=lambda: [32])
    blocks: int | None = None
    mixers: list[str] = field(default_factory=lambda: ["none", "mlp", "mlpmixer", "transformer"])
    mixer_layers: list[int] = field(default_factory=lambda: [4])  # for mlpmixer and transformer
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides for every run
    out_dir: str = "runs/sweep"


@dataclass(frozen=True)
class Run:
    """One cell of the sweep; `model_id` names the model, `run_id` the model and seed."""

    dataset: SweepDataset
    width: int
    blocks: int | None
    mixer: str
    layers: int
    seed: int

    @property
    def model_id(self) -> str:
        blocks = "" if self.blocks is None else f"x{self.blocks}"
        return f"{self.dataset.name}/w{self.width}{blocks}-{self.mixer}{self.layers}"

    @property
    def run_id(self) -> str:
        return f"{self.model_id}/seed{self.seed}"


# Ho et al.'s protocol for bacteria data (real or synthetic): pre-train on the reference split, fine-tune on
# the fine-tune split with a random 10% held out per seed, small batches and a lower learning rate.
HO_PROTOCOL: dict[str, Any] = {
    "protocol": "pretrain_finetune",
    "train": {"data": {"train_split": "reference", "val_split": "val"}},
    "finetune": {
        "data": {"train_split": "finetune", "val_fraction": 0.1},
        "optim": {"lr": 3e-4, "batch_size": 8},
    },
}
# The paper's recipes for the real datasets (UPSTREAM_SPEC §3, with one cosine period over the whole run
# instead of upstream's 10-epoch sawtooth); they override the sweep-wide training settings.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "synth-bac30": HO_PROTOCOL,
    "bacteria": HO_PROTOCOL
    | {
        "train": {
            "data": {"train_split": "reference", "val_fraction": 0.1},
            "optim": {"lr": 1e-3, "epochs": 50},
        }
    },
    "qm9s": {"train": {"optim": {"lr": 1e-4, "epochs": 200}}},
    # patience >= epochs: a warm restart lifts the rate back up, so early stopping would cut the recipe short
    "nist-ir": {
        "train": {
            "optim": {"lr": 2e-3, "epochs": 600, "scheduler": "cosine_restarts", "t_0": 40, "patience": 600}
        }
    },
}


def dataset_entry(name: str, path: str | Path) -> SweepDataset:
    """A sweep dataset with the protocol its name implies (Ho et al.'s for bacteria, else plain splits)."""
    return from_dict(SweepDataset, {"name": name, "path": str(path), **PROTOCOLS.get(name, {})})


def load_sweep(path: str | Path | None = None, overrides: list[str] | None = None) -> SweepConfig:
    data = load_yaml(path) if path else {}
    return from_dict(SweepConfig, apply_overrides(data, overrides or []))


def plan(cfg: SweepConfig) -> list[Run]:
    """All runs of the sweep in a stable order. `none` and `mlp` have no mixer layers to vary."""
    runs = []
    for ds in cfg.datasets:
        for width in cfg.widths:
            for mixer in cfg.mixers:
                layers = cfg.mixer_layers if mixer in ("mlpmixer", "transformer") else [0]
                for n in layers:
                    runs += [Run(ds, width, cfg.blocks, mixer, n, seed) for seed in cfg.seeds]
    return runs


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(cfg: SweepConfig, run: Run, stage: Literal["train", "finetune"], out: Path) -> TrainConfig:
    """The TrainConfig of one run (or one stage of a pre-train -> fine-tune run)."""
    model: dict[str, Any] = {"extractor": cfg.extractor, "mixer": run.mixer, "width": run.width}
    if run.blocks is not None:
        model["blocks"] = run.blocks
    if run.mixer in ("mlpmixer", "transformer"):
        model["mixer_layers"] = run.layers
    data = _merge(cfg.train, run.dataset.train)
    if stage == "finetune":
        data = _merge(data, run.dataset.finetune)
    data = _merge(
        data, {"model": model, "data": {"path": run.dataset.path}, "out_dir": str(out), "seed": run.seed}
    )
    return from_dict(TrainConfig, data)


def _row(cfg: SweepConfig, run: Run, summary: dict[str, Any], extra_seconds: float, synthetic: bool) -> dict:
    test = summary.get("test", {})
    spec = summary["model_spec"]
    return {
        "run_id": run.run_id,
        "dataset": run.dataset.name,
        "synthetic": synthetic,
        "task": summary["task"],
        "extractor": cfg.extractor,
        "width": run.width,
        "blocks": _blocks(spec),
        "mixer": run.mixer,
        "mixer_layers": spec["mlp_layers"] if run.mixer == "mlp" else run.layers,
        "seed": run.seed,
        "params": summary["params"],
        "macs": summary["macs"],
        "train_seconds": summary["train_seconds"] + extra_seconds,
        "spectra_per_second": summary["spectra_per_second"],
        **{m: test.get(m, np.nan) for m in METRIC_COLUMNS},
        "all_negative_hamming_accuracy": test.get("all_negative", {}).get("hamming_accuracy", np.nan),
        "best_epoch": summary["best_epoch"],
        "best_val": summary["best_val"],
        "config_id": summary["config_id"],
        "device": summary["device"],
        "precision": summary["precision"],
        "git_sha": git_sha(),
    }


def _blocks(spec: dict[str, Any]) -> int:
    if spec["blocks"] is not None:
        return spec["blocks"]
    return 6 if spec["extractor"] == "respeak" else 1


def read_results(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(COLUMNS))


def _append(path: Path, row: dict[str, Any]) -> None:
    """Add one row, rewriting the table atomically so a kill never leaves half a line."""
    table = pd.concat([read_results(path), pd.DataFrame([row])], ignore_index=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def run_sweep(cfg: SweepConfig, *, progress: bool = True) -> pd.DataFrame:
    """Run every planned run that has no row in ``out_dir/results.csv`` yet; returns the planned runs' rows.

    A row made with other settings or data (its ``config_id`` differs) is never reused: that is an error
    naming the run, so a changed budget cannot silently show old results.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    table = read_results(results)
    known = dict(zip(table["run_id"], table["config_id"], strict=True))
    runs = plan(cfg)
    hashes = data_hashes(cfg)
    synthetic = {ds.name: bool(load(ds.path).provenance.get("synthetic")) for ds in cfg.datasets}
    pretrain_seconds: dict[str, float] = {}
    for i, run in enumerate(runs):
        pre, tc = stage_configs(cfg, run, out)
        config_id = config_fingerprint(tc, hashes[run.dataset.name])
        if run.run_id in known:
            if known[run.run_id] != config_id:
                raise ConfigError(
                    f"{results} already holds {run.run_id} made with other settings or data; use another "
                    "out_dir, or delete that row and its run directory"
                )
            continue
        if progress:
            print(f"[sweep] {i + 1}/{len(runs)} {run.run_id}", flush=True)
        if pre is not None and run.model_id not in pretrain_seconds:
            pretrain_seconds[run.model_id] = float(train(pre, resume=True)["train_seconds"])
        summary = train(tc, resume=True)
        row = _row(cfg, run, summary, pretrain_seconds.get(run.model_id, 0.0), synthetic[run.dataset.name])
        _append(results, row)
    table = read_results(results)
    return table[table["run_id"].isin({r.run_id for r in runs})].reset_index(drop=True)


def stage_configs(cfg: SweepConfig, run: Run, out: Path) -> tuple[TrainConfig | None, TrainConfig]:
    """(pre-training config or None, the run's config). Pre-training is done once per model, with the
    sweep's first seed, and every seed's fine-tuning starts from its ``best.pt``."""
    tc = run_config(cfg, run, "train", out / "runs" / run.run_id)
    pre = None
    if run.dataset.protocol == "pretrain_finetune":
        first = Run(run.dataset, run.width, run.blocks, run.mixer, run.layers, cfg.seeds[0])
        pre = run_config(cfg, first, "train", out / "runs" / run.model_id / "pretrain")
        tc = run_config(cfg, run, "finetune", out / "runs" / run.run_id)
        tc.init_from = str(Path(pre.out_dir) / "best.pt")
        pre.progress = False
    tc.progress = False
    return pre, tc


# --- summaries and the verdict ---------------------------------------------------------------------


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per model: columns `<metric>_mean`, `<metric>_sd`, gmacs, params, n_seeds."""
    keys = ["dataset", "task", "extractor", "width", "blocks", "mixer", "mixer_layers"]
    metrics = [
        m
        for m in (*METRIC_COLUMNS, "all_negative_hamming_accuracy", "best_val")
        if m in table and table[m].notna().any()
    ]
    g = table.groupby(keys, sort=False)
    out = g.agg(params=("params", "first"), macs=("macs", "first"), n_seeds=("seed", "nunique")).reset_index()
    for m in metrics:
        out[f"{m}_mean"] = g[m].mean().values
        out[f"{m}_sd"] = g[m].std(ddof=1).values
    out["gmacs"] = out["macs"] / 1e9
    return out


def verdict(table: pd.DataFrame) -> str:
    """Which mixer is best at matched cost (same extractor width), by how much, and whether the gap
    exceeds the seed spread — computed from the table, one paragraph per dataset."""
    if table.empty:
        return "No finished runs: nothing to conclude."
    lines = []
    summary = summarize(table)
    for dataset, rows in summary.groupby("dataset", sort=False):
        metric = main_metric(rows["task"].iloc[0])
        mean, sd = f"{metric}_mean", f"{metric}_sd"
        wins: dict[str, int] = {}
        for width, at in rows.groupby("width", sort=True):
            # Each mixer's depth is chosen on validation, never on the test metric it is judged by.
            pick = "best_val_mean" if "best_val_mean" in at and at["best_val_mean"].notna().all() else mean
            best_per_mixer = at.loc[at.groupby("mixer")[pick].idxmax()].sort_values(mean, ascending=False)
            if len(best_per_mixer) < 2:
                continue
            first, second = best_per_mixer.iloc[0], best_per_mixer.iloc[1]
            gap = first[mean] - second[mean]
            spread = np.nanmax([first[sd], second[sd]])
            clear = "exceeds" if np.isfinite(spread) and gap > spread else "does not exceed"
            wins[first["mixer"]] = wins.get(first["mixer"], 0) + 1
            lines.append(
                f"{dataset}, width {width} ({first['gmacs']:.3f} GMACs): best mixer {first['mixer']} "
                f"({metric} {first[mean]:.4f} ± {_fmt(first[sd])}, n={first['n_seeds']}), ahead of "
                f"{second['mixer']} ({second[mean]:.4f} ± {_fmt(second[sd])}) by {gap:.4f}, which {clear} "
                f"the seed spread (largest sd {_fmt(spread)})."
            )
        if wins:
            tally = ", ".join(f"{m} {k}" for m, k in sorted(wins.items(), key=lambda kv: -kv[1]))
            lines.append(f"{dataset}: best mixer per width ({sum(wins.values())} widths): {tally}.")
    return "\n".join(lines) if lines else "Fewer than two mixers per width: no comparison possible."


def _fmt(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.4f}"


def data_hashes(cfg: SweepConfig) -> dict[str, str]:
    return {ds.name: file_sha256(ds.path) for ds in cfg.datasets}


# --- CLI -------------------------------------------------------------------------------------------


def _cli(args: argparse.Namespace) -> int:
    cfg = load_sweep(args.config, args.set)
    table = run_sweep(cfg)
    print(f"{len(table)} runs in {Path(cfg.out_dir) / 'results.csv'}")
    print(verdict(table))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="resumable extractor x mixer x seeds sweep into one table")
    p.add_argument("--config", required=True, help="sweep YAML (see params/sweeps/)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. seeds=[0,1]"
    )
    p.set_defaults(func=_cli)


__all__ = ["Run", "SweepConfig", "SweepDataset", "load_sweep", "plan", "run_sweep", "summarize", "verdict"]
