"""Calibration: how hard the embedded synthetic benchmarks are for the default training budget.

The default budget is the configs in ``params/train/`` (a small ResPeak + MLPMixer-2, 10 epochs). The
benchmarks' knobs were set so that it lands inside a target range (synth-ir17 micro-F1 0.80-0.97,
synth-bac30 accuracy 0.60-0.90), where mixer and interpretable-path differences can show. ``python -m
peakmixer calibrate --store`` trains it on each case of `CASES` and seed and writes
``results/calibration.csv``, one row per case, seed, stage and metric, from which the README's calibration
table is made (`readme_calibration`). synth-bac30 follows Ho et al.: pre-train on the reference "day"
(validation accuracy on that day, the split that chose the checkpoint), test on another day before and
after fine-tuning on a few spectra of that day. Beside each, a linear baseline (scikit-learn logistic
regression on standardised spectra) trained on the same spectra. A run that has finished before (same
config id) is reused, not trained again.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peakmixer.config import add_threads_argument
from peakmixer.data.dataset import DatasetError, SpectraDataset, file_sha256, load
from peakmixer.metrics import multilabel_metrics
from peakmixer.paths import DATA_DIR, REPO_ROOT, RESULTS_DIR, RUNS_DIR, TRAIN_PARAMS
from peakmixer.provenance import git_sha
from peakmixer.studies.store import write_tables
from peakmixer.synth.bac30 import Bac30Knobs
from peakmixer.synth.benchmarks import make_synth

STORE = RESULTS_DIR / "calibration.csv"
PARAMS = TRAIN_PARAMS
SEEDS = (0, 1, 2)
IR17_METRICS = ("micro_f1", "macro_f1", "emr", "hamming_accuracy")
BAC30_STAGES = (
    "pre-train, val (same day)",
    "before fine-tuning, test (other day)",
    "fine-tuned, test (other day)",
    "logistic regression, reference day",
    "logistic regression, + fine-tune spectra",
)
COLUMNS = ("case", "knobs", "seed", "stage", "metric", "value", "n", "seconds")


@dataclass(frozen=True)
class Case:
    """A benchmark and the knobs it is generated with (empty: the defaults)."""

    kind: str
    n: int
    knobs: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind}, n = {self.n}"

    @property
    def knob_text(self) -> str:
        if self.knobs:
            return ", ".join(f"{k} {v:g}" for k, v in self.knobs)
        if self.kind == "synth-bac30":  # say which value the default is
            default = {f.name: f.default for f in fields(Bac30Knobs)}["separation"]
            return f"defaults (separation {default:g})"
        return "defaults"


CASES = (
    Case("synth-ir17", 4000),
    Case("synth-bac30", 6000, (("separation", 1.0),)),
    Case("synth-bac30", 6000, (("separation", 2.0),)),
    Case("synth-bac30", 6000),
)


def case_data(case: Case, data_dir: Path) -> Path:
    """The case's dataset under `data_dir`, named by its knobs. Made afresh on every call: generation takes
    a second and is byte-for-byte deterministic (written atomically), so there is no stale cache to check."""
    tag = "".join(f"_{k}{v:g}" for k, v in case.knobs)
    path = data_dir / f"{case.kind}_calibration{tag}_n{case.n}_s0.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_synth(case.kind, case.n, 0, **dict(case.knobs)).save(path)
    return path


def _trained(config: str, data: Path, out: Path, extra: Sequence[str]) -> dict[str, Any]:
    """The default budget's `config` on `data`: trained, or its finished run reused (same config id)."""
    from peakmixer.train.config import load_config
    from peakmixer.train.identity import planned_config_id
    from peakmixer.train.loop import train

    cfg = load_config(PARAMS / config, [f"data.path={data}", *extra])
    cfg.progress = False
    # the config id has the seed: each seed its own run folder
    cfg.out_dir = str(out / f"{Path(config).stem}-{planned_config_id(cfg, load(data))}")
    metrics = Path(cfg.out_dir) / "metrics.json"
    done = json.loads(metrics.read_text()) if metrics.exists() else {"stopped": True}
    return (done if not done.get("stopped") else train(cfg, resume=True)) | {"out_dir": cfg.out_dir}


