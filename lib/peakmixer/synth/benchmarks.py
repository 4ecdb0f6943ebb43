"""Synthetic benchmarks with ground-truth bands: ``synth-ir17`` and ``synth-bac30``.

The paper's datasets are out of reach and heavy on a laptop, so the embedded default data are two generated
benchmarks built from band tables. Unlike any real dataset they say exactly where each class's signal lies:
`SpectraDataset.masks` (K, L) holds it, so explanations can be scored against the truth.

``synth-ir17`` (`make_synth_ir17`): multilabel, the 17 NIST-IR functional groups of Fine et al. 2020 in the
paper's label order, on ``named_axis("ir")`` (1024 points, 400-4000 cm-1), splits train/val/test 80/10/10.
Each present group adds its textbook IR bands (`IR17_BANDS`): centre drawn in the correlation-table range,
FWHM and relative intensity jittered per molecule. Label-free "skeleton" bands, a drifting baseline and white
noise are added; each spectrum is min-max scaled to [0, 1] (as FCG-Former scales NIST-IR).
Labels follow NIST-IR's shares (`IR17_LABEL_SHARES`), 1-6 groups per molecule, and the SMARTS overlaps of the
real labels: an ester also fires *ether*, a carboxylic acid *alcohols*, an acyl halide *alkyl halides*.

``synth-bac30`` (`make_synth_bac30`): multiclass, Ho et al. 2019's 30 isolates (their names and order) on
``named_axis("ho")``; ``extras["y_group"]`` is the empiric-treatment group (8 antibiotics). Every cell is the
same consensus mixture of protein, lipid, nucleic-acid and carbohydrate Raman bands (`BAC30_BANDS`); a class
differs from it by a *signature*: relative weights of a few bands of one or two band sets at each taxonomic
level (Gram type, genus, species, strain; deeper levels change less) plus weak marker bands. Strong
per-spectrum variation of the band-set weights, a fluorescence background and shot noise make single spectra
low-SNR, like Ho's 1-s single-cell spectra. Splits (Ho's 2000 : 100 : 100 per class, at the requested scale):
``reference`` (pre-training), ``val`` (a stratified ``val_fraction`` of the reference-day spectra, for early
stopping), ``finetune`` and ``test``. The finetune/test spectra are measured "on another day": wavenumber
calibration offset, a tilted instrument response and more fluorescence, so fine-tuning matters. No
``finetune_val`` is carved: Ho draws a random 10% of the finetune set per repetition (5 repetitions), which
the training code does with `random_splits(..., stratify=y)`.

Ground-truth masks (K, L) bool:

=============  ===========================================================================================
kind           ``masks[k]`` is True on
=============  ===========================================================================================
synth-ir17     the union over class k's bands in `IR17_BANDS` of [lo - FWHM, hi + FWHM] (centre range
               widened by ``MASK_FWHM`` x the nominal FWHM), whether or not an optional band was drawn.
synth-bac30    the union over the bands where class k's signature is non-zero (its signature bands and
               markers, `bac30_signatures`) of centre +- FWHM, widened by 3 sd of the centre jitter and by
               the measurement-day shift, so it holds for the shifted finetune/test spectra too.
=============  ===========================================================================================

`render_components` returns, for the same arguments, the same spectra and each class's noise-free contribution
(N, K, L) in X's units: for ir17 the group's bands; for bac30 the class signature (its deviation from the
consensus cell), the only label-dependent part of a spectrum. Every call is deterministic: the same
(kind, n, seed, knobs) give byte-identical files (on one platform and numpy version: vectorised float32
``exp`` may differ in the last bit between CPU instruction sets).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from peakmixer.config import ConfigError, from_dict
from peakmixer.data.dataset import SpectraDataset, load, named_axis, synth_recipe
from peakmixer.synth.bac30 import Bac30Knobs, make_synth_bac30, simulate_bac30
from peakmixer.synth.ir17 import IR17Knobs, ir17_dataset, ir17_masks, simulate_ir17
from peakmixer.synth.render import GENERATOR_VERSION, MASK_FWHM, synth_provenance

KINDS = ("synth-ir17", "synth-bac30")
# Versions that can still be made, per kind: synth-ir17 v3-v9 are the realistic generator of
# `synth.ir17_realistic` (v4: wider randomisation; v5: volatile gases and label-free molecules; v6: half the
# molecules drawn from their force-field normal modes; v7: saturated strong bands and brighter C-H stretches;
# v8: table bands that the molecule's own substructures decide; v9: half the normal-mode spectra as a
# classical MD run's).
REALISTIC_IR17 = ("3", "4", "5", "6", "7", "8", "9")  # the keys of `synthir.PRESETS`
VERSIONS = {"synth-ir17": ("2", *REALISTIC_IR17), "synth-bac30": ("2",)}


class SynthParts(NamedTuple):
    """What `render_components` returns; X is byte-identical to the dataset's X for the same arguments."""

    labels: np.ndarray  # (N, K) uint8 for ir17, (N,) int64 class ids for bac30
    X: np.ndarray  # (N, L) float32 spectra
    components: np.ndarray  # (N, K, L) float32: each class's noise-free contribution, in X's units


