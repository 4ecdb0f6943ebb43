"""A preprocessing pipeline: an ordered list of steps with their parameters, written and read as YAML or
JSON, applied to spectra, to a dataset (recorded in its provenance) and, through a model's checkpoint, to
the raw files a model is shown later.

    - {step: despike, threshold: 6}
    - {step: crop, start: 400, stop: 1800}
    - {step: baseline, method: imodpoly, params: {poly_order: 5}}
    - {step: normalize, method: minmax}

`load_pipeline` takes a preset name (`PRESETS`; ``data preprocess --list``) or a file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from peakmixer.config import ConfigError, MissingFile, from_dict
from peakmixer.data.dataset import SpectraDataset, minmax, resample_spectra
from peakmixer.data.preprocess.steps import STEPS, BaselineStep, Step

# Named pipelines. The Raman preset follows what is usual for spectra of cells on a fluorescent background
# (as in Ho et al. 2019, whose model input is 1000 points over 382-1792 cm-1): cosmic-ray removal, the
# fingerprint region, light smoothing, a polynomial baseline, 1000 points, min-max. The IR preset suits
# absorbance spectra: the mid-IR range, an asymmetric least-squares baseline, min-max.
PRESETS: dict[str, dict[str, Any]] = {
    "raman-cells": {
        "about": "Raman of cells (Ho et al. style): despike, 382-1792 cm-1, Savitzky-Golay, polynomial "
        "baseline, 1000 points, min-max",
        "steps": [
            {"step": "despike", "threshold": 6.0, "window": 3},
            {"step": "crop", "start": 381.98, "stop": 1792.4},
            {"step": "smooth", "window": 9, "polyorder": 3},
            {"step": "baseline", "method": "imodpoly", "params": {"poly_order": 5}},
            {"step": "resample", "start": 381.98, "stop": 1792.4, "n": 1000},
            {"step": "normalize", "method": "minmax"},
        ],
    },
    "ir-absorbance": {
        "about": "IR absorbance: 400-4000 cm-1, asymmetrically reweighted least-squares baseline, min-max",
        "steps": [
            {"step": "crop", "start": 400.0, "stop": 4000.0},
            {"step": "baseline", "method": "arpls", "params": {"lam": 1e6}},
            {"step": "normalize", "method": "minmax"},
        ],
    },
    "raman-light": {
        "about": "Raman, touching the bands least: despike and min-max only",
        "steps": [{"step": "despike"}, {"step": "normalize", "method": "minmax"}],
    },
}


@dataclass
class Stage:
    """A spectrum after one step, and what a figure shows of the step."""

    step: str
    x: np.ndarray
    y: np.ndarray
    details: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Pipeline:
    steps: list[Step]
    name: str = ""  # the preset's, if it is one
    # Where it started when it was recorded: None, each raw file on its own axis (`data import
    # --preprocess`); else {"axis": [...], "normalize": "minmax" | None}, the spectra of a dataset on its
    # axis and scaling (`data preprocess`), which a raw file is put onto first
    input: dict[str, Any] | None = None

    @classmethod
    def from_spec(cls, spec: list[dict[str, Any]], *, name: str = "", where: str = "pipeline") -> Pipeline:
        """Steps from ``[{step: NAME, PARAM: VALUE, …}, …]``; an unknown step or parameter is a
        `ConfigError` naming it and the valid ones."""
        if not isinstance(spec, list):
            raise ConfigError(f"{where}: a list of steps, e.g. [{{step: normalize, method: minmax}}]")
        steps = []
        for k, entry in enumerate(spec):
            if not isinstance(entry, dict) or "step" not in entry:
                raise ConfigError(f"{where}, step {k + 1}: a mapping with `step: NAME` ({', '.join(STEPS)})")
            params = {key: v for key, v in entry.items() if key != "step"}
            kind = STEPS.get(str(entry["step"]))
            if kind is None:
                raise ConfigError(
                    f"{where}: unknown step {entry['step']!r}; the steps are {', '.join(STEPS)}"
                )
            known = [f for f in kind.__dataclass_fields__ if f != "name"]
            unknown = sorted(set(params) - set(known))
            if unknown:
                raise ConfigError(
                    f"{where}: step {kind.name} has no parameter {', '.join(unknown)}; it takes "
                    + ", ".join(known)
                )
            step = from_dict(kind, params, where=f"{where}: {kind.name}")
            if isinstance(step, BaselineStep):
                step.check()
            steps.append(step)
        return cls(steps, name)

    def to_spec(self) -> list[dict[str, Any]]:
        return [{"step": s.name, **asdict(s)} for s in self.steps]

    def record(self) -> dict[str, Any]:
        """What a dataset's provenance and a checkpoint keep of the pipeline."""
        return {"name": self.name, "steps": self.to_spec(), "digest": self.digest, "input": self.input}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_spec(), sort_keys=True).encode()).hexdigest()[:12]

    def apply(self, x: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spectra (N, L) on ascending `x` through every step; returns the final axis and spectra."""
        x, Y = np.asarray(x, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        for step in self.steps:
            x, Y = step.apply(x, Y)
        return x, Y

    def trace(self, x: np.ndarray, y: np.ndarray) -> list[Stage]:
        """One spectrum after each step (the raw one first), with each step's details."""
        x, Y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)[None]
        stages = [Stage("raw", x, Y[0])]
        for step in self.steps:
            x, Y, details = step.apply_with_details(x, Y)
            stages.append(Stage(step.name, x, Y[0], {k: v[0] for k, v in details.items()}))
        return stages

    def describe(self) -> str:
        parts = []
        for s in self.to_spec():
            params = ", ".join(f"{k}={v}" for k, v in s.items() if k != "step")
            parts.append(f"{s['step']}({params})")
        return " -> ".join(parts)