def linear_baseline(ds: SpectraDataset, train_splits: Sequence[str], test_split: str = "test") -> float:
    """Logistic regression on standardised spectra: micro-F1 (multilabel, one model per label) or accuracy
    on `test_split`, trained on `train_splits`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = np.concatenate([ds.splits[s] for s in train_splits])
    test = ds.splits[test_split]
    linear = LogisticRegression(max_iter=2000)
    if ds.task == "multilabel":
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(linear)).fit(ds.X[rows], ds.y[rows])
        pred = model.predict(ds.X[test]).astype(float)
        return float(multilabel_metrics(ds.y[test], pred, logits=False)["micro_f1"])
    model = make_pipeline(StandardScaler(), linear).fit(ds.X[rows], ds.y[rows])
    return float((model.predict(ds.X[test]) == ds.y[test]).mean())


def calibrate(
    cases: Sequence[Case] = CASES,
    seeds: Sequence[int] = SEEDS,
    *,
    data_dir: Path = DATA_DIR,
    runs_dir: Path = RUNS_DIR / "calibration",
    extra: Sequence[str] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """One row per case, seed, stage and metric (module docstring); `extra`: training-config overrides."""
    rows = []
    for case in cases:
        data = case_data(case, data_dir)
        ds = load(data)
        common = {"case": case.name, "knobs": case.knob_text, "data_sha256": file_sha256(data)}
        fitted: dict[str, tuple] = {}
        for seed in seeds:
            if progress:
                print(f"[calibrate] {case.name}, {case.knob_text}, seed {seed}", flush=True)
            for stage, metric, value, n, seconds, run in _measure(
                ds, data, runs_dir / data.stem, extra, seed, fitted
            ):
                made = {k: run.get(k, "") for k in ("config_id", "precision", "threads", "cpu", "torch")}
                measured = {"seed": seed, "stage": stage, "metric": metric, "value": value, "n": n}
                rows.append(common | measured | {"seconds": seconds} | made)
    return pd.DataFrame(rows).assign(git_sha=git_sha())


def _measure(
    ds: SpectraDataset, data: Path, out: Path, extra: Sequence[str], seed: int, fitted: dict[str, tuple]
) -> list[tuple]:
    """(stage, metric, value, spectra scored, seconds, run summary) of one case and seed; `fitted` holds the
    case's linear baselines once fitted."""
    extra = [*extra, f"seed={seed}"]

    def linear(stage: str, metric: str, splits: list[str]) -> tuple:
        # the linear baseline has no seed of its own (lbfgs is deterministic): fitted once per case
        if stage not in fitted:
            t0 = time.perf_counter()
            value = linear_baseline(ds, splits)
            fitted[stage] = (stage, metric, value, len(ds.splits["test"]), time.perf_counter() - t0, {})
        return fitted[stage]

    if ds.task == "multilabel":
        run = _trained("synth_ir17.yaml", data, out, extra)
        test, n = run["test"], run["test"]["n"]
        return [
            *(("default budget, test", m, test[m], n, run["train_seconds"], run) for m in IR17_METRICS),
            ("all-negative baseline, test", "hamming_accuracy", test["all_negative"]["hamming_accuracy"], n,
             0.0, run),
            linear("logistic regression", "micro_f1", ["train"]),
        ]  # fmt: skip
    pre = _trained("synth_bac30_pretrain.yaml", data, out, extra)
    best = Path(pre["out_dir"]) / "best.pt"
    fine = _trained("synth_bac30_finetune.yaml", data, out, [*extra, f"init_from={best}"])
    return [
        (BAC30_STAGES[0], "accuracy", pre["val"]["accuracy"], pre["val"]["n"], pre["train_seconds"], pre),
        (BAC30_STAGES[1], "accuracy", pre["test"]["accuracy"], pre["test"]["n"], 0.0, pre),
        (
            BAC30_STAGES[2],
            "accuracy",
            fine["test"]["accuracy"],
            fine["test"]["n"],
            fine["train_seconds"],
            fine,
        ),
        linear(BAC30_STAGES[3], "accuracy", ["reference"]),
        linear(BAC30_STAGES[4], "accuracy", ["reference", "finetune"]),
    ]


def read_calibration(path: Path) -> pd.DataFrame:
    """The stored calibration rows; a file without them is an error that names it."""
    t = pd.read_csv(path, dtype={"config_id": str, "threads": str}, keep_default_na=False)
    lacking = [c for c in COLUMNS if c not in t]
    if lacking:
        raise DatasetError(f"{path}: not a calibration table (no column {', '.join(lacking)})")
    return t