def make_synth_ir17(n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any) -> SpectraDataset:
    """synth-ir17: (n, 1024) multilabel IR spectra over the 17 NIST-IR groups; see the module docstring
    (version 2) or `synth.ir17_realistic` (versions 3-9, realistic).

    Knobs are the fields of `IR17Knobs` (v2) or `synthir.IR17V3Knobs` (v3-v9: overrides of the version's
    preset). Splits train/val/test 80/10/10 (seeded); masks (17, 1024).
    """
    _check_version("synth-ir17", version)
    if version in REALISTIC_IR17:
        return _make_ir17_realistic(n, seed, version, **knobs)
    k = _knobs("synth-ir17", version, **knobs)
    y, X, _ = simulate_ir17(n, seed, k, with_components=False)
    axis = named_axis("ir")
    provenance = synth_provenance(
        "synth-ir17", n, seed, k, f"each band's centre range +- {MASK_FWHM} x FWHM"
    ) | {
        "bands": IR17_BAND_SOURCES,
        "labels": "Fine et al. 2020 SMARTS semantics; NIST-IR label shares (sub_id datasets figure)",
    }
    return ir17_dataset(X, y, seed, f"synth-ir17-s{seed}", provenance, ir17_masks(axis))


IR17_BAND_SOURCES = "IR correlation tables: Silverstein, Webster & Kiemle 2005 ch. 2; Socrates 2001"


def make_synth(
    kind: str, n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any
) -> SpectraDataset:
    """`make_synth_ir17` or `make_synth_bac30` by name (one of `KINDS`) and generator version."""
    _check_version(kind, version)
    if kind == "synth-ir17":
        return make_synth_ir17(n, seed, version, **knobs)
    return make_synth_bac30(n, seed, **knobs)


def _check_version(kind: str, version: str) -> None:
    if kind not in VERSIONS:
        raise ConfigError(f"unknown synthetic kind {kind!r}: expected one of {KINDS}")
    if version not in VERSIONS[kind]:
        raise ConfigError(f"{kind} has no generator version {version!r}: choose one of {VERSIONS[kind]}")


def _make_ir17_realistic(n: int, seed: int, version: str, **knobs: Any) -> SpectraDataset:
    from peakmixer.synth.ir17_realistic import ir17_v3_masks, molecule_pool, render_ir17_v3

    k = _knobs("synth-ir17", version, **knobs)
    y, X, _, mol = render_ir17_v3(n, seed, k)
    rule = "each band's centre range x frequency scale x (1 +- 2 band_jitter) +- reach"
    prov = synth_provenance("synth-ir17", n, seed, k, rule) | {
        "generator_version": version,
        "bands": IR17_BAND_SOURCES,
        "labels": "NCI structures shipped with RDKit (first_5K.smi), NIST-17 SMARTS of Fine et al. 2020",
    }
    smiles = np.array([molecule_pool().smiles[i] if i >= 0 else "" for i in mol], dtype=str)
    masks = ir17_v3_masks(named_axis("ir"), k)
    return ir17_dataset(X, y, seed, f"synth-ir17-v{version}-s{seed}", prov, masks, {"smiles": smiles})


