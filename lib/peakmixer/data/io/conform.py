"""One file's spectra onto a target axis: resampling, the coverage rule, normalisation and a preprocessing
pipeline, each refused row recorded with its reason (the per-file steps of `batch.read_spectra`)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from peakmixer.data.dataset import axis_coverage as coverage
from peakmixer.data.dataset import minmax, resample_spectra
from peakmixer.data.io.base import Rejection, Spectra
from peakmixer.data.preprocess import Pipeline

Normalize = Literal["minmax"] | None


def resample(x: np.ndarray, Y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n, L) spectra on ascending `x` -> (n, L') on ascending `target`, edge-held outside `x`
    (bin mean when downsampling, else linear: `data.dataset.resample_spectra`)."""
    return resample_spectra(Y, x, target, outside="edge").astype(np.float64)


def preprocessed(item: Spectra, pipeline: Pipeline, rejected: list[Rejection]) -> Spectra | None:
    """`item` through `pipeline`, from where the pipeline started when it was recorded: each file's own
    axis (it was given at import), or the axis and scaling of the dataset it was given (`data preprocess`;
    ``pipeline.input``). A dataset file already processed by this pipeline is kept as it is; one processed
    by another is refused (its raw spectra are not there to start from). Rows the pipeline cannot treat
    are refused with the reason; the others are kept."""
    done = item.meta.get("preprocess")
    if done:
        if done.get("digest") == pipeline.digest:
            return item
        reason = (
            f"already preprocessed with {done.get('name') or done.get('digest')}, not the expected "
            f"{pipeline.name or pipeline.digest}: give its raw spectra"
        )
        rejected += [Rejection(i, reason) for i in item.ids]
        return None
    ok = np.isfinite(item.Y).all(axis=1)
    rejected += [Rejection(item.ids[i], "NaN or Inf values") for i in np.flatnonzero(~ok)]
    x, Y = item.x, np.asarray(item.Y, dtype=np.float64)[ok]
    if pipeline.input and len(Y):
        x = np.asarray(pipeline.input["axis"], dtype=np.float64)
        Y = resample(item.x, Y, x)
        if pipeline.input.get("normalize") == "minmax":
            Y, flat = minmax(Y)
            rows = np.flatnonzero(ok)
            rejected += [
                Rejection(item.ids[rows[k]], "constant spectrum (cannot be min-max normalised)")
                for k in np.flatnonzero(flat)
            ]
            ok[rows[flat]] = False
            Y = Y[~flat]
    if not ok.any():
        return None
    try:
        x, Y = pipeline.apply(x, Y)
    except Exception as e:  # a step that cannot treat this file must not end the batch
        reason = f"preprocessing: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        rejected += [Rejection(item.ids[i], reason) for i in np.flatnonzero(ok)]
        return None
    rows = np.flatnonzero(ok)
    left = np.isfinite(Y).all(axis=1)
    why = "the pipeline left NaN values (a spectrum without spread or area cannot be normalised)"
    rejected += [Rejection(item.ids[rows[k]], why) for k in np.flatnonzero(~left)]
    keep = rows[left]
    if not len(keep):
        return None

    def pick(values: list | None) -> list | None:
        return [values[i] for i in keep] if values is not None else None

    return Spectra(
        x=x, Y=Y[left], ids=pick(item.ids), smiles=pick(item.smiles), labels=pick(item.labels), meta=item.meta
    )


def coverage_reason(x: np.ndarray, target: np.ndarray, min_coverage: float) -> str:
    frac = coverage(x, target)
    return (
        f"covers {frac:.0%} of the target axis {target[0]:.0f}-{target[-1]:.0f} cm-1 "
        f"(data {x[0]:.0f}-{x[-1]:.0f} cm-1; need {min_coverage:.0%})"
    )


def conform(
    block: Spectra, target: np.ndarray, normalize: Normalize, min_coverage: float, rejected: list[Rejection]
) -> Spectra | None:
    """The block on `target` (resampled, normalised), minus refused rows; None when nothing is left."""
    if coverage(block.x, target) < min_coverage:
        rejected += [Rejection(i, coverage_reason(block.x, target, min_coverage)) for i in block.ids]
        return None
    finite = np.isfinite(block.Y).all(axis=1)
    Y = resample(block.x, np.where(finite[:, None], block.Y, 0.0), target)
    ok = finite.copy()
    if normalize == "minmax":
        Y, flat = minmax(Y)
        ok &= ~flat
    for i in np.flatnonzero(~ok):
        why = "NaN or Inf values" if not finite[i] else "constant spectrum (cannot be min-max normalised)"
        rejected.append(Rejection(block.ids[i], why))
    if not ok.any():
        return None
    kept = np.flatnonzero(ok)
    smiles = [block.smiles[i] for i in kept] if block.smiles else None
    return Spectra(x=target, Y=Y[kept].astype(np.float32), ids=[block.ids[i] for i in kept], smiles=smiles)