def readme_calibration(path: Path = STORE) -> str:
    """The README's calibration table, made from ``results/calibration.csv``: mean ± sd over seeds."""
    if not path.exists():
        return "No calibration in the store yet: `python -m peakmixer calibrate --store` makes it."
    t = read_calibration(path)
    trained = t[t["precision"] != ""]
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    seeds = sorted(t["seed"].unique().tolist())
    lines = [
        f"From `{shown}`, on **synthetic** data: mean ± sd over seeds {seeds} "
        f"({', '.join(sorted(set(trained['precision'])))}; {', '.join(sorted(set(trained['cpu'])))}). "
        "The linear baseline is trained on the same spectra as the network (for synth-bac30: on the "
        "reference day alone, and with the fine-tune spectra added, as the fine-tuned network sees them).",
        "",
        "| benchmark | knobs | default budget | linear baseline | training time per seed (threads) |",
        "|---|---|---|---|---|",
    ]
    for (case, knobs), part in t.groupby(["case", "knobs"], sort=False):
        lines.append(_table_row(path, case, knobs, part, several=len(seeds) > 1))
    return "\n".join(lines + ["", *_against_linear(t)])


def _against_linear(t: pd.DataFrame) -> list[str]:
    """Per case: the network minus the linear baseline trained on the same spectra, per seed."""
    pairs = {"default budget, test": "logistic regression", BAC30_STAGES[2]: BAC30_STAGES[4]}
    out = []
    for (case, knobs), part in t.groupby(["case", "knobs"], sort=False):
        metric = "micro_f1" if (part["metric"] == "micro_f1").any() else "accuracy"
        rows = part[part["metric"] == metric].set_index(["seed", "stage"])["value"]
        net, lin = next((a, b) for a, b in pairs.items() if a in part["stage"].values)
        diff = (rows.xs(net, level="stage") - rows.xs(lin, level="stage")).sort_index()
        per_seed = ", ".join(f"{d:+.3f}" for d in diff)
        out.append(
            f"- {case}, {knobs}: the network minus the linear baseline on the same spectra, {metric}: "
            f"{diff.mean():+.3f} (per seed {per_seed})."
        )
    return out


def _table_row(path: Path, case: str, knobs: str, part: pd.DataFrame, *, several: bool) -> str:
    agg = part.groupby(["stage", "metric"], sort=False)["value"].agg(["mean", "std"])
    took = part.groupby("stage", sort=False)["seconds"].mean()
    threads = ", ".join(sorted(set(part.loc[part["precision"] != "", "threads"])))

    def cell(stage: str, metric: str, bold: bool = False) -> str:
        if (stage, metric) not in agg.index:
            raise DatasetError(f"{path}: {case}, {knobs} has no {stage!r} {metric} row")
        mean, sd = agg.loc[(stage, metric)]
        text = f"{mean:.3f}" + (f" ± {sd:.3f}" if several else "")
        return f"**{text}**" if bold else text

    if part["stage"].str.startswith("default budget").any():
        stage = "default budget, test"
        result = (
            f"test micro-F1 {cell(stage, 'micro_f1', True)}, macro-F1 {cell(stage, 'macro_f1')}, EMR "
            f"{cell(stage, 'emr')}, Hamming accuracy {cell(stage, 'hamming_accuracy')} (all-negative "
            f"{cell('all-negative baseline, test', 'hamming_accuracy')})"
        )
        linear = f"micro-F1 {cell('logistic regression', 'micro_f1')}"
        time_text = f"{took[stage]:.0f} s"
    else:
        result = (
            f"val (same day) {cell(BAC30_STAGES[0], 'accuracy')}; test (other day) before fine-tuning "
            f"{cell(BAC30_STAGES[1], 'accuracy')}, fine-tuned {cell(BAC30_STAGES[2], 'accuracy', True)}"
        )
        linear = (
            f"{cell(BAC30_STAGES[3], 'accuracy')} (reference day), "
            f"{cell(BAC30_STAGES[4], 'accuracy')} (+ fine-tune spectra)"
        )
        time_text = f"{took[BAC30_STAGES[0]]:.0f} s + {took[BAC30_STAGES[2]]:.0f} s"
    test_n = int(part.loc[part["stage"].str.contains("test"), "n"].max())
    return f"| {case} ({test_n} test) | {knobs} | {result} | {linear} | {time_text} ({threads}) |"


def _cli(args: argparse.Namespace) -> int:
    table = calibrate(seeds=args.seeds)
    if args.store:
        write_tables({STORE: table})
        print(STORE)
    print(table[["case", "knobs", "seed", "stage", "metric", "value", "seconds"]].to_string(index=False))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="training seeds")
    p.add_argument("--store", action="store_true", help="also write results/calibration.csv (the README's)")
    add_threads_argument(p)
    p.set_defaults(func=_cli)
