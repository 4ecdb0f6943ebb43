"""Sim-to-real: train on synthetic IR spectra only, then find functional groups in real ones.

For each synthetic generator version (``synth-ir17`` v2, the isolated-Gaussian benchmark; v3 to v9, the
realistic ones of `synth.ir17_realistic`) and seed: train the default budget
(``params/train/synth_ir17.yaml``), choose one decision threshold per label on the **synthetic** validation
split (the F1-best of a grid; real labels are never used to tune anything), and score every real labelled IR
set given (a folder of JCAMP-DX files with ``molecules.csv``, or a parquet file that carries SMILES; labels
from SMILES with the NIST-17 SMARTS).

Beside the model, two trivial scorers that know the real set's label shares (so they are generous):
``majority`` predicts, for every spectrum, each label present in at least half of the set; ``prevalence``
predicts each label at random with its share in the set (expected scores over 200 seeded draws).
Macro-F1 follows `peakmixer.metrics` (labels present in the truth or the predictions).

Thresholds aside, do the model's scores carry information on real spectra at all? Per label, the ROC-AUC of
its sigmoid outputs on the real set (`ranking`: 0.5 is chance, 1 ranks every spectrum with the label above
every one without it), where the set holds at least `MIN_CLASS` spectra with the label and `MIN_CLASS`
without; the table's ``mean_auc`` is the mean over those labels. It tells a failure of the synthetic
thresholds (scores that rank well, cut in the wrong place) from one of the features (scores near chance).
How much could thresholds win at all? `threshold_ceiling` fits them on the real set's own labels
(in-sample): the micro-F1 no threshold rule that does not see those labels can pass with the same scores
(``ceiling_micro_f1``; for the majority baseline, the best label set to name for every spectrum, found the
same way). It is never used to choose anything.
And does a real set show each group where the correlation tables put it? `textbook_rule` ranks its spectra
per label with no training, by the height of the group's bands in their table ranges (`MARKERS`), on each
real set and each generator's synthetic validation split. It has no specificity (other groups may absorb in
a label's ranges), but where it ranks a label near chance on a real set, the band ranges a generator built
from the tables teaches do not, by themselves, tell that group there.

``python -m peakmixer sim2real --real nist=DIR --real drugs=FILE.parquet`` writes ``sim2real.csv`` (one row
per version, seed, real set and scorer), ``sim2real_labels.csv`` (per-label precision / recall / support),
``sim2real_predictions.csv`` (per model and real spectrum: its true and its predicted labels),
``sim2real_bands.csv`` (the textbook rule's ROC-AUC per set and label) and the figure
``sim2real_figure.png`` (a real spectrum beside the nearest synthetic spectrum of the same label set, and the
per-label recall on real data), each with a provenance sidecar. ``--store`` also writes the tables into
``results/``, from which the README's section is generated: a generator's rows (its version and synthetic set
size, ``--n``) replace its stored ones, and other generators' rows stay. The verdict is about the default
budget's size (`DEFAULT_N`); a generator trained on more spectra (the same model and epochs, so more steps) is
a diagnostic, set against its own version at that size.

A real set holds tens of molecules, so which molecules it holds moves its score as much as the training seed
does: `bootstrap_micro_f1` resamples the set's spectra (percentile bootstrap) from the stored predictions,
with the same resamples for every generator, seed and the majority baseline, so that a difference between two
of them is a paired one.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from peakmixer.config import ConfigError, MissingFile
from peakmixer.data.dataset import DatasetError, SpectraDataset, file_sha256, load, named_axis
from peakmixer.data.labels import NIST17_NAMES
from peakmixer.files import write_csvs
from peakmixer.metrics import multilabel_metrics
from peakmixer.paths import DATA_DIR, REPO_ROOT, RESULTS_DIR, RUNS_DIR, TRAIN_PARAMS
from peakmixer.synth.benchmarks import VERSIONS, ensure_synth

STORE = RESULTS_DIR / "sim2real.csv"
LABELS_NAME = "sim2real_labels.csv"  # the per-label scores, beside the store's table
TRAIN_CONFIG = TRAIN_PARAMS / "synth_ir17.yaml"
PREDICTIONS_NAME = "sim2real_predictions.csv"  # per model and real spectrum: true and predicted labels
DEFAULT_N = 4000  # synthetic spectra of the default budget (the targets' budget); other sizes: a diagnostic
BOOT_DRAWS, BOOT_SEED = 2000, 0  # the README's intervals: resamples of a real set's spectra, and their seed
SCORERS = ("model", "majority", "prevalence")
METRICS = ("micro_f1", "macro_f1", "emr", "hamming_accuracy")
# the README table's columns before the synthetic score
_SHOWN = ("micro_f1", "macro_f1", "emr", "mean_auc", "ceiling_micro_f1")
MIN_CLASS = 5  # a label's ROC-AUC on a real set needs this many spectra with it and as many without
_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


@dataclass
class RealSet:
    """Real spectra to score on: a name, and files (a folder with ``molecules.csv``, or a parquet file that
    carries SMILES)."""

    name: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> RealSet:
        name, sep, path = text.partition("=")
        if not sep or not name:
            raise ConfigError(f"--real {text!r}: expected NAME=PATH")
        return cls(name, Path(path))


@dataclass
class Sim2RealConfig:
    real: list[RealSet] = field(default_factory=list)
    versions: list[str] = field(default_factory=lambda: list(VERSIONS["synth-ir17"]))
    seeds: list[int] = field(default_factory=lambda: [0])
    n: int = DEFAULT_N  # synthetic spectra
    data_seed: int = 0
    train_config: Path = TRAIN_CONFIG
    overrides: list[str] = field(default_factory=list)  # key=value on the training config (tests: epochs=1)
    data_dir: Path = DATA_DIR
    runs_dir: Path = RUNS_DIR / "sim2real"


def import_real(real: RealSet, labels: str = "nist17") -> tuple[SpectraDataset, int]:
    """A real set as a labelled dataset on the ``ir`` axis and the number of spectra refused on import: a
    folder of spectrum files with ``molecules.csv``, a file that carries SMILES, or a prepared ``.npz``."""
    from peakmixer.data.io import import_files

    if not real.path.exists():
        raise MissingFile(f"{real.name}: {real.path} not found")
    if real.path.suffix == ".npz":  # a prepared dataset (`data download nist-ir --prepare`, `data import`)
        ds = load(real.path).onto(named_axis("ir"), name=str(real.path))
        if labels == "nist17" and list(ds.label_names) != list(NIST17_NAMES):
            raise DatasetError(
                f"{real.path}: its labels are not the 17 NIST-IR groups ({ds.label_names[:3]}...)"
            )
        return ds, 0
    files = sorted(real.path.glob("*")) if real.path.is_dir() else [real.path]
    table = real.path / "molecules.csv" if real.path.is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        report = import_files(
            [f for f in files if f.name != "molecules.csv"],
            out=Path(tmp) / "real.npz",
            smiles_csv=table if table is not None and table.exists() else None,
            labels=labels,
            axis="ir",
        )
        if report.out is None:
            raise DatasetError(f"{real.path}: no spectrum could be imported")
        return load(report.out), len(report.rejected)


def fit_thresholds(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per label, the grid threshold with the best F1 on (y, probs); 0.5 for a label without positives."""
    y = np.asarray(y).astype(bool)
    out = np.full(y.shape[1], 0.5)
    for k in range(y.shape[1]):
        if not y[:, k].any():
            continue
        pred = probs[:, k, None] >= _GRID
        tp = (pred & y[:, k, None]).sum(0)
        f1 = 2 * tp / np.maximum(2 * tp + (pred & ~y[:, k, None]).sum(0) + (~pred & y[:, k, None]).sum(0), 1)
        out[k] = _GRID[int(np.argmax(f1))]
    return out


