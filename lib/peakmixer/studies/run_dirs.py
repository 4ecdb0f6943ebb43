"""A sweep's run directories: held while a process trains one, finished or not, and set aside when a run
is made again there."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from peakmixer.train.checkpoint import load_checkpoint


@contextmanager
def claim(run_dir: str | Path, *, wait: bool = True):
    """Hold a run directory while training it; yields whether it is held. Another sweep process (another
    study sharing the folder) that reaches the same run waits, then finds it finished instead of training
    it twice; a worker (`wait=False`) is told at once that the run is taken and moves on."""
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def finished_here(out_dir: str | Path, config_id: str, finished_at: str) -> bool:
    """Whether this machine holds the best model of the stored run: a finished training (its
    ``metrics.json``, written as a run ends, names the run) made when the row says (`finished_at`). A run cut
    short is resumed, not scored; another training of the same run (made here after the row was made
    elsewhere) is not the row's model."""
    out = Path(out_dir)
    if not (out / "best.pt").exists() or not (out / "metrics.json").exists():
        return False
    made = json.loads((out / "metrics.json").read_text())
    return made.get("config_id") == config_id and made.get("finished_at") == finished_at


def set_aside(out_dir: str | Path, config_id: str, *, whole: bool = False) -> None:
    """Move a run directory holding another run (a row being remade: the old precision's checkpoints) to
    ``<dir>.<its config id>``, kept, so that the new run starts there afresh instead of refusing to resume.
    With `whole`, a run directory whose best model is gone (its last checkpoint would only resume a
    finished run) is moved aside too; a run cut short keeps its folder and resumes."""
    out = Path(out_dir)
    last = out / "last.pt"
    if not last.exists():
        return
    old = load_checkpoint(last).get("config_id", "unknown")
    if old != config_id or (whole and not (out / "best.pt").exists()):
        aside = out.with_name(f"{out.name}.{old}")
        out.rename(aside)
        print(f"[sweep] {out}: another run's checkpoints (id {old}) kept in {aside.name}", flush=True)


__all__ = ["claim", "finished_here", "set_aside"]
