"""Run the paper notebooks headless with papermill: params/<profile>/<name>.yaml -> figures/<profile>/.

Every notebook receives, besides its YAML parameters, ``profile`` and ``out_dir`` (absolute), so paths
never depend on the working directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from .provenance import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
FIGURES_DIR = REPO_ROOT / "figures"
PROFILES = ("smoke", "default", "full", "paper")


def available_notebooks() -> list[str]:
    """Notebook names (without ``.ipynb``) in run order."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(profile: str, name: str, out_root: Path = FIGURES_DIR) -> dict[str, Any]:
    """The parameters papermill injects: the profile's YAML plus ``profile`` and ``out_dir``."""
    path = PARAMS_DIR / profile / f"{name}.yaml"
    params = yaml.safe_load(path.read_text()) if path.exists() else {}
    return {**(params or {}), "profile": profile, "out_dir": str((out_root / profile).resolve())}


def _declared(name: str, params: dict[str, Any]) -> dict[str, Any]:
    import papermill as pm

    declared = pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    return {k: v for k, v in params.items() if k in declared}


def run_notebooks(
    profile: str = "default",
    only: list[str] | None = None,
    *,
    out_root: Path = FIGURES_DIR,
    extra: dict[str, Any] | None = None,
    execution_timeout: int | None = None,
) -> list[Path]:
    """Execute notebooks in order (one after the other: parallel kernels starve 2 cores).

    `extra` parameters override the profile's, in each notebook that declares them (e.g. ``data_dir``).
    `execution_timeout` limits each cell (seconds); by default 1 hour, none for the hours-long full profile.
    Returns the executed notebooks, written beside the figures as ``figures/<profile>/<name>.ipynb``.
    """
    import papermill as pm

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")
    names = available_notebooks()
    if only:
        wanted = [n.removesuffix(".ipynb") for n in only]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise FileNotFoundError(f"no notebook {missing} in {NOTEBOOK_DIR}; available: {names}")
        names = [n for n in names if n in wanted]
    out_dir = (out_root / profile).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "agg")
    done = []
    for name in names:
        t0 = time.perf_counter()
        print(f"[run_all] {name} (profile {profile}) ...", flush=True)
        target = out_dir / f"{name}.ipynb"
        pm.execute_notebook(
            str(NOTEBOOK_DIR / f"{name}.ipynb"),
            str(target),
            parameters=notebook_parameters(profile, name, out_root) | _declared(name, extra or {}),
            kernel_name="python3",
            start_timeout=120,
            execution_timeout=execution_timeout or (None if profile == "full" else 3600),
            cwd=str(NOTEBOOK_DIR),
            progress_bar=False,
        )
        print(f"[run_all] {name} done in {time.perf_counter() - t0:.0f} s -> {target}", flush=True)
        done.append(target)
    return done
