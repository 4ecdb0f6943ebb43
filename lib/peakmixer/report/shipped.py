"""The shipped models (``models/``): a stored run exported small, with a card saying how it was made and how
it scores — on its synthetic test split over seeds, and on real spectra against a plain baseline.

    python -m peakmixer ship --study ip_table1 --run synth-ir17/w64x6-mlpmixer4-iptrainable/seed0 \\
        --name synth-ir17_ip --real nist-jcamp=DIR_OF_JDX_WITH_molecules.csv --real multimodal=FILE.parquet

writes ``models/<name>.pt`` (`train.export_model`: fp16 weights, its run identity), the same model as ONNX
(``<name>.onnx``, fp32, and ``<name>.int8.onnx``, static int8; `deploy.onnx_export`, each checked when
written), ``models/<name>.md`` (the card) and ``models/<name>.json`` (the card's numbers). ``ship --onnx-only
--name NAME`` writes the ONNX files of a shipped model again and updates its card. Real spectra are
labelled from their SMILES with the model's label set (`labels nist17` for the IR model), imported onto the
model's input axis as `explain` does.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from peakmixer.config import ConfigError, MissingFile
from peakmixer.data.dataset import DatasetError
from peakmixer.deploy.onnx_export import ExportRefused, describe_allowed, export_onnx, quantize_int8
from peakmixer.files import write_text
from peakmixer.metrics import compute_metrics
from peakmixer.models import profile_model
from peakmixer.paths import MODELS_DIR
from peakmixer.report.explain import Explainer
from peakmixer.studies.results import load_study, read_store
from peakmixer.studies.sim2real import RealSet, import_real
from peakmixer.studies.spot_check import find_run
from peakmixer.studies.sweep import dataset_path, stage_configs
from peakmixer.synth.benchmarks import model_data
from peakmixer.train.checkpoint import export_model, load_checkpoint


def score_real(ex: Explainer, real: RealSet, labels: str) -> dict[str, Any]:
    """Metrics of the model on real spectra labelled from SMILES, beside the prevalence baseline (every
    label present in at least half of these spectra is predicted for all of them)."""
    ds, refused = import_real(real, labels)
    ds, X = ex.inputs(ds, name=real.name)
    if list(ds.label_names) != ex.names:
        raise DatasetError(f"{real.name}: labels {ds.label_names[:3]}... are not the model's")
    with torch.no_grad():
        logits = ex.model(X).float().numpy()
    y = np.asarray(ds.y)
    model = compute_metrics("multilabel", y, logits, label_names=ex.names)
    baseline_pred = np.tile(y.mean(0) >= 0.5, (len(y), 1))
    base = compute_metrics("multilabel", y, np.where(baseline_pred, 10.0, -10.0), label_names=ex.names)
    keys = ("micro_f1", "macro_f1", "emr", "hamming_accuracy")
    support = {n: int(s) for n, s in zip(ex.names, y.sum(0), strict=True) if s}
    return {
        "name": real.name,
        "spectra": len(ds),
        "refused": refused,
        "model": {k: model[k] for k in keys},
        "prevalence_baseline": {k: base[k] for k in keys},
        "per_label_f1": {n: model["per_label"][n]["f1"] for n in support},
        "support": support,
    }


def ship(
    study: str,
    run_id: str,
    name: str,
    *,
    real: list[RealSet] = (),
    labels: str = "nist17",
    studies_dir: Path | None = None,
    models_dir: Path = MODELS_DIR,
) -> Path:
    """Export a stored run of `study` to ``models/<name>.pt`` with its card (``.md``; numbers: ``.json``)."""
    cfg = load_study(study, **({"studies_dir": studies_dir} if studies_dir else {}))
    store = read_store({study: cfg})
    rows = store.rows
    row = rows[rows["run_id"] == run_id]
    if row.empty:
        raise ConfigError(f"{run_id}: no valid row in the {study} store")
    row = row.iloc[0]
    _, run = find_run({study: cfg}, run_id)
    _, tc = stage_configs(cfg, run, dataset_path(cfg, run.dataset))
    best = Path(tc.out_dir) / "best.pt"
    if load_checkpoint(best).get("config_id") != row["config_id"]:
        raise ConfigError(f"{best} is not the stored run {run_id} (another config id): retrain it first")
    out = export_model(best, Path(models_dir) / f"{name}.pt")
    ex = Explainer.load(out)
    cost = profile_model(ex.model)
    card = {
        "name": name,
        "file": out.name,
        "size_mb": round(out.stat().st_size / 1e6, 2),
        "made": datetime.now(UTC).strftime("%Y-%m-%d"),
        "model": row["run_id"],
        "params": int(cost["params"]),
        "macs": float(cost["macs"]),
        "study": study,
        "command": f"python -m peakmixer sweep --config params/sweeps/{study}.yaml",
        "config_id": row["config_id"],
        "git_sha": row["git_sha"],
        "trained_on": {
            "device": row["device_name"],
            "precision": row["precision"],
            "threads": int(row["threads"]),
            "epochs_run": int(row["epochs_run"]),
            "ended_by": row["ended_by"],
            "finished_at": row["finished_at"],
        },
        "data": {
            "dataset": row["dataset"],
            "sha256": row["data_sha256"],
            "synthetic": bool(row["synthetic"]),
        },
        "labels": ex.names,
        "preprocess": ex.preprocess,
        "real": [score_real(ex, r, labels) for r in real],
        "training_config": yaml.safe_load((Path(tc.out_dir) / "config.yaml").read_text()),
    }
    card |= from_store(card, rows) | {"onnx": ship_onnx(out)}
    write_text(Path(models_dir) / f"{name}.json", json.dumps(card, indent=1, default=str) + "\n")
    write_text(Path(models_dir) / f"{name}.md", card_text(card))
    return out


def ship_onnx(shipped: Path) -> dict[str, Any]:
    """``NAME.onnx`` and ``NAME.int8.onnx`` beside the shipped ``NAME.pt``, checked on the test split of the
    data it was trained on; what the card says of them. An int8 file whose check fails is not written (an
    older one is removed, so none contradicts its card), and the card says why."""
    data = model_data(shipped)
    fp32, int8 = shipped.with_suffix(".onnx"), shipped.with_suffix(".int8.onnx")
    out = {"fp32": {"file": fp32.name} | asdict(export_onnx(shipped, fp32, data))}
    out["fp32"]["size_mb"] = round(fp32.stat().st_size / 1e6, 2)
    try:
        out["int8"] = {"file": int8.name} | asdict(quantize_int8(shipped, int8, data))
        out["int8"]["size_mb"] = round(int8.stat().st_size / 1e6, 2)
    except ExportRefused as e:
        int8.unlink(missing_ok=True)
        out["int8"] = {"file": None, "refused": str(e)}
    return out


def add_onnx_to_card(name: str, models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """Write the ONNX files of the shipped model `name` again and put what they are into its card."""
    path = Path(models_dir) / f"{name}.json"
    if not path.exists():
        raise MissingFile(f"{path}: no shipped model {name!r} (its card is missing)")
    card = json.loads(path.read_text()) | {"onnx": ship_onnx(path.with_suffix(".pt"))}
    write_text(path, json.dumps(card, indent=1, default=str) + "\n")
    write_text(path.with_suffix(".md"), card_text(card))
    return card["onnx"]


# What a card reads from its stored row (and from the model's other seeds), kept current by `refresh_card`.
CARD_SCORES = (
    "infidelity_mean",
    "infidelity_share_mean",
    "sensitivity_mean",
    "mass_accuracy_specific",
    "mass_accuracy_all",
    "mask_fraction",
)


def from_store(card: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """The card's numbers from the valid stored rows: its run's test metric and attribution scores and the
    spread over the model's seeds; ``stored`` False (and no numbers) when the store no longer holds the
    run these weights come from (another config id, or the run made again elsewhere or later)."""
    row = rows[rows["run_id"] == card["model"]]
    made = card["trained_on"].get("finished_at")
    if row.empty or row["config_id"].iloc[0] != card["config_id"] or row["finished_at"].iloc[0] != made:
        return {"stored": False, "test": {}, "attribution": {}}
    row = row.iloc[0]
    metric = "micro_f1" if row["task"] == "multilabel" else "accuracy"
    model_id = card["model"].rsplit("/", 1)[0]
    seeds = rows[rows["run_id"].str.rsplit("/", n=1).str[0] == model_id]  # this model, every seed
    scores = {k: float(row[k]) for k in CARD_SCORES if k in row and row[k] == row[k]}
    return {
        "stored": True,
        "test": {"metric": metric, "this_run": float(row[metric])} | _spread(seeds, metric),
        "attribution": scores,
    }


def card_paths(models_dir: Path = MODELS_DIR) -> list[Path]:
    """Every shipped model's card (its JSON numbers)."""
    return sorted(Path(models_dir).glob("*.json"))


