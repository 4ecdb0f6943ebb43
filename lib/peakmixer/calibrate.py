"""Calibration: how hard the embedded synthetic benchmarks are for the default training budget.

The default budget is the configs in ``params/train/`` (a small ResPeak + MLPMixer-2, 10 epochs). The
benchmarks' knobs were set so that it lands inside a target range (synth-ir17 micro-F1 0.80-0.97,
synth-bac30 accuracy 0.60-0.90), where mixer and interpretable-path differences can show. ``python -m
peakmixer calibrate --store`` trains it on each case of `CASES` (seed 0) and writes
``results/calibration.csv``, one row per case, stage and metric, from which the README's calibration table
is made (`readme_calibration`). synth-bac30 follows Ho et al.: pre-train on the reference "day", test on
another day before and after fine-tuning on a few spectra of that day. Beside each, a linear baseline
(scikit-learn logistic regression on standardised spectra). A case whose run has finished before (same
config id) is reused, not trained again.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import SpectraDataset, file_sha256, load
from .metrics import multilabel_metrics
from .provenance import REPO_ROOT, git_sha
from .synth import make_synth

STORE = REPO_ROOT / "results" / "calibration.csv"
PARAMS = REPO_ROOT / "params" / "train"


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
        return ", ".join(f"{k} {v:g}" for k, v in self.knobs) or "defaults"


CASES = (
    Case("synth-ir17", 4000),
    Case("synth-bac30", 6000, (("separation", 1.0),)),
    Case("synth-bac30", 6000, (("separation", 2.0),)),
    Case("synth-bac30", 6000),  # the default separation (2.5)
)


def case_data(case: Case, data_dir: Path) -> Path:
    """The case's dataset under `data_dir`, named by its knobs. Made afresh on every call: generation takes
    a second and is byte-for-byte deterministic, so there is no stale cache to check."""
    tag = "".join(f"_{k}{v:g}" for k, v in case.knobs)
    path = data_dir / f"{case.kind}_calibration{tag}_n{case.n}_s0.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_synth(case.kind, case.n, 0, **dict(case.knobs)).save(path)
    return path


def _trained(config: str, data: Path, out: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The default budget's `config` on `data`: trained, or its finished run reused (same config id)."""
    from .train import load_config, planned_config_id, train

    cfg = load_config(PARAMS / config, [f"data.path={data}", *extra])
    cfg.progress = False
    cfg.out_dir = str(out / f"{Path(config).stem}-{planned_config_id(cfg, load(data))}")
    metrics = Path(cfg.out_dir) / "metrics.json"
    if metrics.exists() and not json.loads(metrics.read_text()).get("stopped"):
        return json.loads(metrics.read_text()) | {"out_dir": cfg.out_dir}
    return train(cfg, resume=True) | {"out_dir": cfg.out_dir}


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
    *,
    data_dir: Path = REPO_ROOT / "data",
    runs_dir: Path = REPO_ROOT / "runs" / "calibration",
    extra: Sequence[str] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """One row per case, stage and metric (module docstring); `extra`: training-config overrides (tests)."""
    rows = []
    for case in cases:
        if progress:
            print(f"[calibrate] {case.name}, {case.knob_text}", flush=True)
        data = case_data(case, data_dir)
        common = {"case": case.name, "knobs": case.knob_text, "data_sha256": file_sha256(data)}
        for stage, metric, value, seconds, run in _measure(case, data, runs_dir / data.stem, extra):
            made = {k: run.get(k, "") for k in ("config_id", "precision", "threads", "cpu", "torch")}
            rows.append(
                common | {"stage": stage, "metric": metric, "value": value, "seconds": seconds} | made
            )
    return pd.DataFrame(rows).assign(git_sha=git_sha())