def _scaling(ds: SpectraDataset) -> str | None:
    """How a dataset's spectra were scaled: what its import recorded, else min-max when every spectrum
    spans exactly [0, 1] (the synthetic generators'), else none."""
    if "normalize" in ds.provenance:
        return ds.provenance["normalize"]
    lo, hi = ds.X.min(axis=1), ds.X.max(axis=1)
    return "minmax" if np.allclose(lo, 0, atol=1e-6) and np.allclose(hi, 1, atol=1e-6) else None


def load_pipeline(preset_or_file: str | Path) -> Pipeline:
    """A preset by name, or a YAML / JSON file of steps (a list, or a mapping with ``steps``)."""
    key = str(preset_or_file)
    if key in PRESETS:
        return Pipeline.from_spec(PRESETS[key]["steps"], name=key, where=f"preset {key}")
    path = Path(key)
    if not path.exists():
        raise MissingFile(f"{key}: neither a preset ({', '.join(PRESETS)}) nor a pipeline file")
    try:
        spec = yaml.safe_load(path.read_text())  # JSON is YAML too
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not a YAML / JSON pipeline ({str(e).splitlines()[0]})") from None
    if isinstance(spec, dict):
        spec = spec.get("steps")
    return Pipeline.from_spec(spec, name=path.stem, where=str(path))


def from_record(record: dict[str, Any]) -> Pipeline:
    """The pipeline a provenance or checkpoint recorded (`Pipeline.record`)."""
    pipeline = Pipeline.from_spec(record["steps"], name=record.get("name", ""), where="recorded pipeline")
    pipeline.input = record.get("input")
    return pipeline