def refresh_card(path: Path, *, write: bool = True, studies_dir: Path | None = None) -> bool:
    """Bring a card's store numbers (and its Markdown) up to date with the committed store; True when they
    change. Without `write`, only say whether they would (the check of `results --check`)."""
    card = json.loads(path.read_text())
    cfg = load_study(card["study"], **({"studies_dir": studies_dir} if studies_dir else {}))
    store = read_store({card["study"]: cfg}, allow_missing=True)
    new = card | from_store(card, store.rows)
    text = card_text(new)
    markdown = path.with_suffix(".md")
    changed = new != card or not markdown.exists() or markdown.read_text() != text
    if changed and write:
        write_text(path, json.dumps(new, indent=1, default=str) + "\n")
        write_text(markdown, text)
    return changed


def _spread(rows: pd.DataFrame, metric: str) -> dict[str, Any]:
    v = rows[metric].astype(float)
    return {
        "seeds": sorted(int(s) for s in rows["seed"]),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)),
    }


def card_text(card: dict[str, Any]) -> str:
    """The model card in Markdown, from the card's numbers (made by `ship`, never typed)."""
    t = card["test"]
    lines = [
        f"# {card['name']} — {card['model']}",
        "",
        f"`{card['file']}` ({card['size_mb']} MB, fp16 weights; {card['params'] / 1e6:.2f} M parameters, "
        f"{card['macs'] / 1e9:.3f} GMACs per spectrum). Made {card['made']} by `python -m peakmixer ship` "
        f"from the results store; load it with `train.loop.model_from_checkpoint` (weights only).",
        "",
        "## How it was trained",
        "",
        f"- Command: `{card['command']}` (run `{card['model']}`, config id `{card['config_id']}`, git "
        f"`{card['git_sha'][:12]}`).",
        f"- On {card['trained_on']['device']}, {card['trained_on']['precision']}, "
        f"{card['trained_on']['threads']} thread(s); {card['trained_on']['epochs_run']} epochs, ended by "
        f"{card['trained_on']['ended_by'].replace('_', ' ')}.",
        f"- Data: `{card['data']['dataset']}`"
        + (" (**synthetic**: generated by `synth.benchmarks`)" if card["data"]["synthetic"] else "")
        + f", sha256 `{card['data']['sha256'][:16]}…`. Classes: {', '.join(card['labels'])}.",
        "",
        "## How it scores",
        "",
    ]
    if not card.get("stored", True) or not t:
        lines.append(
            "- **The results store no longer holds the run these weights come from** "
            f"(`{card['study']}`: its row was made again, or is not valid with today's code): ship the "
            "stored run again (`python -m peakmixer ship`). No test or attribution numbers are shown for it."
        )
    else:
        lines.append(
            f"- From the results store (`results/{card['study']}.csv`). "
            f"{'Synthetic test' if card['data']['synthetic'] else 'Test'} split, {t['metric']}: this run "
            f"{t['this_run']:.4f}; the study's seeds {t['seeds']}: {t['mean']:.4f}"
            + (f" ± {t['sd']:.4f}." if t["sd"] == t["sd"] else " (one seed).")
        )
    if card.get("attribution"):
        lines.append(
            "- Grad-CAM on the test split (class-specific unless named; infidelity share = infidelity / "
            "E[Δf²], the part that measures the map): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in card["attribution"].items())
            + "."
        )
    if card["real"]:
        lines += [
            "",
            "### On real spectra (labels from SMILES; never used in training or tuning)",
            "",
            "| set | spectra (refused) | micro-F1 | macro-F1 | EMR | Hamming accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for r in card["real"]:
            for who, m in (("model", r["model"]), ("prevalence baseline", r["prevalence_baseline"])):
                lines.append(
                    f"| {r['name']}: {who} | {r['spectra']} ({r['refused']}) | {m['micro_f1']:.3f} | "
                    f"{m['macro_f1']:.3f} | {m['emr']:.3f} | {m['hamming_accuracy']:.3f} |"
                )
        lines += [
            "",
            "The prevalence baseline predicts, for every spectrum, each label present in at least half of "
            "the set. Per-label F1 on real spectra (support in brackets): "
            + "; ".join(
                f"{r['name']}: "
                + ", ".join(f"{n} {f:.2f} ({r['support'][n]})" for n, f in r["per_label_f1"].items())
                for r in card["real"]
            )
            + ".",
        ]
    else:
        lines += ["", "No real spectra of these classes were available to score it."]
    lines += _onnx_lines(card.get("onnx"))
    lines += [
        "",
        "## Limits",
        "",
        (
            "Trained on synthetic spectra only: read its explanations of real spectra as those of a model "
            "that has never seen one. "
            if card["data"]["synthetic"]
            else ""
        )
        + _input_text(card.get("preprocess")),
        "",
    ]
    return "\n".join(lines)


def _input_text(preprocess: dict[str, Any] | None) -> str:
    """What the card says a spectrum must be before the model sees it."""
    if not preprocess:
        return "It expects spectra on (or resampled onto) its input axis, min-max normalised."
    steps = " -> ".join(s["step"] for s in preprocess["steps"])
    return (
        f"Its training data went through the preprocessing pipeline `{preprocess.get('name') or 'custom'}` "
        f"({steps}); `evaluate`, `explain` and `predict` put raw spectra through it themselves."
    )


def _onnx_lines(onnx: dict[str, Any] | None) -> list[str]:
    """The card's deployment section: the ONNX files and how each was checked when written."""
    if not onnx:
        return []
    f, q = onnx["fp32"], onnx["int8"]
    lines = [
        "",
        "## ONNX (runs without torch: `python -m peakmixer predict FILES --model models/"
        f"{q['file'] or f['file']}`)",
        "",
        f"- `{f['file']}` ({f['size_mb']} MB, fp32 arithmetic; weights stored as the fp16 values above): "
        f"largest |logit difference| to torch {f['max_abs_logit_diff']:.2g} on the {f['n_spectra']} "
        f"{f['split']} spectra (allowed 1e-4).",
    ]
    if q["file"] is None:
        return [*lines, f"- No int8 file: its check refused it ({q['refused']})."]
    return [
        *lines,
        f"- `{q['file']}` ({q['size_mb']} MB, static int8, per-channel 7-bit weights, the first and last "
        f"products fp32): {q['metric']} on the "
        f"{q['n_spectra']} {q['split']} spectra {q['int8']:.4f} against fp32's {q['fp32']:.4f} "
        f"({q['change']:+.4f}; allowed {describe_allowed(q['metric'], q['n_spectra'], q['bound'])}); the "
        f"same prediction for {q['agreement']:.1%} of them. Measured when written; 7-bit weights keep a CPU "
        "without VNNI from saturating its int8 sums.",
    ]


def _cli(args: argparse.Namespace) -> int:
    if args.onnx_only:
        for k, v in add_onnx_to_card(args.name).items():
            print(f"{MODELS_DIR / v['file']} ({v['size_mb']} MB, {k})" if v["file"] else v["refused"])
        return 0
    if not (args.study and args.run):
        raise ConfigError("ship needs --study and --run (or --onnx-only --name NAME)")
    out = ship(
        args.study, args.run, args.name, real=[RealSet.parse(r) for r in args.real], labels=args.labels
    )
    print(f"{out} ({out.stat().st_size / 1e6:.2f} MB), card {out.with_suffix('.md')}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", help="the study whose store holds the run (params/sweeps/)")
    p.add_argument("--run", help="its run id, e.g. synth-ir17/w64x6-mlpmixer4-iptrainable/seed0")
    p.add_argument(
        "--onnx-only", action="store_true", help="only write the ONNX files of shipped model --name again"
    )
    p.add_argument("--name", required=True, help="file name in models/ (without extension)")
    p.add_argument("--real", action="append", default=[], metavar="NAME=PATH", help="real spectra to score")
    p.add_argument("--labels", default="nist17", help="label set of the real spectra (from their SMILES)")
    p.set_defaults(func=_cli)