def threshold_ceiling(y: np.ndarray, probs: np.ndarray) -> float:
    """The highest micro-F1 that per-label thresholds reach on (y, probs) themselves: on a real set, a ceiling
    for any threshold rule that does not see its labels (ours, `fit_thresholds` on synthetic validation
    spectra, included). Exact: micro-F1 = N / D with N = sum of 2 tp and D = sum of (2 tp + fp + fn) over the
    labels, so Dinkelbach's iteration (maximise N - lambda D, which each label does on its own, then set
    lambda to the new ratio) reaches the global best over every label's candidate cuts (its scores, and
    "never")."""
    y = np.asarray(y).astype(bool)
    terms = []  # per label and cut: (2 tp, 2 tp + fp + fn = predicted + positives) when predicted >= the cut
    for k in range(y.shape[1]):
        pred = probs[:, k, None] >= np.append(np.unique(probs[:, k]), np.inf)
        tp = (pred & y[:, k, None]).sum(0)
        terms.append(np.stack([2 * tp, pred.sum(0) + y[:, k].sum()], axis=1).astype(float))
    best = 0.0
    while True:
        picked = sum(t[np.argmax(t[:, 0] - best * t[:, 1])] for t in terms)
        ratio = picked[0] / max(picked[1], 1.0)
        if ratio <= best + 1e-12:
            return best
        best = ratio


