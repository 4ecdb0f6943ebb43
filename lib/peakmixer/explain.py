"""`python -m peakmixer explain FILE…`: a trained model's predictions and Grad-CAM for a user's own spectra.

    python -m peakmixer explain spectra/*.jdx --out explained/          # the shipped IR model
    python -m peakmixer explain --checkpoint runs/mine/best.pt my.spc --out explained/

Every file any importer reads (JCAMP-DX, SPC, csv, parquet, npy) is resampled onto the model's input axis
(refused when it covers less than 80% of it) and normalised as the importers do (min-max per spectrum). For
each spectrum: the class probabilities, and for each predicted class (probability >= the threshold; the most
likely class when none is) a Grad-CAM figure over all channels and, with an interpretable path, over the
class-specific ones, with the textbook bands of the group boxed. One PNG and one JSON per spectrum, a
summary table (``summary.csv``) and ``report.json`` with every refused file and its reason.

Exit status: 0 when every spectrum was explained, 1 when some file or spectrum was refused (the others are
still explained), 2 when nothing could be explained or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .cam import cams_for, subsets_of
from .config import from_dict
from .io.batch import Rejection, _expand, read_spectra
from .provenance import REPO_ROOT
from .synth import textbook_bands
from .train import TrainConfig, checkpoint_axis, load_checkpoint, model_from_checkpoint, normalize
from .viz import plot_cam_grid, save_figure

SHIPPED = {
    "ir": REPO_ROOT / "models" / "synth-ir17_ip.pt",
    "raman": REPO_ROOT / "models" / "synth-bac30_ip.pt",
}


@dataclass
class Explained:
    """What `explain_files` did: one summary row per explained spectrum, and what it refused."""

    summary: pd.DataFrame
    rejected: list[Rejection] = field(default_factory=list)
    out_dir: Path = Path(".")

    @property
    def exit_code(self) -> int:
        if self.summary.empty:
            return 2
        return 1 if self.rejected else 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "spectrum"


def explain_files(
    files: list[str | Path],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    threshold: float = 0.5,
    layer: str = "stem",
    min_coverage: float = 0.8,
) -> Explained:
    """Explain every readable spectrum in `files` with the model of `checkpoint` (default: the shipped IR
    model) into `out_dir`; see the module docstring for what is written."""
    path = Path(checkpoint) if checkpoint else SHIPPED["ir"]
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: checkpoint not found" + ("" if checkpoint else " (the shipped model)")
        )
    ckpt = load_checkpoint(path)
    cfg = from_dict(TrainConfig, ckpt["config"])
    model = model_from_checkpoint(ckpt).eval()
    axis, names, task = checkpoint_axis(ckpt), list(ckpt["label_names"]), ckpt["task"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = read_spectra(_expand(files, set()), axis, normalize="minmax", min_coverage=min_coverage)
    rows = []
    if read.rows:
        X = torch.from_numpy(normalize(np.stack(read.rows), cfg.data.normalize).astype(np.float32)).unsqueeze(
            1
        )
        with torch.no_grad():
            logits = model(X).float()
        probs = (torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, 1)).numpy()
        subsets = [s for s in subsets_of(model) if s != "complement"]
        note = " (a model trained on synthetic spectra)" if ckpt.get("synthetic_data") else ""
        for i, sid in enumerate(read.ids):
            p = probs[i]
            chosen = np.flatnonzero(p >= threshold) if task == "multilabel" else np.array([int(p.argmax())])
            if chosen.size == 0:
                chosen = np.array([int(p.argmax())])  # nothing above the threshold: the most likely class
            chosen = chosen[np.argsort(-p[chosen])]
            pairs = [(i, int(k)) for k in chosen]
            cams = cams_for(model, X, pairs, subsets=subsets, layer=layer)
            labels = [(i, k, f"{names[k]}\np = {p[k]:.2f}") for _, k in pairs]
            fig = plot_cam_grid(
                axis,
                {i: X[i, 0].numpy()},
                labels,
                cams,
                subsets=subsets,
                bands={k: textbook_bands(names[k]) for _, k in pairs},
                title=f"{sid} — {path.name}{note}",
            )
            stem = _slug(sid)
            predictions = {names[k]: float(p[k]) for k in np.argsort(-p)}
            save_figure(
                fig,
                out,
                stem,
                params={"checkpoint": str(path), "threshold": threshold, "layer": layer},
                data={},
                synthetic=False,
                formats=("png",),
                extra={
                    "spectrum": sid,
                    "coverage": read.coverage[i],
                    "explained_classes": [names[k] for _, k in pairs],
                    "probabilities": predictions,
                    "model_config_id": ckpt.get("config_id"),
                },
            )
            plt.close(fig)
            rows.append(
                {
                    "spectrum": sid,
                    "figure": f"{stem}.png",
                    "predicted": "; ".join(
                        names[k] for _, k in pairs if p[k] >= threshold or task != "multilabel"
                    ),
                    "top_class": names[int(p.argmax())],
                    "top_probability": float(p.max()),
                    "coverage": read.coverage[i],
                }
            )
    summary = pd.DataFrame(
        rows, columns=["spectrum", "figure", "predicted", "top_class", "top_probability", "coverage"]
    )
    summary.to_csv(out / "summary.csv", index=False)
    report = {
        "checkpoint": str(path),
        "explained": len(rows),
        "refused": [{"source": r.source, "reason": r.reason} for r in read.rejected],
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return Explained(summary, read.rejected, out)


def _cli(args: argparse.Namespace) -> int:
    done = explain_files(
        args.files, args.out, checkpoint=args.checkpoint, threshold=args.threshold, layer=args.layer
    )
    for r in done.summary.itertuples(index=False):
        print(f"{r.spectrum}: {r.predicted or '(none above threshold)'} -> {done.out_dir / r.figure}")
    for r in done.rejected:
        print(f"refused {r.source}: {r.reason}")
    table = done.out_dir / "summary.csv"
    print(f"{len(done.summary)} explained, {len(done.rejected)} refused; summary in {table}")
    return done.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="predictions and Grad-CAM figures for your own spectrum files")
    p.add_argument("files", nargs="+", help="spectrum files or folders (JCAMP-DX, SPC, csv, parquet, npy)")
    p.add_argument(
        "--checkpoint", default=None, help="a run's best.pt or a models/*.pt (default: shipped IR model)"
    )
    p.add_argument("--out", default="explained", help="output folder (default: ./explained)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability that predicts a class")
    p.add_argument(
        "--layer", default="stem", help="Grad-CAM layer: stem, extractor, features or a module name"
    )
    p.set_defaults(func=_cli)
