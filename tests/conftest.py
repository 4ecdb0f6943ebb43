"""Shared fixtures. Real data fixtures live in ../shared/data (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests must not depend on how many cores the machine has; two is what CI has. OMP_NUM_THREADS, when set,
# wins (e.g. 1 beside a long training run: two busy thread pools on two cores slow tiny models 3-5x).
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no shared fixtures beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data fixtures unavailable")
    return SHARED_DATA