def score(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Micro- / macro-F1, EMR, Hamming accuracy and per-label precision / recall / support of 0/1 `pred`."""
    m = multilabel_metrics(y, np.asarray(pred, dtype=float), logits=False, label_names=list(names))
    return {k: m[k] for k in METRICS} | {"per_label": m["per_label"]}


def ranking(y: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per label, the ROC-AUC of `probs` against `y` (ties count one half), or NaN where `y` has fewer than
    `MIN_CLASS` positives or negatives (module docstring)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(bool)
    out = {}
    for k, name in enumerate(names):
        positives = int(y[:, k].sum())
        enough = min(positives, len(y) - positives) >= MIN_CLASS
        out[name] = float(roc_auc_score(y[:, k], probs[:, k])) if enough else float("nan")
    return out


# The bands a chemist reads each group by, named in the band table (`ir17_bands.IR17_BANDS`: Silverstein,
# Webster & Kiemle 2005 ch. 2; Socrates 2001). Each inner tuple is one band the group needs (any of its modes'
# centre ranges); a group with two needs both. Alkyl halides have none: their C-X stretch moves over
# 485-1400 cm-1 with the halogen, where most skeletons absorb.
MARKERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "alkane": (("CH2 asym. stretch", "CH2 sym. stretch"),),
    "methyl": (("CH3 asym. stretch", "CH3 sym. stretch"),),
    "alkene": (("=C-H stretch",), ("C=C stretch",)),
    "alkyne": (("C#C stretch",),),
    "alcohols": (("O-H stretch, free", "O-H stretch, H-bonded"),),
    "amines": (("N-H stretch",),),
    "nitriles": (("C#N stretch",),),
    "aromatics": (("aryl C-H stretch",), ("ring C=C stretch",)),
    "esters": (("C=O stretch",),),
    "ketones": (("C=O stretch",),),
    "aldehydes": (("C=O stretch",), ("C-H stretch (Fermi doublet)",)),
    "carboxylic acids": (("C=O stretch",), ("O-H stretch, dimer (broad)", "O-H stretch, monomer")),
    "ether": (("C-O-C asym. stretch", "aryl-O asym. stretch"),),
    "acyl halides": (("C=O stretch",),),
    "amides": (("amide I C=O stretch",), ("N-H stretch",)),
    "nitro": (("NO2 asym. stretch",), ("NO2 sym. stretch",)),
}
BANDS_NAME = "sim2real_bands.csv"  # the textbook rule's per-label ROC-AUC, beside the store's table
CHANCE_BAND = 0.55  # the README names the labels the textbook rule ranks no better than this


def marker_windows(label: str) -> list[list[tuple[float, float]]]:
    """Per band `label` needs (`MARKERS`), the centre ranges (cm-1) of its modes in the band table."""
    from peakmixer.synth.ir17_bands import IR17_BANDS, IR17_LABELS

    k = IR17_LABELS.index(label)
    own = [b for b in IR17_BANDS if b.label == k]
    windows = []
    for modes in MARKERS[label]:
        unknown = set(modes) - {b.mode for b in own}
        if unknown:
            raise ConfigError(f"MARKERS[{label!r}]: {sorted(unknown)} are not {label} bands of IR17_BANDS")
        windows.append(sorted({(b.lo, b.hi) for b in own if b.mode in modes}))
    return windows


def textbook_scores(ds: SpectraDataset) -> dict[str, np.ndarray]:
    """Per label of `MARKERS`, a score per spectrum with no training: on the spectrum scaled to a maximum of
    1, its highest point inside the label's band ranges above its median; the least over the bands the label
    needs. The textbook's rule: a group shows where the correlation tables put it."""
    x = np.asarray(ds.axis)
    X = np.asarray(ds.X, dtype=float)
    X = X / np.maximum(X.max(axis=1, keepdims=True), 1e-12)
    base = np.median(X, axis=1)
    out = {}
    for label in MARKERS:
        heights = []
        for ranges in marker_windows(label):
            inside = np.zeros(x.size, dtype=bool)
            for lo, hi in ranges:
                inside |= (x >= lo) & (x <= hi)
            heights.append(X[:, inside].max(axis=1) - base if inside.any() else np.full(len(X), np.nan))
        out[label] = np.min(heights, axis=0)
    return out


def textbook_rule(ds: SpectraDataset, name: str) -> pd.DataFrame:
    """Per label of `ds` that `MARKERS` names: its band ranges, positives in `ds`, and the ROC-AUC of
    `textbook_scores` (`ranking`: NaN without `MIN_CLASS` spectra with the label and as many without, or
    where the axis misses one of its ranges). No such label: no row."""
    names = list(ds.label_names)
    labels = [n for n in MARKERS if n in names]
    if not labels:
        return pd.DataFrame(columns=["set", "label", "bands_cm1", "positives", "spectra", "auc"])
    scores = textbook_scores(ds)
    y = np.asarray(ds.y)[:, [names.index(n) for n in labels]]
    ranked = np.stack([np.nan_to_num(scores[n]) for n in labels], axis=1)
    auc = ranking(y, ranked, labels)
    auc |= {n: float("nan") for n in labels if not np.isfinite(scores[n]).all()}
    return pd.DataFrame(
        {
            "set": name,
            "label": labels,
            "bands_cm1": [
                " and ".join("/".join(f"{lo:g}-{hi:g}" for lo, hi in r) for r in marker_windows(n))
                for n in labels
            ],
            "positives": y.sum(axis=0).astype(int),
            "spectra": len(ds),
            "auc": [auc[n] for n in labels],
        }
    )


def baselines(y: np.ndarray, names: Sequence[str], draws: int = 200, seed: int = 0) -> dict[str, dict]:
    """``majority`` and ``prevalence`` (module docstring), scored on the set whose shares they use."""
    y = np.asarray(y).astype(bool)
    share = y.mean(0)
    majority = score(y, np.tile(share >= 0.5, (len(y), 1)), names)
    rng = np.random.default_rng(seed)
    runs = [score(y, rng.random(y.shape) < share, names) for _ in range(draws)]
    prevalence = {k: float(np.mean([r[k] for r in runs])) for k in METRICS}
    prevalence["per_label"] = {
        n: {m: float(np.mean([r["per_label"][n][m] for r in runs])) for m in ("precision", "recall", "f1")}
        | {"support": int(y[:, j].sum())}
        for j, n in enumerate(names)
    }
    return {"majority": majority, "prevalence": prevalence}


def train_on_synthetic(version: str, seed: int, cfg: Sim2RealConfig) -> Path:
    """The best checkpoint of the default budget on synth-ir17 `version`: trained, or reused when this run
    (named by its identity, `train.planned_config_id`) has finished before; a killed one resumes."""
    from peakmixer.train.config import load_config
    from peakmixer.train.identity import planned_config_id
    from peakmixer.train.loop import train

    data = ensure_synth("synth-ir17", cfg.n, cfg.data_seed, cfg.data_dir, version)
    tc = load_config(cfg.train_config, [*cfg.overrides, f"data.path={data}", f"seed={seed}"])
    tc.progress = False
    out = cfg.runs_dir / f"v{version}_n{cfg.n}" / f"seed{seed}-{planned_config_id(tc, load(data))}"
    tc.out_dir = str(out)
    metrics = out / "metrics.json"
    if not (
        metrics.exists() and (out / "best.pt").exists() and not json.loads(metrics.read_text()).get("stopped")
    ):
        train(tc, resume=True)
    return out / "best.pt"


def probabilities(checkpoint: Path, ds: SpectraDataset) -> np.ndarray:
    """Sigmoid outputs (N, K) of a checkpoint on a dataset, on its input axis and normalised as in its
    training."""
    from peakmixer.config import from_dict
    from peakmixer.train.checkpoint import checkpoint_axis, load_checkpoint, model_from_checkpoint
    from peakmixer.train.config import TrainConfig
    from peakmixer.train.prepare import normalize

    ckpt = load_checkpoint(checkpoint)
    names = list(ckpt["label_names"])
    if list(ds.label_names) != names:
        raise DatasetError(f"labels {ds.label_names[:3]}... are not the model's {names[:3]}...")
    ds = ds.onto(checkpoint_axis(ckpt))
    X = normalize(ds.X, from_dict(TrainConfig, ckpt["config"]).data.normalize).astype(np.float32)
    with torch.no_grad():
        return torch.sigmoid(
            model_from_checkpoint(ckpt).eval()(torch.from_numpy(X).unsqueeze(1)).float()
        ).numpy()


@dataclass
class Sim2RealResult:
    table: pd.DataFrame  # version, seed, real set, scorer, metrics
    labels: pd.DataFrame  # per version, seed, real set, scorer and label: precision, recall, f1, support
    predictions: pd.DataFrame  # per version, seed, real set and spectrum: true and predicted label sets
    real: dict[str, SpectraDataset]
    synthetic: dict[str, SpectraDataset]  # per version, the synthetic set (for the nearest-spectrum panel)
    hashes: dict[str, str]
    bands: pd.DataFrame  # the textbook rule per real set and synthetic validation split (`textbook_rule`)


def run_sim2real(cfg: Sim2RealConfig, *, progress: bool = True) -> Sim2RealResult:
    """Train per version and seed, pick thresholds on synthetic validation data, score every real set."""
    if not cfg.real:
        raise ConfigError("sim2real: no real set given (--real NAME=PATH)")
    real, refused, hashes = {}, {}, {}
    for r in cfg.real:
        real[r.name], refused[r.name] = import_real(r)
        hashes[r.name] = _hash_of(r.path)
    # no model scores these rows: what identifies one is the data it was computed on
    bands = [
        textbook_rule(ds, name).assign(kind="real", data_sha256=hashes[name]) for name, ds in real.items()
    ]
    # a scorer with no information (one score for all spectra) can only name a fixed label set: its best
    fixed_ceiling = {name: threshold_ceiling(ds.y, np.zeros(ds.y.shape)) for name, ds in real.items()}
    rows, label_rows, prediction_rows, synthetic = [], [], [], {}
    for version in cfg.versions:
        path = ensure_synth("synth-ir17", cfg.n, cfg.data_seed, cfg.data_dir, version)
        synthetic[version] = load(path)
        hashes[f"synth-ir17-v{version}"] = file_sha256(path)
        val = synthetic[version].split("val")
        rule = textbook_rule(val, _validation_name(version, cfg.n))
        bands.append(rule.assign(kind="synthetic", data_sha256=hashes[f"synth-ir17-v{version}"]))
        for seed in cfg.seeds:
            if progress:
                print(f"[sim2real] synth-ir17 v{version}, n = {cfg.n}, seed {seed}: training", flush=True)
            ckpt = train_on_synthetic(version, seed, cfg)
            run = json.loads((ckpt.parent / "metrics.json").read_text())
            made = {
                "config_id": run["config_id"],
                "precision": run["precision"],
                "synthetic_test_micro_f1": run["test"]["micro_f1"],
                # another kind of CPU sums in another order: the same seed trains another model there
                "device_name": run["gpu"] or run["cpu"],
                "threads": run["threads"],
            }
            thresholds = fit_thresholds(val.y, probabilities(ckpt, val))
            for name, ds in real.items():
                names = list(ds.label_names)
                probs = probabilities(ckpt, ds)
                pred = probs >= thresholds
                auc = ranking(ds.y, probs, names)
                defined = [a for a in auc.values() if np.isfinite(a)]
                mean_auc = float(np.mean(defined)) if defined else float("nan")
                scored = {"model": score(ds.y, pred, names)}
                # in-sample, on the real labels: what any threshold rule could reach, never used to choose
                ceiling = {"model": threshold_ceiling(ds.y, probs), "majority": fixed_ceiling[name]}
                prediction_rows += [
                    {"version": version, "n_synthetic": cfg.n, "seed": seed, "real_set": name,
                     "config_id": made["config_id"], "spectrum": i, "id": ds.ids[i],
                     "truth": label_set(ds.y[i], names), "predicted": label_set(pred[i], names)}
                    for i in range(len(ds))
                ]  # fmt: skip
                scored |= baselines(ds.y, names)
                for scorer, m in scored.items():
                    key = {"version": version, "n_synthetic": cfg.n, "seed": seed, "real_set": name,
                           "scorer": scorer}  # fmt: skip
                    ranked = scorer == "model"  # the baselines give no scores to rank by
                    rows.append(
                        key
                        | {k: m[k] for k in METRICS}
                        | {"mean_auc": mean_auc if ranked else float("nan")}
                        | {"ceiling_micro_f1": ceiling.get(scorer, float("nan"))}
                        | {"spectra": len(ds), "refused": refused[name]}
                        | made
                    )
                    # the run's identity on every row, as in the table: a label row names what it scored
                    mark = {"config_id": made["config_id"]}
                    label_rows += [
                        key | mark | {"label": n} | v | {"auc": auc[n] if ranked else float("nan")}
                        for n, v in m["per_label"].items()
                    ]
    return Sim2RealResult(
        pd.DataFrame(rows),
        pd.DataFrame(label_rows),
        pd.DataFrame(prediction_rows),
        real,
        synthetic,
        hashes,
        pd.concat(bands, ignore_index=True),
    )


def _validation_name(version: str, n: int) -> str:
    """The textbook table's name of a generator's synthetic validation split."""
    return f"synth-ir17 v{version} validation (n = {n})"


def label_set(row: np.ndarray, names: Sequence[str]) -> str:
    """The labels on in a multi-hot row joined by ``;`` (none: empty), as the predictions table keeps them."""
    if any(";" in n for n in names):
        raise ConfigError(
            f"label names {[n for n in names if ';' in n]} hold ';', the predictions' separator"
        )
    return ";".join(n for n, on in zip(names, np.asarray(row).astype(bool), strict=True) if on)


def read_predictions(path: Path) -> pd.DataFrame:
    """The predictions table as written: ids, versions and label sets as text (an empty set stays ``""``)."""
    text = ("version", "real_set", "config_id", "id", "truth", "predicted")
    return pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False)