def render_components(
    kind: str, n: int, seed: int, version: str = GENERATOR_VERSION, **knobs: Any
) -> SynthParts:
    """The spectra of ``make_synth(kind, n, seed, version, **knobs)`` with each class's noise-free part.

    Returns labels, X (N, L) and components (N, K, L); a class absent from a spectrum has exactly zero there.
    Memory is N * K * L * 4 bytes: meant for a few hundred spectra (tests, the data notebook).
    """
    _check_version(kind, version)
    k = _knobs(kind, version, **knobs)
    if kind == "synth-ir17" and version in REALISTIC_IR17:
        from peakmixer.synth.ir17_realistic import render_ir17_v3

        y, X, comp, _ = render_ir17_v3(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    if kind == "synth-ir17":
        y, X, comp = simulate_ir17(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    if kind == "synth-bac30":
        y, _, X, comp = simulate_bac30(n, seed, k, with_components=True)
        return SynthParts(y, X, comp)
    raise ConfigError(f"unknown synthetic kind {kind!r}: expected one of {KINDS}")


def ensure_synth(
    kind: str, n: int, seed: int, data_dir: str | os.PathLike, version: str = GENERATOR_VERSION
) -> Path:
    """The file of (kind, n, seed, version) under `data_dir`, generated on first use; generation is
    deterministic, so a file with this name (which carries the version) holds the same data. A cached file
    whose recorded recipe (`recipe`: the knobs included) is not the current one is made again: runs name
    their data by that recipe (`data.data_identity`)."""
    _check_version(kind, version)
    path = Path(data_dir) / f"{kind}_v{version}_n{n}_s{seed}.npz"
    if not path.exists() or _recorded_recipe(path) != recipe(kind, n, seed, version):
        make_synth(kind, n, seed, version).save(path)
    return path


# How `ensure_synth` names its files.
_FILE_NAME = re.compile(
    r"(?P<kind>synth-[a-z0-9]+)_v(?P<version>[A-Za-z0-9.]+)_n(?P<n>\d+)_s(?P<seed>\d+)\.npz"
)


def ensure_named(path: str | os.PathLike) -> Path:
    """`path` itself when it exists; else, when its name is one `ensure_synth` gives, that benchmark made
    again there (a model's training data, named in its config, on a clone that never made it)."""
    path = Path(path)
    match = _FILE_NAME.fullmatch(path.name)
    if path.exists() or match is None:
        return path
    m = match.groupdict()
    return ensure_synth(m["kind"], int(m["n"]), int(m["seed"]), path.parent, m["version"])


def model_data(checkpoint: str | os.PathLike, given: str | os.PathLike | None = None) -> SpectraDataset:
    """The dataset a model's export is checked on: `given`, else the one the model was trained on (named
    in its config; a built-in benchmark's file is made again when it is not here, `ensure_named`)."""
    from peakmixer.train.checkpoint import load_checkpoint  # here: the generators run without torch
    from peakmixer.train.config import TrainConfig

    path = given or from_dict(TrainConfig, load_checkpoint(checkpoint)["config"]).data.path
    if not path:
        raise ConfigError(f"{checkpoint}: its config names no dataset; name one (--data)")
    return load(ensure_named(path))


def recipe(kind: str, n: int, seed: int, version: str = GENERATOR_VERSION) -> dict[str, Any]:
    """What `data.data_identity` names a default-knob synthetic set by, without generating it."""
    provenance = synth_provenance(kind, n, seed, _knobs(kind, version), "") | {"generator_version": version}
    return synth_recipe(provenance)


def _recorded_recipe(path: Path) -> dict[str, Any]:
    return synth_recipe(load(path).provenance)


def _knobs(kind: str, version: str, **overrides: Any) -> Any:
    """The knobs of (kind, version) with `overrides`: `IR17Knobs`, `Bac30Knobs` or, for the realistic
    synth-ir17 versions, `synthir.IR17V3Knobs` from the version's preset."""
    if kind == "synth-ir17" and version in REALISTIC_IR17:
        from peakmixer.synth.ir17_realistic import knobs_for

        return knobs_for(version, **overrides)
    return {"synth-ir17": IR17Knobs, "synth-bac30": Bac30Knobs}[kind](**overrides)


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``data synth``: --kind, --n, --seed, --out and repeatable --knob NAME=VALUE."""
    parser.add_argument("--kind", choices=KINDS, required=True, help="which benchmark")
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed (same arguments -> identical file)")
    parser.add_argument("--out", type=Path, required=True, help="output dataset file")
    parser.add_argument(
        "--version",
        default=GENERATOR_VERSION,
        help=f"generator version (default {GENERATOR_VERSION}; synth-ir17 3-6: realistic, see synthir)",
    )
    parser.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a knob (fields of IR17Knobs / IR17V3Knobs / Bac30Knobs), e.g. --knob noise=0.05",
    )


def run_synth(args: argparse.Namespace) -> Path:
    """Generate and save the dataset described by `args` (from `add_synth_arguments`); returns its path."""
    knobs = parse_knobs(args.kind, args.knob, args.version)
    ds = make_synth(args.kind, args.n, args.seed, args.version, **knobs)
    path = ds.save(args.out)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in ds.splits.items())
    print(f"{path}: {args.kind}, {len(ds)} spectra x {ds.length} points, seed {args.seed} ({sizes})")
    return path


def parse_knobs(kind: str, items: list[str], version: str = GENERATOR_VERSION) -> dict[str, Any]:
    """``["noise=0.05", "normalize=false"]`` -> typed knob values for `kind`; unknown names raise."""
    _check_version(kind, version)
    cls = type(_knobs(kind, version))
    types = {f.name: f.type for f in fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in types:
            raise ConfigError(f"--knob {item!r}: expected NAME=VALUE with NAME one of {sorted(types)}")
        if types[name] == "bool":
            if value.lower() not in {"true", "false", "1", "0"}:
                raise ConfigError(f"--knob {item!r}: expected true or false")
            out[name] = value.lower() in {"true", "1"}
        else:
            out[name] = int(value) if types[name] == "int" else float(value)
    return out
