"""The README's results section (Fig. 1), made from the committed store alone."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from peakmixer.metrics import main_metric

# The studies behind Fig. 1, in the order their tables are read.
from peakmixer.studies.claims import bottleneck_table, claims, study_facts, summarize, verdict_text
from peakmixer.studies.results import FIG1_STUDIES, StoreView, load_study, outcomes_of, read_store, rows_of
from peakmixer.studies.store import read_results
from peakmixer.studies.sweep import SweepConfig, plan

# --- rows per figure, and the README's results section --------------------------------------------------


def panel_rows(rows: pd.DataFrame, mixer_layers: int) -> pd.DataFrame:
    """Rows of panels a-c and of the verdict: no mixer, the MLP, and MLPMixer / Transformer at one depth."""
    keep = rows["mixer"].isin(["none", "mlp"]) | (rows["mixer_layers"] == mixer_layers)
    return rows[keep].reset_index(drop=True)


def fmt_mean_sd(mean: float, sd: float, n: int) -> str:
    return f"{mean:.4f}" if n < 2 or not np.isfinite(sd) else f"{mean:.4f} ± {sd:.4f}"


NO_RUNS = "No finished run in the results store yet: make them with `./run_all.sh --profile full`."


def fig1_rows(
    studies: Mapping[str, SweepConfig], *, grid_study: str = "fig1d_grid", mixer_layers: int = 4
) -> tuple[StoreView, dict[str, dict[str, Any]], pd.DataFrame]:
    """The store of Fig. 1's studies, each dataset's facts, and the valid rows of panels a-c (the main
    mixers at `mixer_layers`, each run once)."""
    store = read_store(studies, allow_missing=True)
    facts = study_facts(studies)
    if store.rows.empty:
        return store, facts, store.rows
    main = panel_rows(
        pd.concat([rows_of(store.rows, cfg) for name, cfg in studies.items() if name != grid_study]),
        mixer_layers,
    ).drop_duplicates("run_id")
    return store, facts, main


def _verdict(
    main: pd.DataFrame, facts: Mapping[str, Mapping[str, Any]], mixer_layers: int, outcomes: pd.DataFrame
) -> str:
    classes = {k: f["classes"] for k, f in facts.items()}
    claim_table = claims(main, classes, mixer_layers=mixer_layers, outcomes=outcomes)
    return verdict_text(claim_table, synthetic=[k for k, f in facts.items() if f["synthetic"]])


def readme_results(
    studies: Mapping[str, SweepConfig] | None = None, *, grid_study: str = "fig1d_grid", mixer_layers: int = 4
) -> str:
    """The README's "Results" section, made from the committed store alone (valid rows only)."""
    studies = dict(studies or {name: load_study(name) for name in FIG1_STUDIES})
    store, facts, main = fig1_rows(studies, grid_study=grid_study, mixer_layers=mixer_layers)
    if main.empty:
        return NO_RUNS
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
    out += [
        "",
        "**Verdict** (computed from the rows above):",
        "",
        "```",
        _verdict(main, facts, mixer_layers, outcomes_of(studies, main)),
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