def bootstrap_micro_f1(
    predictions: pd.DataFrame, real_set: str, draws: int = BOOT_DRAWS, seed: int = BOOT_SEED
) -> dict[str, np.ndarray]:
    """Micro-F1 on `draws` resamples (with replacement) of the spectra of `real_set`: per generator (its
    `_key`: version, and set size where not the main one) the mean over its seeds, and ``"majority"`` (each
    label in at least half of the whole set). Every generator, seed and the baseline see the same resamples:
    the difference of two arrays is a paired bootstrap."""
    part = predictions[predictions["real_set"] == real_set].sort_values("spectrum", kind="stable")
    if part.empty:
        raise DatasetError(f"the predictions table has no spectrum of the real set {real_set!r}")
    n = part["spectrum"].nunique()
    # times each spectrum is drawn, per resample: micro-F1 sums tp / fp / fn over the drawn spectra
    drawn = np.stack(
        [np.bincount(row, minlength=n) for row in np.random.default_rng(seed).integers(0, n, (draws, n))]
    )

    def resampled_f1(truth: list[set[str]], predicted: list[set[str]]) -> np.ndarray:
        c = np.array([[len(t & p), len(p - t), len(t - p)] for t, p in zip(truth, predicted, strict=True)])
        tp, fp, fn = (drawn @ c).T
        return 2 * tp / np.maximum(2 * tp + fp + fn, 1)

    truth_text = part.drop_duplicates("spectrum")["truth"].to_numpy()
    per_seed: dict[str, list[np.ndarray]] = {}
    main = main_size(part["n_synthetic"])
    for (version, size, seed_), run in part.groupby(["version", "n_synthetic", "seed"], sort=False):
        # pairing needs every run to hold each spectrum once, in the same order, with the same truth
        spectra, truths = run["spectrum"].to_numpy(), run["truth"].to_numpy()
        if not (np.array_equal(spectra, np.arange(n)) and np.array_equal(truths, truth_text)):
            raise DatasetError(
                f"{real_set}: v{_key(version, size, main)} seed {seed_} does not hold spectra 0..{n - 1} "
                "once each with the true labels of the other runs"
            )
        f1 = resampled_f1(_sets(run["truth"]), _sets(run["predicted"]))
        per_seed.setdefault(_key(version, size, main), []).append(f1)
    out = {version: np.mean(f1s, axis=0) for version, f1s in per_seed.items()}
    truth = _sets(pd.Series(truth_text))
    shared = {lab for lab in set().union(*truth) if sum(lab in t for t in truth) >= n / 2}
    out["majority"] = resampled_f1(truth, [shared] * n)
    return out


