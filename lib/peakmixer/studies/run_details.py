"""What a finished run of a sweep leaves beside its row, in the study's detail tables (`store.detail_table`):
its attribution scores per pair and the channels each class owns (a scored study), and its outcome per test
spectrum (every study). Each is written before the row, so that a run killed in between has no row and is
made again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from peakmixer.attribution.run_scores import RunScores, RunScoring, score_model
from peakmixer.data.dataset import SpectraDataset
from peakmixer.studies.store import detail_table, replace_run_rows
from peakmixer.train.checkpoint import load_checkpoint, model_from_checkpoint, shipped_weights
from peakmixer.train.config import TrainConfig
from peakmixer.train.prepare import prepare_split


def score_run(tc: TrainConfig, dataset: SpectraDataset, scoring: RunScoring) -> RunScores:
    """The attribution scores of a finished run's best model, its weights rounded as shipped
    (`train.shipped_weights`), on its test split (`attribution.run_scores.score_model`)."""
    ckpt = load_checkpoint(Path(tc.out_dir) / "best.pt")
    model = model_from_checkpoint(ckpt | {"model": shipped_weights(ckpt["model"])})
    test = prepare_split(dataset, tc.data.test_split, tc)
    part = dataset.split(tc.data.test_split).to_length(tc.model.input_length)
    masks = part.masks if tc.data.target == "y" else None
    scores = score_model(model, test.X, test.y, masks, test.task, scoring)
    if not scores.channels.empty:  # each class by name too, so the ownership table reads without the data
        scores.channels["label"] = [dataset.label_names[k] for k in scores.channels["class"]]
    return scores


def store_scores(results: Path, run_id: str, scores: RunScores, scores_id: str) -> dict[str, Any]:
    """Write a run's scores per pair and its channel ownership into the study's detail tables (before its
    row: a run killed in between has no row and is scored again); the summary for its row."""
    for kind, frame in (("pairs", scores.pairs), ("channels", scores.channels)):
        replace_run_rows(
            detail_table(results, kind), run_id, frame.assign(run_id=run_id, scores_id=scores_id)
        )
    return scores.summary | {"scores_id": scores_id}


def store_outcomes(results: Path, run_id: str, config_id: str, outcomes: pd.DataFrame) -> None:
    """A run's outcome per test spectrum into the study's ``_spectra`` table, keyed by run and config id."""
    frame = outcomes.assign(run_id=run_id, config_id=config_id)
    replace_run_rows(detail_table(results, "spectra"), run_id, frame)


def kept_outcomes(results: Path) -> set[tuple[str, str]]:
    """The (run id, config id) of every run whose outcomes per test spectrum the study keeps."""
    path = detail_table(results, "spectra")
    if not path.exists():
        return set()
    done = pd.read_csv(path, usecols=["run_id", "config_id"], dtype=str).drop_duplicates()
    return set(map(tuple, done.to_numpy()))


__all__ = ["kept_outcomes", "score_run", "store_outcomes", "store_scores"]
