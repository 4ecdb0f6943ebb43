"""Resumable sweeps: dataset x extractor width x mixer x mixer layers x seed, into one tidy table.

    python -m peakmixer sweep --config params/sweeps/example.yaml

Every run goes through the normal training path (`train.loop.train`) in its own run directory.
A finished run has a row in ``results.csv`` and is skipped next time; a killed run resumes from its
``last.pt``. Datasets with ``protocol: pretrain_finetune`` follow Ho et al. (`protocols`): pre-train on the
reference split once per model (as in their paper: the spread over seeds is the fine-tuning spread) or once
per seed (``pretrain_per_seed``: independent seeds), fine-tune per seed on a fresh random train/validation
split of the fine-tune set, and test on the test split.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from peakmixer.architecture import LAYERED_MIXERS, MIXERS
from peakmixer.attribution.run_scores import RunScoring, scores_identity
from peakmixer.config import ConfigError, MissingFile, apply_overrides, from_dict, load_yaml, to_dict
from peakmixer.data.dataset import SpectraDataset, file_sha256, load
from peakmixer.files import write_text
from peakmixer.provenance import git_sha, package_versions
from peakmixer.studies.outcomes import run_outcomes
from peakmixer.studies.protocols import PROTOCOLS
from peakmixer.studies.run_details import kept_outcomes, score_run, store_outcomes, store_scores
from peakmixer.studies.run_dirs import claim, finished_here, set_aside
from peakmixer.studies.store import (
    append_row,
    lock_of,
    locked,
    read_results,
    replace_row,
    row_state,
    run_row,
    stored_ids,
)
from peakmixer.train.config import TrainConfig
from peakmixer.train.device import resolve_device, resolve_precision
from peakmixer.train.identity import machine, planned_config_id, settings_digest
from peakmixer.train.loop import train


@dataclass
class SweepDataset:
    name: str  # the dataset's name in the table and figures
    path: str = ""  # a SpectraDataset file; or leave empty and name a synthetic `kind`
    kind: str = ""  # a synthetic benchmark (synth-ir17 | synth-bac30), generated into the sweep's data_dir
    n: int = 0  # spectra of the synthetic benchmark
    data_seed: int = 0  # its generator seed
    recipe: str = ""  # a training recipe of `PROTOCOLS` (the paper's, per dataset); explicit keys win
    protocol: Literal["standard", "pretrain_finetune"] = "standard"
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides (the pre-train stage)
    finetune: dict[str, Any] = field(default_factory=dict)  # overrides of the fine-tune stage


@dataclass
class SweepConfig:
    datasets: list[SweepDataset] = field(default_factory=list)
    extractor: str = "respeak"
    widths: list[int] = field(default_factory=lambda: [32])
    blocks: int | None = None
    mixers: list[str] = field(default_factory=lambda: list(MIXERS))
    mixer_layers: list[int] = field(default_factory=lambda: [4])  # for mlpmixer and transformer
    ip_modes: list[str] = field(
        default_factory=lambda: ["off"]
    )  # interpretable path: off | trainable | frozen
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain_seed: int = 0  # the one pre-training per model of pretrain_finetune datasets
    # each seed pre-trains its own model (seed s fine-tunes from a pre-training with seed s): independent
    # seeds; off, every seed fine-tunes from the one pre-training with `pretrain_seed`
    pretrain_per_seed: bool = False
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides for every run
    out_dir: str = "runs/sweep"  # run directories (checkpoints; not committed)
    results: str = ""  # the results table; empty: out_dir/results.csv
    data_dir: str = "data"  # where synthetic datasets are generated and cached
    scores: dict[str, Any] = field(default_factory=dict)  # score explanations after training (cam.RunScoring)

    @property
    def results_path(self) -> Path:
        return Path(self.results) if self.results else Path(self.out_dir) / "results.csv"


@dataclass(frozen=True)
class Run:
    """One cell of the sweep; `model_id` names the model, `run_id` the model and seed."""

    dataset: SweepDataset
    width: int
    blocks: int | None
    mixer: str
    layers: int
    seed: int
    ip: str = "off"

    @property
    def model_id(self) -> str:
        blocks = "" if self.blocks is None else f"x{self.blocks}"
        ip = "" if self.ip == "off" else f"-ip{self.ip}"
        return f"{self.dataset.name}/w{self.width}{blocks}-{self.mixer}{self.layers}{ip}"

    @property
    def run_id(self) -> str:
        return f"{self.model_id}/seed{self.seed}"


def dataset_entry(name: str, path: str | Path = "", **fields: Any) -> SweepDataset:
    """A sweep dataset with the protocol its name implies (Ho et al.'s for bacteria, else plain splits)."""
    return from_dict(SweepDataset, {"name": name, "path": str(path), **PROTOCOLS.get(name, {}), **fields})


def sweep_from_dict(data: dict[str, Any]) -> SweepConfig:
    """A `SweepConfig` from a mapping; a dataset's `recipe` fills in what the dataset does not set."""
    data = dict(data)
    entries = []
    for i, ds in enumerate(data.get("datasets", [])):
        recipe = ds.get("recipe", "") if isinstance(ds, dict) else ""
        if recipe:
            if recipe not in PROTOCOLS:
                raise ConfigError(
                    f"datasets[{i}].recipe: unknown recipe {recipe!r}; known: {sorted(PROTOCOLS)}"
                )
            ds = _merge(PROTOCOLS[recipe], ds)
        entries.append(ds)
    if entries:
        data["datasets"] = entries
    return from_dict(SweepConfig, data)


def load_sweep(
    path: str | Path | None = None, overrides: list[str] | None = None, *, root: str | Path | None = None
) -> SweepConfig:
    """A sweep from YAML plus ``key=value`` overrides. Relative paths (out_dir, results, data_dir, dataset
    paths) are taken relative to `root` when given (the repository, for the committed studies), else to
    the working directory."""
    data = load_yaml(path) if path else {}
    cfg = sweep_from_dict(apply_overrides(data, overrides or []))
    if root is not None:
        base = Path(root)
        for key in ("out_dir", "results", "data_dir"):
            value = getattr(cfg, key)
            if value and not Path(value).is_absolute():
                setattr(cfg, key, str(base / value))
        for ds in cfg.datasets:
            if ds.path and not Path(ds.path).is_absolute():
                ds.path = str(base / ds.path)
    return cfg


def dataset_path(cfg: SweepConfig, ds: SweepDataset) -> Path:
    """The dataset's file; a synthetic one is generated into `cfg.data_dir` on first use."""
    if ds.kind:
        from peakmixer.synth.benchmarks import ensure_synth

        if ds.n <= 0:
            raise ConfigError(f"dataset {ds.name}: a synthetic kind needs n > 0")
        return ensure_synth(ds.kind, ds.n, ds.data_seed, cfg.data_dir)
    if not ds.path:
        raise ConfigError(f"dataset {ds.name}: give a path or a synthetic kind")
    path = Path(ds.path)
    if not path.exists():
        raise MissingFile(f"dataset {ds.name}: {path} not found; prepare it first (data_download/)")
    return path


def plan(cfg: SweepConfig) -> list[Run]:
    """All runs of the sweep in a stable order. `none` and `mlp` have no mixer layers to vary."""
    runs = []
    for ds in cfg.datasets:
        for width in cfg.widths:
            for mixer in cfg.mixers:
                layers = cfg.mixer_layers if mixer in LAYERED_MIXERS else [0]
                for n in layers:
                    for ip in cfg.ip_modes:
                        runs += [Run(ds, width, cfg.blocks, mixer, n, seed, ip) for seed in cfg.seeds]
    return runs


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(
    cfg: SweepConfig, run: Run, stage: Literal["train", "finetune"], out: Path, data_path: Path | str
) -> TrainConfig:
    """The TrainConfig of one run (or one stage of a pre-train -> fine-tune run). The run's width, blocks,
    mixer and layers are set only where the sweep names them: other model settings come from `train`."""
    model: dict[str, Any] = {"extractor": cfg.extractor, "mixer": run.mixer, "width": run.width}
    if run.blocks is not None:
        model["blocks"] = run.blocks
    if run.mixer in LAYERED_MIXERS:
        model["mixer_layers"] = run.layers
    for source, where in ((cfg.train, "train"), (run.dataset.train, f"datasets[{run.dataset.name}].train")):
        given = source.get("model", {})
        clash = sorted(set(given) & set(model)) + (["ip.mode"] if "mode" in given.get("ip", {}) else [])
        if clash:  # the sweep's own value would silently win: say so instead
            raise ConfigError(
                f"{where}.model.{clash[0]} is set by the sweep itself; use its top-level key "
                "(extractor, mixers, widths, blocks, mixer_layers, ip_modes) instead"
            )
    data = _merge(cfg.train, run.dataset.train)
    if stage == "finetune":
        data = _merge(data, run.dataset.finetune)
    model["ip"] = {**data.get("model", {}).get("ip", {}), "mode": run.ip}
    data = _merge(
        data, {"model": model, "data": {"path": str(data_path)}, "out_dir": str(out), "seed": run.seed}
    )
    return from_dict(TrainConfig, data)


def stage_configs(
    cfg: SweepConfig, run: Run, data_path: Path | str
) -> tuple[TrainConfig | None, TrainConfig]:
    """(pre-training config or None, the run's config). Pre-training is done once per model, with
    `cfg.pretrain_seed`, or once per seed with the run's own seed (`cfg.pretrain_per_seed`), in its own
    folder (so another seed list never collides with it); the fine-tuning starts from its ``best.pt``."""
    runs = Path(cfg.out_dir) / "runs"
    tc = run_config(cfg, run, "train", runs / run.run_id, data_path)
    pre, pre_digest = None, ""
    if run.dataset.protocol == "pretrain_finetune":
        seed = run.seed if cfg.pretrain_per_seed else cfg.pretrain_seed
        first = Run(run.dataset, run.width, run.blocks, run.mixer, run.layers, seed, run.ip)
        pre = run_config(cfg, first, "train", runs / run.model_id, data_path)
        pre_digest = settings_digest(pre)
        pre.out_dir = str(runs / run.model_id / f"pretrain-seed{seed}-{pre_digest}")
        tc = run_config(cfg, run, "finetune", runs / run.run_id, data_path)
        tc.init_from = str(Path(pre.out_dir) / "best.pt")
        pre.progress = False
    tc.progress = False
    # the folder names the run and its settings: another budget under the same run name is another folder
    tc.out_dir = str(runs / f"{run.run_id}-{settings_digest(tc, starts_from=pre_digest)}")
    return pre, tc


def run_identity(
    pre: TrainConfig | None,
    tc: TrainConfig,
    dataset: SpectraDataset,
    *,
    device_type: str | None = None,
    precision: str | None = None,
) -> str:
    """The config id the run will have (see `train.config_fingerprint`), without training it: a fine-tuned
    run's id includes its pre-training's id, so a changed pre-training changes it too. `precision` (a
    row's: the fine-tuning's, resolved) stands for the pre-training's too where the two share a setting
    (``auto``, or one pinned precision); a pre-training pinned to another precision is its own."""
    init_id = ""
    if pre is not None:
        mine = precision if pre.precision in ("auto", tc.precision) else None
        init_id = (
            planned_config_id(pre, dataset, init_id="", device_type=device_type, precision=mine) + ":best"
        )
    return planned_config_id(tc, dataset, init_id=init_id, device_type=device_type, precision=precision)


def _write_sidecar(cfg: SweepConfig, wall_seconds: float, hashes: dict[str, str]) -> Path:
    """``<results>.json``: the sweep that writes the table, the machine, the wall time spent so far (summed
    over runs: parallel workers' times add up) and every dataset's hash (a sweep of one dataset keeps the
    others'; each row records its own as well)."""
    path = cfg.results_path.with_suffix(".json")
    info = json.loads(path.read_text()) if path.exists() else {}
    total = float(info.get("wall_seconds", 0.0)) + wall_seconds
    info = {
        "table": cfg.results_path.name,
        "sweep": to_dict(cfg),
        "data_sha256": info.get("data_sha256", {}) | hashes,
        "wall_seconds": total,
        "machine": {**machine(), "cores": os.cpu_count()},
        "packages": package_versions(),
        "git_sha": git_sha(),
        "written_by": "peakmixer.studies.sweep.run_sweep (never by hand)",
    }
    write_text(path, json.dumps(info, indent=1, sort_keys=True, default=str))
    return path


def remade_here(tc: TrainConfig, stored_precision: str) -> bool:
    """Whether a valid stored row is trained again: its study pins a precision (not ``auto``) that this
    machine computes as asked, and the row was made in another one (the Fig. 1 store, once made in bf16 on
    a CPU with AMX, is remade in fp32, which every CPU runs natively and can check)."""
    pinned = tc.precision
    if pinned == "auto" or stored_precision == pinned:
        return False
    return resolve_precision(pinned, resolve_device(tc.device)) == pinned


# `remake` of a valid row whose scores are out of date and whose model is not on this machine to score again
# (`run_sweep(retrain_missing=True)`): it is trained again here, its row replaced whole.
MODEL_MISSING = "model missing"
# `remake` of a row made with other settings, code or data (`run_sweep(replace_changed=True)`): trained as
# the sweep now plans it; the old row stays, counted stale, until the new one replaces it.
CHANGED = "changed"


def _model_here(results: Path, run_id: str, tc: TrainConfig, config_id: str) -> bool:
    """Whether this machine holds the best model of the stored row of `run_id` (`run_dirs.finished_here`)."""
    table = read_results(results)
    made = table.loc[table["run_id"] == run_id, "finished_at"]
    return finished_here(tc.out_dir, config_id, made.iloc[0] if len(made) else "")


def _add_missing_outcomes(s: _Pass, i: int, run: Run, tc: TrainConfig) -> None:
    """A valid stored run without test outcomes (made before they were kept) gets them from its model when
    the model is on this machine; else it stays without (its comparisons fall back to the seeds)."""
    config_id = s.known[run.run_id]
    if (run.run_id, config_id) in s.outcomes or run.run_id not in s.made_on:
        return
    if not _model_here(s.cfg.results_path, run.run_id, tc, config_id):
        return
    with claim(tc.out_dir, wait=not s.skip_taken) as held:
        if not held:
            return
        s.say(i, f"{run.run_id}: outcomes per test spectrum from its model")
        outcomes = run_outcomes(tc, s.datasets[run.dataset.name], s.made_on[run.run_id][1])
        store_outcomes(s.cfg.results_path, run.run_id, config_id, outcomes)
    s.outcomes.add((run.run_id, config_id))


def _made(results: Path, run_id: str, remake: str, scores_id: str, config_id: str) -> bool:
    """Whether the table holds the run as this sweep would make it (another worker finished it meanwhile):
    any row, or, for a row being remade, one no longer in the old precision (or, retrained for a missing
    model, one with today's scores; replacing a changed row, one with today's config id)."""
    table = read_results(results)
    row = table[table["run_id"] == run_id]
    if row.empty or not remake:
        return not row.empty
    if remake == MODEL_MISSING:
        return row["scores_id"].iloc[0] == scores_id
    if remake == CHANGED:
        return row["config_id"].iloc[0] == config_id
    return row["precision"].iloc[0] != remake


@dataclass
class _Pass:
    """One pass of `run_sweep` over a study: what it reads once, and what it learns as it goes."""

    cfg: SweepConfig
    progress: bool
    skip_taken: bool
    retrain_missing: bool
    replace_changed: bool
    scoring: RunScoring | None
    runs: list[Run]
    paths: dict[str, Path]
    hashes: dict[str, str]
    datasets: dict[str, SpectraDataset]
    synthetic: dict[str, bool]
    known: dict[str, str] = field(default_factory=dict)  # stored config id per run
    scored: dict[str, str] = field(default_factory=dict)  # stored scores id per run
    made_on: dict[str, tuple[str, str]] = field(default_factory=dict)  # stored device type, precision
    pretrain_seconds: dict[str, float] = field(default_factory=dict)
    outcomes: set[tuple[str, str]] = field(default_factory=set)  # (run id, config id) with test outcomes

    def say(self, i: int, text: str) -> None:
        if self.progress:
            print(f"[sweep] {i + 1}/{len(self.runs)} {text}", flush=True)

    def read_store(self) -> None:
        self.known, self.scored, self.made_on = stored_ids(read_results(self.cfg.results_path))
        self.outcomes = kept_outcomes(self.cfg.results_path)


def run_sweep(
    cfg: SweepConfig,
    *,
    progress: bool = True,
    skip_taken: bool = False,
    retrain_missing: bool = False,
    replace_changed: bool = False,
    datasets: Sequence[str] = (),
) -> pd.DataFrame:
    """Run every planned run that has no row in the results table yet; returns the planned runs' rows.
    With `skip_taken` (a worker of `run_workers`) a run another process is training is left to it;
    `datasets` (names) keeps the runs of those datasets alone.

    A row made with other settings, code or data (its ``config_id`` differs) is never reused: that is an
    error naming the run, so a changed budget cannot silently show old results, or, with
    `replace_changed`, the run is trained as now planned and its row replaced whole; a row made on another
    device type or precision is kept when it is what the code computes there. A row whose training is
    the same but whose attribution scores were made otherwise (``scores_id``) is scored again from the
    run's model; where that model is not on this machine, the run is refused, or, with `retrain_missing`,
    trained again and its row replaced whole. A run cut short by ``max_steps`` writes no row (it resumes
    next time). A valid row made in another precision than the one the study pins is trained again and
    replaced (`remade_here`); until then it stays in the table, and counts, as what it is.
    """
    unknown = sorted(set(datasets) - {ds.name for ds in cfg.datasets})
    if unknown:
        raise ConfigError(f"no dataset {unknown[0]!r} in this sweep; it has {[d.name for d in cfg.datasets]}")
    wanted = [ds for ds in cfg.datasets if not datasets or ds.name in datasets]
    paths = {ds.name: dataset_path(cfg, ds) for ds in wanted}
    datasets = {name: load(p) for name, p in paths.items()}
    s = _Pass(
        cfg=cfg,
        progress=progress,
        skip_taken=skip_taken,
        retrain_missing=retrain_missing,
        replace_changed=replace_changed,
        scoring=from_dict(RunScoring, cfg.scores) if cfg.scores else None,
        runs=[r for r in plan(cfg) if r.dataset.name in paths],
        paths=paths,
        hashes={name: file_sha256(p) for name, p in paths.items()},
        datasets=datasets,
        synthetic={name: bool(ds.provenance.get("synthetic")) for name, ds in datasets.items()},
    )
    s.read_store()
    for i, run in enumerate(s.runs):
        pre, tc = stage_configs(cfg, run, paths[run.dataset.name])
        if skip_taken:  # another worker may have finished or re-scored it since this one started
            s.read_store()
        config_id, remake, elsewhere = _identity_here(s, run, pre, tc)
        scores_id = scores_identity(s.scoring, config_id) if s.scoring else ""
        if run.run_id in s.known and not remake:
            kept = _keep_or_rescore(s, i, run, tc, config_id, scores_id, elsewhere)
            if kept is True:
                _add_missing_outcomes(s, i, run, tc)
                continue
            remake = kept
        _train_and_store(s, i, run, pre, tc, config_id, scores_id, remake)
    table = read_results(cfg.results_path)
    return table[table["run_id"].isin({r.run_id for r in s.runs})].reset_index(drop=True)


def _identity_here(s: _Pass, run: Run, pre: TrainConfig | None, tc: TrainConfig) -> tuple[str, str, str]:
    """The run's config id as this sweep counts it, the precision of a valid row to train again (or
    ""), and, for the error on a changed row, the id the code plans on the row's own device and precision.

    A row made with another device type or precision (`precision: auto`, `device: auto` on another
    machine) is still valid when it is what the code computes there, as `results.validate` counts it."""
    dataset = s.datasets[run.dataset.name]
    config_id = run_identity(pre, tc, dataset)
    stored = s.known.get(run.run_id)
    if stored is None or stored == config_id or run.run_id not in s.made_on:
        return config_id, "", ""
    device, precision = s.made_on[run.run_id]
    there = run_identity(pre, tc, dataset, device_type=device, precision=precision)
    if there == stored and remade_here(tc, precision):
        return config_id, precision, ""
    if there == stored:
        return there, "", ""
    return config_id, "", (f"; {there} on its {device}, {precision}" if there != config_id else "")


def _keep_or_rescore(
    s: _Pass, i: int, run: Run, tc: TrainConfig, config_id: str, scores_id: str, elsewhere: str
) -> bool | str:
    """A run with a stored row: keep a valid row, score a row of other scores again, refuse another run
    (True: done). Else why it is to be trained again: `MODEL_MISSING` (its scores are out of date and its
    model is not here) or `CHANGED` (another run, to be replaced)."""
    results = s.cfg.results_path
    state = row_state(s.known[run.run_id], s.scored.get(run.run_id, ""), config_id, s.scoring)[0]
    if state == "other run":
        if s.replace_changed:
            return CHANGED
        raise ConfigError(
            f"{results} already holds {run.run_id} made with other settings, code or data (config id "
            f"{s.known[run.run_id]}, now {config_id}{elsewhere}); train it again and replace its row "
            "(sweep --replace-changed), or use another results table"
        )
    if state != "other scores":
        return True
    # the same trained run, scored with other settings or score code: score its model again
    if not _model_here(results, run.run_id, tc, config_id):
        if s.retrain_missing:
            return MODEL_MISSING
        raise ConfigError(
            f"{results} holds {run.run_id} scored otherwise (scores id "
            f"{s.scored.get(run.run_id)!r}, now {scores_id!r}) and its model is not here to score "
            f"again ({tc.out_dir}); train it again here (sweep --retrain-missing) or use another results "
            "table"
        )
    with claim(tc.out_dir, wait=not s.skip_taken) as held:
        if not held:
            return True
        s.say(i, f"{run.run_id}: scoring again")
        scores = score_run(tc, s.datasets[run.dataset.name], s.scoring)
        replace_row(results, run.run_id, store_scores(results, run.run_id, scores, scores_id))
    s.scored[run.run_id] = scores_id
    return True


def _pretrain(s: _Pass, i: int, run: Run, pre: TrainConfig, remake: str) -> tuple[bool, float]:
    """Pre-train the run's model once per sweep; (whether fine-tuning can go on, seconds spent waiting for
    another process that holds it)."""
    if pre.out_dir in s.pretrain_seconds:
        return True, 0.0
    dataset = s.datasets[run.dataset.name]
    w0 = time.perf_counter()
    with claim(pre.out_dir, wait=not s.skip_taken) as held:
        waited = time.perf_counter() - w0
        if not held:  # a worker leaves a model another is pre-training to it
            return False, waited
        s.say(i, f"{run.model_id}: pre-training")
        if remake:
            set_aside(pre.out_dir, planned_config_id(pre, dataset, init_id=""))
        pre_summary = train(pre, resume=True, dataset=dataset)
    if pre_summary.get("stopped"):
        print(f"[sweep] {run.model_id} pre-training cut short by max_steps: no row", flush=True)
        return False, waited
    s.pretrain_seconds[pre.out_dir] = float(pre_summary["train_seconds"])
    return True, waited


def _train_and_store(
    s: _Pass,
    i: int,
    run: Run,
    pre: TrainConfig | None,
    tc: TrainConfig,
    config_id: str,
    scores_id: str,
    remake: str,
) -> None:
    """Train a run (after its pre-training) and write its row; time spent waiting for another process's
    run is not this sweep's work."""
    results, name = s.cfg.results_path, run.dataset.name
    t0, waited = time.perf_counter(), 0.0
    if pre is not None:
        go_on, waited = _pretrain(s, i, run, pre, remake)
        if not go_on:
            return
    w0 = time.perf_counter()
    with claim(tc.out_dir, wait=not s.skip_taken) as held:
        waited += time.perf_counter() - w0
        # the row is written while the run is held, so no other process trains it in between
        if not held or (s.skip_taken and _made(results, run.run_id, remake, scores_id, config_id)):
            return
        again = {
            "": "",
            MODEL_MISSING: ": its model is not here to score again; trained again",
            CHANGED: ": its row was made with other settings, code or data; trained again to replace it",
        }.get(remake, f": made in {remake}, the study pins {tc.precision}; trained again")
        s.say(i, f"{run.run_id}{again}")
        if remake:
            set_aside(tc.out_dir, config_id, whole=remake in (MODEL_MISSING, CHANGED))
        summary = train(tc, resume=True, dataset=s.datasets[name])
        if summary.get("stopped"):
            print(f"[sweep] {run.run_id} cut short by max_steps: no row; it resumes next time", flush=True)
            return
        if summary["config_id"] != config_id:  # the planned identity must be the one training records
            raise RuntimeError(f"{run.run_id}: planned config id {config_id}, trained {summary['config_id']}")
        row = run_row(
            run,
            summary,
            s.pretrain_seconds.get(pre.out_dir if pre else "", 0.0),
            s.synthetic[name],
            tc.optim.epochs,
        )
        # the outcomes, as the details, before the row: a run killed in between has no row and is made again
        outcomes = run_outcomes(tc, s.datasets[name], summary["precision"])
        store_outcomes(results, run.run_id, config_id, outcomes)
        s.outcomes.add((run.run_id, config_id))
        if s.scoring is not None:
            row |= store_scores(results, run.run_id, score_run(tc, s.datasets[name], s.scoring), scores_id)
        if remake:
            replace_row(results, run.run_id, row, whole=True)
        if remake or append_row(results, row):
            with locked(lock_of(results)):  # workers add their times in turn
                _write_sidecar(s.cfg, time.perf_counter() - t0 - waited, s.hashes)
    s.known[run.run_id] = config_id


__all__ = [
    "Run",
    "SweepConfig",
    "SweepDataset",
    "load_sweep",
    "plan",
    "run_sweep",
]