def conform_dataset(ds: SpectraDataset, record: dict[str, Any] | None) -> SpectraDataset:
    """`ds` as a model whose training data went through the pipeline `record` (None: through none) takes
    it: raw data are preprocessed here; data processed by that pipeline pass; data processed otherwise (as
    their provenance tells) are refused in one line."""
    done = ds.provenance.get("preprocess")
    where = ds.source or "dataset"
    if record is None:
        if done:
            raise ConfigError(
                f"{where}: preprocessed ({done.get('name') or done.get('digest')}), but the model was "
                "trained on data without a preprocessing pipeline: give its raw spectra"
            )
        return ds
    if done is None:
        if not record.get("input"):
            raise ConfigError(
                f"{where}: the model's pipeline ({record.get('name') or record.get('digest')}) ran on each "
                "raw file when it was imported; give the raw files themselves (e.g. `evaluate --data FILES`)"
            )
        start = ds.onto(np.asarray(record["input"]["axis"]), name=where)
        if record["input"].get("normalize") == "minmax":
            start.X = minmax(start.X)[0].astype(np.float32)
        return preprocess_dataset(start, from_record(record))
    if done.get("digest") == record.get("digest"):
        return ds
    raise ConfigError(
        f"{where}: preprocessed with {done.get('name') or done.get('digest')}, but the model expects "
        f"{record.get('name') or record.get('digest')}: give its raw spectra"
    )


def import_scaling(provenance: dict[str, Any]) -> str:
    """How a dataset's spectra were scaled when imported, as a model trained on it records it (and its
    inputs are then read): ``preprocess`` (its pipeline decided), ``none`` (imported with
    ``--normalize none``), or ``minmax`` (every importer's default, and the generators' scale)."""
    if provenance.get("preprocess"):
        return "preprocess"
    return "none" if "normalize" in provenance and provenance["normalize"] in (None, "none") else "minmax"


def read_options(record: dict[str, Any] | None, scaling: str = "minmax") -> dict[str, Any]:
    """How `data.io.read_spectra` reads raw files for a model whose data went through the pipeline
    `record`: through that pipeline, which then decides the scaling; without one, scaled as its data were
    imported (`import_scaling`: min-max, or left as measured)."""
    if record:
        return {"normalize": None, "preprocess": from_record(record)}
    return {"normalize": None if scaling == "none" else "minmax", "refuse_preprocessed": True}


def save_pipeline(pipeline: Pipeline, path: str | Path) -> Path:
    from peakmixer.files import write_text

    return write_text(path, yaml.safe_dump({"steps": pipeline.to_spec()}, sort_keys=False))


def preprocess_dataset(ds: SpectraDataset, pipeline: Pipeline, *, keep_raw: bool = False) -> SpectraDataset:
    """`ds` through `pipeline`: new spectra (and axis, with the ground-truth masks carried onto it), the
    pipeline in its provenance; with `keep_raw`, the raw spectra as the extra ``raw_X`` and their axis in
    the provenance. A dataset already preprocessed is refused: start from the raw one."""
    done = ds.provenance.get("preprocess")
    if done:
        raise ConfigError(
            f"{ds.source or 'dataset'}: already preprocessed ({done.get('name') or done.get('digest')}); "
            "preprocess its raw source instead"
        )
    x, Y = pipeline.apply(ds.axis, ds.X)
    bad = ~np.isfinite(Y).all(axis=1)
    if bad.any():
        names = ", ".join(ds.ids[i] for i in np.flatnonzero(bad)[:5])
        raise ConfigError(f"{ds.source or 'dataset'}: the pipeline leaves non-finite values in {names}")
    started = {"axis": [float(v) for v in ds.axis], "normalize": _scaling(ds)}
    pipeline = Pipeline(pipeline.steps, pipeline.name, started)
    masks = None
    if ds.masks is not None:
        masks = resample_spectra(ds.masks.astype(np.float64), ds.axis, x, outside="edge") >= 0.5
    extras = dict(ds.extras)
    provenance = dict(ds.provenance) | {"preprocess": pipeline.record()}
    if keep_raw:
        extras["raw_X"] = ds.X
        provenance["raw_axis"] = [float(v) for v in ds.axis]
    return SpectraDataset(
        X=Y,
        axis=x,
        y=ds.y,
        task=ds.task,
        label_names=ds.label_names,
        ids=ds.ids,
        splits=ds.splits,
        provenance=provenance,
        masks=masks,
        extras=extras,
    )
