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

import numpy as np
import pandas as pd
import torch

from peakmixer.config import ConfigError, MissingFile
from peakmixer.data.dataset import DatasetError, SpectraDataset, file_sha256, load, named_axis
from peakmixer.data.labels import NIST17_NAMES
from peakmixer.files import write_csvs
from peakmixer.paths import DATA_DIR, RESULTS_DIR, RUNS_DIR, TRAIN_PARAMS
from peakmixer.studies.sim2real_scoring import (
    METRICS,
    baselines,
    fit_thresholds,
    ranking,
    score,
    threshold_ceiling,
)
from peakmixer.studies.store import lock_of, locked
from peakmixer.studies.textbook_rule import BANDS_NAME, textbook_rule
from peakmixer.synth.benchmarks import VERSIONS, ensure_synth

STORE = RESULTS_DIR / "sim2real.csv"
LABELS_NAME = "sim2real_labels.csv"  # the per-label scores, beside the store's table
TRAIN_CONFIG = TRAIN_PARAMS / "synth_ir17.yaml"
PREDICTIONS_NAME = "sim2real_predictions.csv"  # per model and real spectrum: true and predicted labels
DEFAULT_N = 4000  # synthetic spectra of the default budget (the targets' budget); other sizes: a diagnostic
BOOT_DRAWS, BOOT_SEED = 2000, 0  # the README's intervals: resamples of a real set's spectra, and their seed


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
        rule = textbook_rule(val, validation_name(version, cfg.n))
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


def validation_name(version: str, n: int) -> str:
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


def main_size(sizes: Sequence[int] | pd.Series) -> int:
    """The synthetic set size a store's verdict is about: the default budget's where present, else the
    smallest (a store made on a smaller budget, as the tests make); other sizes are compared with it."""
    found = {int(n) for n in sizes}
    return DEFAULT_N if DEFAULT_N in found else min(found)


def generator_key(version: str, size: int, main: int) -> str:
    """A generator's name after "synth-ir17 v": its version, and its set size where not the `main` one."""
    return str(version) if int(size) == main else f"{version} at n = {int(size)}"


def with_set_size(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per-label or prediction rows with their set size: rows written before it was recorded on them take
    it from the table's row of the same model (config id)."""
    if "n_synthetic" in frame:
        return frame
    first = table.drop_duplicates("config_id")
    size = pd.Series(first["n_synthetic"].to_numpy(), index=first["config_id"].astype(str))
    return frame.assign(n_synthetic=frame["config_id"].astype(str).map(size))


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
    scored replace that set's, real sets first. Under the store's lock (`store.locked`): a second writer
    waits."""
    store.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_of(store)):  # read, merge and replace the four tables as one step
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
                old = with_set_size(old, stored)
                frame = pd.concat([old[~_generators(old).isin(scored)], frame], ignore_index=True)
            # by version and set size, whichever was stored last: the README's table and "first / last"
            # follow it
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
        return write_csvs(tables)  # replaced together: a crash leaves them agreeing


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