def _measure(case: Case, data: Path, out: Path, extra: Sequence[str]) -> list[tuple]:
    """(stage, metric, value, seconds, run summary) of one case: the default budget and the linear one."""
    from .train import evaluate_checkpoint

    ds = load(data)

    def linear(stage: str, metric: str, splits: list[str]) -> tuple:
        t0 = time.perf_counter()
        return stage, metric, linear_baseline(ds, splits), time.perf_counter() - t0, {}

    if case.kind == "synth-ir17":
        run = _trained("synth_ir17.yaml", data, out, extra)
        test = run["test"]
        return [
            *(("default budget", m, test[m], run["train_seconds"], run) for m in IR17_METRICS),
            ("all-negative baseline", "hamming_accuracy", test["all_negative"]["hamming_accuracy"], 0.0, run),
            linear("logistic regression", "micro_f1", ["train"]),
        ]
    pre = _trained("synth_bac30_pretrain.yaml", data, out, extra)
    best = Path(pre["out_dir"]) / "best.pt"
    before = evaluate_checkpoint(best, "test", data_path=str(data))
    fine = _trained("synth_bac30_finetune.yaml", data, out, [*extra, f"init_from={best}"])
    return [
        ("pre-train (same day)", "accuracy", pre["val"]["accuracy"], pre["train_seconds"], pre),
        ("before fine-tuning (other day)", "accuracy", before["accuracy"], 0.0, pre),
        ("fine-tuned", "accuracy", fine["test"]["accuracy"], fine["train_seconds"], fine),
        linear("logistic regression, reference day", "accuracy", ["reference"]),
        linear("logistic regression, + fine-tune spectra", "accuracy", ["reference", "finetune"]),
    ]


IR17_METRICS = ("micro_f1", "macro_f1", "emr", "hamming_accuracy")


def readme_calibration(path: Path = STORE) -> str:
    """The README's calibration table, made from ``results/calibration.csv``."""
    if not path.exists():
        return "No calibration in the store yet: `python -m peakmixer calibrate --store` makes it."
    t = pd.read_csv(path, dtype={"config_id": str, "threads": str}, keep_default_na=False)
    trained = t[t["precision"] != ""]
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    lines = [
        f"From `{shown}` (seed 0; {', '.join(sorted(set(trained['precision'])))}; "
        f"{', '.join(sorted(set(trained['cpu'])))}, {', '.join(sorted(set(trained['threads'])))} threads):",
        "",
        "| benchmark | knobs | result (test split) | linear baseline | training time |",
        "|---|---|---|---|---|",
    ]
    for (case, knobs), part in t.groupby(["case", "knobs"], sort=False):
        v = {(r.stage, r.metric): r.value for r in part.itertuples(index=False)}
        took = part.groupby("stage", sort=False)["seconds"].first()
        if ("default budget", "micro_f1") in v:
            d = {m: v["default budget", m] for m in IR17_METRICS}
            result = (
                f"micro-F1 **{d['micro_f1']:.3f}**, macro-F1 {d['macro_f1']:.3f}, EMR {d['emr']:.3f}, "
                f"Hamming accuracy {d['hamming_accuracy']:.3f} (all-negative baseline "
                f"{v['all-negative baseline', 'hamming_accuracy']:.3f})"
            )
            linear = f"micro-F1 {v['logistic regression', 'micro_f1']:.3f}"
            time_text = f"{took['default budget']:.0f} s"
        else:
            pre, before = (
                v["pre-train (same day)", "accuracy"],
                v["before fine-tuning (other day)", "accuracy"],
            )
            result = (
                f"pre-train val {pre:.3f}, test before fine-tuning {before:.3f}; "
                f"fine-tuned **{v['fine-tuned', 'accuracy']:.3f}**"
            )
            linear = (
                f"{v['logistic regression, reference day', 'accuracy']:.3f} (reference day), "
                f"{v['logistic regression, + fine-tune spectra', 'accuracy']:.3f} (+ fine-tune spectra)"
            )
            time_text = f"{took['pre-train (same day)']:.0f} s + {took['fine-tuned']:.0f} s"
        lines.append(f"| {case} | {knobs} | {result} | {linear} | {time_text} |")
    return "\n".join(lines)


def _cli(args: argparse.Namespace) -> int:
    table = calibrate()
    if args.store:
        STORE.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(STORE, index=False)
        print(STORE)
    print(table[["case", "knobs", "stage", "metric", "value", "seconds"]].to_string(index=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="the default training budget on each synthetic benchmark case (difficulty)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--store", action="store_true", help="also write results/calibration.csv (the README's)")
    p.set_defaults(func=_cli)
