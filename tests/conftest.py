"""Shared fixtures. Real data fixtures live in ../shared/data (never copied into the project)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests must not depend on how many cores the machine has; two is what CI has. OMP_NUM_THREADS, when set,
# wins (e.g. 1 beside a long training run: two busy thread pools on two cores slow tiny models 3-5x). In a
# process of a parallel run (pytest-xdist) one thread, for the same reason: the other process is busy too;
# set in the environment, so the commands a test starts inherit it.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no shared fixtures beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data fixtures unavailable")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ir_checkpoint(tmp_path_factory) -> Path:
    """A tiny IR model with an interpretable path, trained for seconds on synth-ir17 (400-4000 cm-1)."""
    from peakmixer.config import from_dict
    from peakmixer.synth.benchmarks import make_synth
    from peakmixer.train.config import TrainConfig
    from peakmixer.train.loop import train

    tmp = tmp_path_factory.mktemp("ir")
    data = make_synth("synth-ir17", 300, 0).save(tmp / "ir.npz")
    cfg = from_dict(
        TrainConfig,
        {
            "data": {"path": str(data)},
            "model": {"width": 8, "blocks": 6, "mixer_layers": 1, "hidden": 16, "ip": {"mode": "trainable"}},
            "optim": {"epochs": 1, "batch_size": 32},
            "precision": "fp32",
            "progress": False,
            "out_dir": str(tmp / "run"),
        },
    )
    train(cfg)
    return tmp / "run" / "best.pt"


def run_all_smoke(root: Path, *only: str) -> Path:
    """`./run_all.sh --profile smoke [--only ...]` with every output under `root`; returns the figures."""
    cmd = [str(REPO / "run_all.sh"), "--profile", "smoke", "--figures", str(root / "figures")]
    cmd += ["--only", *only] if only else []
    cmd += ["--data-dir", str(root / "data"), "--set", f"runs_dir={root / 'runs'}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "figures" / "smoke"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One test that reads the smoke run goes first, so that a process starts making it at once (it is the
    longest piece of the suite); the others go last, so that in a parallel run the other process works
    through the rest meanwhile instead of waiting for it. The first is one that never skips (a browser
    test skips where no browser is installed, and the smoke run would then start only at the end)."""
    reads = [item for item in items if "smoke" in getattr(item, "fixturenames", ())]
    if not reads:
        return
    first = next((item for item in reads if item.get_closest_marker("browser") is None), reads[0])
    rest = [item for item in reads if item is not first]
    items[:] = [first] + [item for item in items if item not in reads] + rest


@pytest.fixture(scope="session")
def smoke(tmp_path_factory, worker_id) -> Path:
    """Every notebook run once by `./run_all.sh --profile smoke`, as CI and a new user do. In a parallel run
    (pytest-xdist) the first process that needs it makes it in the folder the processes share; another waits
    for it and reads it."""
    if worker_id == "master":
        return run_all_smoke(tmp_path_factory.mktemp("smoke"))
    import fcntl

    root = tmp_path_factory.getbasetemp().parent / "smoke"
    root.mkdir(exist_ok=True)
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "made").exists():
            run_all_smoke(root)
            (root / "made").touch()
    return root / "figures" / "smoke"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep what a person may want to look at afterwards (screenshots)."""
    path = Path(os.environ.get("PEAKMIXER_ARTIFACTS", REPO / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def numbers_in(text: str) -> list[float]:
    """The decimal numbers a generated line states, signs kept: tests check a section's numbers, not its
    wording, so a reworded sentence passes and a wrong number fails."""
    return [float(x) for x in re.findall(r"[+-]?\d+\.\d+", text)]


def line_with(text: str, start: str) -> str:
    """The one line of `text` that starts with `start`."""
    (line,) = [x for x in text.splitlines() if x.startswith(start)]
    return line