def main_size(sizes: Sequence[int] | pd.Series) -> int:
    """The synthetic set size a store's verdict is about: the default budget's where present, else the
    smallest (a store made on a smaller budget, as the tests make); other sizes are compared with it."""
    found = {int(n) for n in sizes}
    return DEFAULT_N if DEFAULT_N in found else min(found)


def _key(version: str, size: int, main: int) -> str:
    """A generator's name after "synth-ir17 v": its version, and its set size where not the `main` one."""
    return str(version) if int(size) == main else f"{version} at n = {int(size)}"


def _sized(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per-label or prediction rows with their set size: rows written before it was recorded on them take
    it from the table's row of the same model (config id)."""
    if "n_synthetic" in frame:
        return frame
    first = table.drop_duplicates("config_id")
    size = pd.Series(first["n_synthetic"].to_numpy(), index=first["config_id"].astype(str))
    return frame.assign(n_synthetic=frame["config_id"].astype(str).map(size))


def _sets(column: pd.Series) -> list[set[str]]:
    """Label sets from their text; ``""`` (no label) splits to ``{""}``, hence the removal."""
    return [set(text.split(";")) - {""} for text in column]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per real set, scorer, version and synthetic set size (baselines do not depend
    on the seed)."""
    keys = ["real_set", "scorer", "version", "n_synthetic"]
    g = table.groupby(keys, sort=False)
    metrics = [m for m in (*_SHOWN, "synthetic_test_micro_f1") if m in table]
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = g["seed"].nunique()
    out["spectra"] = g["spectra"].first()
    out["machine"] = (
        _device_names(table)
        .groupby([table[k] for k in keys], sort=False)
        .agg(lambda x: ", ".join(sorted(set(x))) or "not recorded")
    )
    return out.reset_index()


def readme_sim2real(path: Path = STORE) -> str:
    """The README's sim-to-real section, made from the committed ``results/sim2real.csv``."""
    if not path.exists():
        return "No sim-to-real result in the store yet: `python -m peakmixer sim2real --store` makes it."
    table = pd.read_csv(path, dtype={"version": str, "real_set": str, "config_id": str})
    s = summary(table)
    main = main_size(table["n_synthetic"])
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    seeds = sorted(table["seed"].unique().tolist())
    precision = (
        ", ".join(sorted(set(table["precision"]))) if "precision" in table else "precision not recorded"
    )
    lines = [
        f"From `{shown}`: the default training budget (`params/train/synth_ir17.yaml`, "
        f"n = {main} synthetic spectra, seeds {seeds}, "
        f"{precision}; {machines(table)}) trained on **synthetic** spectra only; thresholds "
        "chosen on synthetic validation spectra; real spectra never used in training or tuning. Mean ± sd "
        "over seeds; the baselines know the real set's label shares. The last column is each model's "
        "micro-F1 on its own synthetic test split (how learnable the synthetic task is). Mean ROC-AUC: over "
        f"the labels with at least {MIN_CLASS} spectra with and {MIN_CLASS} without them in the real set, "
        "how well the model's scores rank the spectra, whatever the thresholds (0.5: chance). Ceiling: the "
        "micro-F1 at thresholds fitted on the real set's own labels (in-sample, so not a result: what no "
        "threshold rule that does not see those labels can pass with the same scores); for the majority "
        "baseline, the best label set to name for every spectrum, found the same way (– on rows stored "
        "before it was computed). "
        "The same seed trains another model on another kind of CPU (other kernels, another order of sums): a "
        "rerun on another machine gives other numbers than these, and a comparison of models trained on "
        "different machines names them."
        + (
            " A generator marked with another n trained the same model for the same epochs on that many "
            "spectra (more steps): whether a larger budget than the default would transfer better."
            if (table["n_synthetic"] != main).any()
            else ""
        ),
        "",
        "| real set (spectra) | scorer | generator | micro-F1 | macro-F1 | EMR | mean ROC-AUC | ceiling "
        "| synthetic test micro-F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (real_set, scorer), part in s.groupby(["real_set", "scorer"], sort=False):
        # baselines' rows are alike, but rows stored before a column existed lack it: the first that has it
        for _, r in (part if scorer == "model" else part.bfill().head(1)).iterrows():
            gen = f"synth-ir17 v{_key(r['version'], r['n_synthetic'], main)}" if scorer == "model" else "–"
            cells = [  # a baseline's rows carry the synthetic score of the model they sit beside: not shown
                _cell(r, m)
                if np.isfinite(r.get(f"{m}_mean", np.nan)) and (scorer == "model" or m in _SHOWN)
                else "–"
                for m in (*_SHOWN, "synthetic_test_micro_f1")
            ]
            lines.append(
                f"| {real_set} ({int(r['spectra'])}) | {scorer} | {gen} | " + " | ".join(cells) + " |"
            )
    labels_path, predictions_path = path.with_name(LABELS_NAME), path.with_name(PREDICTIONS_NAME)
    labels = _sized(pd.read_csv(labels_path, dtype={"version": str}), table) if labels_path.exists() else None
    weak = weak_labels(s, labels) if labels is not None else []
    predictions = _sized(read_predictions(predictions_path), table) if predictions_path.exists() else None
    if predictions is not None:  # intervals only from the very models the table scored
        keys = ["version", "seed", "real_set", "config_id"]
        scored = table.loc[table["scorer"] == "model", keys].astype(str).drop_duplicates()
        predicted = predictions[keys].astype(str).drop_duplicates()
        if set(map(tuple, scored.to_numpy())) != set(map(tuple, predicted.to_numpy())):
            raise DatasetError(
                f"{predictions_path}: its models (version, seed, real set, config id) are not those of "
                f"{path}; write both with one `sim2real --store`"
            )
    free = label_free_errors(predictions) if predictions is not None else []
    bands_path = path.with_name(BANDS_NAME)
    textbook = readme_textbook(pd.read_csv(bands_path), s, labels) if bands_path.exists() else []
    return "\n".join(lines + ["", *verdict(s, predictions), *ceiling_lines(s), *weak, *free, *textbook])


def readme_textbook(bands: pd.DataFrame, s: pd.DataFrame, labels: pd.DataFrame | None) -> list[str]:
    """The README's lines on the textbook rule (`textbook_rule`): per label its ROC-AUC on each real set
    beside that of the set's best generator's model (mean over seeds), and on the newest generator's
    synthetic validation split at the main size; none where nothing is ranked."""
    main = main_size(s["n_synthetic"])
    best = best_at_main(s)
    scored = set(bands.loc[bands["kind"] == "real", "set"])
    real_sets = [r for r in dict.fromkeys(s["real_set"]) if r in scored]  # in the table's order
    at_main = s[(s["scorer"] == "model") & (s["n_synthetic"] == main)]
    newest = max(at_main["version"].astype(str), key=lambda v: v.zfill(8), default=None)
    synthetic = _validation_name(newest, main) if newest is not None else None
    order = list(dict.fromkeys(bands["label"]))
    auc = bands.set_index(["label", "set"])["auc"].unstack("set").reindex(order)  # a set ranking none: NaN
    columns: dict[str, pd.Series] = {}
    for real_set in real_sets:
        columns[f"{real_set}: rule"] = auc[real_set]
        if real_set not in best or labels is None or "auc" not in labels:
            continue
        mine = _model_rows(labels, real_set, best[real_set], main)
        columns[f"{real_set}: model v{best[real_set]}"] = mine.groupby("label")["auc"].mean().reindex(order)
    if synthetic in auc:
        columns[f"synth-ir17 v{newest} validation: rule"] = auc[synthetic]
    table = pd.DataFrame(columns, index=order, dtype=float)
    table = table[table.notna().any(axis=1)]
    if table.empty:
        return []
    ranges = bands.drop_duplicates("label").set_index("label")["bands_cm1"]
    lines = [
        "",
        "Do the real sets show each group where the correlation tables put it? A rule with no training "
        "scores each spectrum per label: on the spectrum scaled to a maximum of 1, its highest point in the "
        "ranges of the bands a chemist reads the group by (`sim2real.MARKERS`, from the band table the "
        "generator draws from; the least over the bands a label needs) above the spectrum's median. It has "
        "no specificity: where other groups of a set absorb in a label's ranges, it ranks that label poorly "
        "even where the band is there. Its ROC-AUC per label (at least "
        f"{MIN_CLASS} spectra with and {MIN_CLASS} without), beside the model's (the set's best generator at "
        "the default budget, mean over seeds); the last row is each column's mean over the labels it ranks "
        "(their number in brackets):",
        "",
        "| label | bands (cm-1) | " + " | ".join(table.columns) + " |",
        "|---|---|" + "---|" * len(table.columns),
    ]
    for label, r in table.iterrows():
        cells = [f"{v:.2f}" if np.isfinite(v) else "–" for v in r]
        lines.append(f"| {label} | {ranges[label]} | " + " | ".join(cells) + " |")
    means = [f"{c.mean():.2f} ({c.notna().sum()})" if c.notna().any() else "–" for _, c in table.items()]
    lines += ["| mean (labels) | | " + " | ".join(means) + " |", ""]
    for real_set in real_sets:
        rule = table[f"{real_set}: rule"].dropna()
        poor = rule[rule <= CHANCE_BAND]
        if len(poor):
            lines.append(
                f"- {real_set}: the rule ranks {len(poor)} of its {len(rule)} ranked labels at ROC-AUC "
                f"{CHANCE_BAND} or below ({', '.join(f'{n} {v:.2f}' for n, v in poor.items())}): in this set "
                "the height in those ranges does not tell the spectra with the group from those without "
                "(other groups absorb there too, or the group's band lies elsewhere)."
            )
    return lines


def machines(table: pd.DataFrame) -> str:
    """Where a store's models were trained, for the README (``on`` the machines; rows from before they were
    recorded: said so)."""
    names = _device_names(table)
    recorded = sorted(set(names) - {""})
    missing = int((names == "").sum())
    if not recorded:
        return "machine not recorded"
    text = "on " + ", ".join(recorded)
    return text + (f"; machine not recorded for {missing} of {len(names)} rows" if missing else "")


def _device_names(table: pd.DataFrame) -> pd.Series:
    """Per row, the machine its model trained on; "" where not recorded (a row or store made before)."""
    if "device_name" not in table:
        return pd.Series("", index=table.index)
    return table["device_name"].fillna("").astype(str)


def verdict(s: pd.DataFrame, predictions: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences from a `summary`: per real set, the best generator's micro-F1 against the majority
    baseline and, where several generators were scored, the last one's change over the first (and, from
    three on, over the one before it); with the `predictions` table, each with its 95% interval over the
    real set's spectra (`bootstrap_micro_f1`). All of this at the `main_size`; a generator trained on
    another number of spectra is set against its own version at the main size."""
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, part in s.groupby("real_set", sort=False):
        models = part[part["scorer"] == "model"]
        at_main = models[models["n_synthetic"] == main].set_index("version")
        model = at_main["micro_f1_mean"]
        majority = float(part.loc[part["scorer"] == "majority", "micro_f1_mean"].iloc[0])
        best, first, last = str(model.idxmax()), str(model.index[0]), str(model.index[-1])
        boot = bootstrap_micro_f1(predictions, real_set) if predictions is not None else None
        side = "above" if model[best] > majority else "below"
        text = (
            f"- {real_set}: best micro-F1 {model[best]:.3f} (synth-ir17 v{best}{_clause(boot, best)}), "
            f"{side} the majority baseline ({majority:.3f})"
        )
        if boot is not None:
            text += f" by {model[best] - majority:+.3f}{_clause(boot, best, 'majority')}"
        if len(model) > 1:
            text += (
                f"; v{last} against v{first}: {model[last] - model[first]:+.3f}{_clause(boot, last, first)}"
                f"{_machines_differ(at_main, last, first)}"
            )
        if len(model) > 2:  # the newest version's own step, beside the whole way from the first
            before = str(model.index[-2])
            text += (
                f"; v{last} against v{before}: {model[last] - model[before]:+.3f}"
                f"{_clause(boot, last, before)}{_machines_differ(at_main, last, before)}"
            )
        out.append(text + ".")
        out += [_budget_sentence(real_set, r, at_main, boot, main) for _, r in models.iterrows()
                if r["n_synthetic"] != main]  # fmt: skip
    if predictions is not None:
        out.append(
            f"- Intervals: 95% percentile bootstrap over the real set's spectra ({BOOT_DRAWS} resamples, "
            f"seed {BOOT_SEED}), the same resamples for every generator, seed and the baseline, so a "
            "difference is paired. They show how much a score depends on which molecules the set holds; "
            "the ± above is the spread over seeds. The best generator is picked on the same spectra, so its "
            "interval and its margin are a little optimistic."
        )
    return out


def ceiling_lines(s: pd.DataFrame) -> list[str]:
    """Per real set, from a `summary`: the highest threshold ceiling among the models at the main size, beside
    their micro-F1 at the synthetic thresholds and the best fixed label set's (the majority row's ceiling):
    how much thresholds could win at most, and what the scores know beyond the label shares."""
    if "ceiling_micro_f1_mean" not in s:
        return []
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, part in s.groupby("real_set", sort=False):
        models = part[(part["scorer"] == "model") & (part["n_synthetic"] == main)].dropna(
            subset=["ceiling_micro_f1_mean"]
        )
        fixed = part.loc[part["scorer"] == "majority", "ceiling_micro_f1_mean"].dropna()
        if models.empty:
            continue
        r = models.loc[models["ceiling_micro_f1_mean"].idxmax()]
        which = "the only generator" if len(models) == 1 else f"the highest of {len(models)} generators"
        text = (
            f"- {real_set}: thresholds fitted on its own labels would give the models at most "
            f"{r['ceiling_micro_f1_mean']:.3f} (synth-ir17 v{r['version']}, mean over seeds, against "
            f"{r['micro_f1_mean']:.3f} at its synthetic thresholds; {which} at n = {main} scored with it)"
        )
        if len(fixed):
            text += (
                f"; the best label set to name for every spectrum, chosen the same way, {fixed.iloc[0]:.3f}: "
                f"the scores add {r['ceiling_micro_f1_mean'] - fixed.iloc[0]:+.3f} to what the label shares "
                "alone allow"
            )
        out.append(text + ".")
    return out


def _budget_sentence(
    real_set: str, r: pd.Series, at_main: pd.DataFrame, boot: dict[str, np.ndarray] | None, main: int
) -> str:
    """A generator trained on another number of spectra (`r`, a `summary` row) against its own version
    at the main size (`at_main`: that size's model rows by version)."""
    key, version, size = _key(r["version"], r["n_synthetic"], main), str(r["version"]), int(r["n_synthetic"])
    text = (
        f"- {real_set}: synth-ir17 v{key} ({size / main:g}x the spectra for the same model and epochs): "
        f"micro-F1 {r['micro_f1_mean']:.3f}"
    )
    if version in at_main.index:
        base = at_main.loc[version]
        text += (
            f", {r['micro_f1_mean'] - base['micro_f1_mean']:+.3f} against n = {main}"
            f"{_clause(boot, key, version)}"
        )
        if np.isfinite(r.get("mean_auc_mean", np.nan)) and np.isfinite(base.get("mean_auc_mean", np.nan)):
            text += f"; mean ROC-AUC {r['mean_auc_mean']:.3f} against {base['mean_auc_mean']:.3f}"
        ceilings = [x.get("ceiling_micro_f1_mean", np.nan) for x in (r, base)]
        if np.isfinite(ceilings).all():
            text += f"; ceiling {ceilings[0]:.3f} against {ceilings[1]:.3f}"
        if "machine" in r and r["machine"] != base["machine"]:
            text += f"; machines: n = {size} {r['machine']}, n = {main} {base['machine']}"
    return text + "."


def _machines_differ(at_main: pd.DataFrame, a: str, b: str) -> str:
    """A note for a comparison of versions `a` and `b` whose models trained on other machines (a `summary`'s
    model rows at the main size, by version): the difference then holds the machines' too."""
    if "machine" not in at_main or at_main.loc[a, "machine"] == at_main.loc[b, "machine"]:
        return ""
    return f" (machines: v{a} {at_main.loc[a, 'machine']}, v{b} {at_main.loc[b, 'machine']})"


def label_free_errors(predictions: pd.DataFrame) -> list[str]:
    """Per real set with spectra of molecules that carry none of the labels: how many labels each generator's
    models name on them (every one wrong), mean and range over seeds."""
    free = predictions[predictions["truth"] == ""]
    out = []
    for real_set, part in free.groupby("real_set", sort=False):
        named = pd.Series([len(labels) for labels in _sets(part["predicted"])], index=part.index)
        per_run = named.groupby([part["version"], part["n_synthetic"], part["seed"]], sort=False).sum()
        stats = per_run.groupby(level=[0, 1], sort=False).agg(["mean", "min", "max", "size"])
        main = main_size(part["n_synthetic"])
        listed = ", ".join(
            f"{r['mean']:.1f} ({r['min']:.0f}-{r['max']:.0f}) with v{_key(v, n, main)}"
            for (v, n), r in stats.iterrows()
        )
        out.append(
            f"- {real_set}: labels named on its {part['spectrum'].nunique()} spectra that carry none of the "
            f"groups (every one wrong), mean (range) over {int(stats['size'].max())} seeds: {listed}."
        )
    return out


def _clause(boot: dict[str, np.ndarray] | None, a: str, b: str | None = None) -> str:
    """The interval of `a`'s micro-F1 (or of `a` minus `b`) for a verdict sentence; "" without a bootstrap."""
    if boot is None:
        return ""
    return f"; {_interval(boot[a])}" if b is None else f" ({_interval(boot[a] - boot[b], difference=True)})"


def _interval(draws: np.ndarray, difference: bool = False) -> str:
    """``95% interval LO to HI``; for a `difference`, signed, and saying when it includes 0."""
    lo, hi = np.percentile(draws, [2.5, 97.5])
    if not difference:
        return f"95% interval {lo:.3f} to {hi:.3f}"
    return f"95% interval {lo:+.3f} to {hi:+.3f}" + (", which includes 0" if lo <= 0 <= hi else "")


def weak_labels(s: pd.DataFrame, labels: pd.DataFrame, min_support: int = 5, floor: float = 0.5) -> list[str]:
    """Per real set, the labels with at least `min_support` positives whose recall (mean over seeds) stays
    below `floor` with the best generator of `s` (a `summary`), from the per-label table."""
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, best in best_at_main(s).items():
        rows = _model_rows(labels, real_set, best, main)
        head = f"- {real_set}, synth-ir17 v{best}: recall"
        if rows.empty:  # an older per-label table: say so rather than call every label fine
            out.append(f"{head} per label not in the per-label table.")
            continue
        # support: the set's positives, the same for every seed; recall: the mean over seeds
        if "auc" not in rows:  # a per-label table from before the ROC-AUC was scored
            rows = rows.assign(auc=np.nan)
        per = rows.groupby("label", sort=False).agg(
            recall=("recall", "mean"), support=("support", "max"), auc=("auc", "mean")
        )
        counted = per[per["support"] >= min_support]
        low = counted[counted["recall"] < floor].sort_values("recall")
        if low.empty:
            out.append(f"{head} >= {floor} on every label with at least {min_support} positives.")
            continue
        listed = ", ".join(
            f"{name} {r.recall:.2f} ({int(r.support)}"
            + (f"; ROC-AUC {r.auc:.2f})" if np.isfinite(r.auc) else ")")
            for name, r in low.iterrows()
        )
        out.append(
            f"{head} below {floor} on {len(low)} of the {len(counted)} labels with at least {min_support} "
            f"positives (recall, positives{'; ROC-AUC' if low['auc'].notna().any() else ''}): {listed}."
        )
    return out


def best_at_main(s: pd.DataFrame) -> dict[str, str]:
    """Per real set of a `summary`, the generator version whose models have the best mean micro-F1 at the
    `main_size`."""
    main = main_size(s["n_synthetic"])
    at_main = s[(s["scorer"] == "model") & (s["n_synthetic"] == main)]
    return {
        real_set: str(part.set_index("version")["micro_f1_mean"].idxmax())
        for real_set, part in at_main.groupby("real_set", sort=False)
    }


def _model_rows(labels: pd.DataFrame, real_set: str, version: str, size: int) -> pd.DataFrame:
    """The per-label rows of the models of one generator (version and synthetic set size) on a real set."""
    return labels[
        (labels["real_set"] == real_set) & (labels["scorer"] == "model")
        & (labels["version"].astype(str) == version) & (labels["n_synthetic"] == size)
    ]  # fmt: skip


def _cell(r: pd.Series, metric: str) -> str:
    sd = r[f"{metric}_std"]
    shown = r["scorer"] == "model" and r["seeds"] > 1 and np.isfinite(sd)  # baselines do not use the seed
    return f"{r[f'{metric}_mean']:.3f}" + (f" ± {sd:.3f}" if shown else "")


def _hash_of(path: Path) -> str:
    if path.is_file():
        return file_sha256(path)
    import hashlib

    h = hashlib.sha256()
    for f in sorted(path.glob("*")):
        h.update(f.name.encode() + file_sha256(f).encode())
    return h.hexdigest()


def store_result(result: Sim2RealResult, store: Path = STORE) -> list[Path]:
    """The tables into the store (`store` and its companions). Of the table, the per-label and the
    predictions tables, the rows of every generator `result` scored (version and set size) replace that
    generator's stored rows; all other rows stay (another set size, a version not run this time); rows are
    kept in version and set-size order. Of the textbook rule's table (`BANDS_NAME`), the rows of each set
    scored replace that set's, real sets first."""
    store.parent.mkdir(parents=True, exist_ok=True)
    stored = pd.read_csv(store, dtype={"version": str, "config_id": str}) if store.exists() else None
    scored = _generators(result.table).unique()
    tables: dict[Path, pd.DataFrame] = {}
    for frame, path in (
        (result.table, store),
        (result.labels, store.with_name(LABELS_NAME)),
        (result.predictions, store.with_name(PREDICTIONS_NAME)),
    ):
        if stored is not None and path.exists():
            old = (
                read_predictions(path)
                if path.name == PREDICTIONS_NAME
                else pd.read_csv(path, dtype={"version": str, "config_id": str})
            )
            old = _sized(old, stored)
            frame = pd.concat([old[~_generators(old).isin(scored)], frame], ignore_index=True)
        # by version and set size, whichever was stored last: the README's table and "first / last" follow it
        frame = frame.sort_values(
            ["version", "n_synthetic"],
            key=lambda c: c.astype(str).str.zfill(8) if c.name == "version" else c.astype(int),
            kind="stable",
        )
        tables[path] = frame
    # the textbook rule depends on a set alone: the sets scored now replace their rows, other sets' stay
    path, bands = store.with_name(BANDS_NAME), result.bands
    if path.exists():
        old = pd.read_csv(path)
        bands = pd.concat([old[~old["set"].isin(bands["set"])], bands], ignore_index=True)
    tables[path] = bands.sort_values(
        ["kind", "set"], key=lambda c: c.ne("real") if c.name == "kind" else c, kind="stable"
    )
    return write_csvs(tables)  # the four tables are replaced together: a crash leaves them agreeing


def _generators(frame: pd.DataFrame) -> pd.Series:
    """Per row, its generator: version and synthetic set size."""
    return frame["version"].astype(str) + "@" + frame["n_synthetic"].astype(int).astype(str)


def real_ir_sets(data_dir: str | Path) -> list[RealSet]:
    """The prepared real datasets in `data_dir` labelled with the 17 NIST-IR groups (e.g. from
    ``data download nist-ir --prepare data/nist-ir.npz``), as real sets named by their file."""
    found = []
    for path in sorted(Path(data_dir).glob("*.npz")):
        try:
            ds = load(path)
        except DatasetError:
            continue
        if not ds.provenance.get("synthetic") and list(ds.label_names) == list(NIST17_NAMES):
            found.append(RealSet(path.stem, path))
    return found
