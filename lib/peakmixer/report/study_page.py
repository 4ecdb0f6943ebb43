"""What the study notebooks (``02_mixer_eval``, ``03_ip_eval``) share: their parameters as one record, the
output and run folders, the studies as configured by the parameters, the store read or the studies run, and
the provenance every figure and table of theirs carries.

    page = study_page("03_ip_eval", globals(), {study: overrides})
    store = page.read_or_run()
    ...
    save_table(table, page.out, "ip_table1", **page.stamp(store, checks))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from peakmixer.paths import FIGURES_DIR, NOTEBOOK_DIR, RUNS_DIR
from peakmixer.studies.claims import study_facts
from peakmixer.studies.results import StoreView, load_study, read_store, run_studies
from peakmixer.studies.sweep import SweepConfig


def notebook_params(notebook: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `notebook`'s declared parameters (its ``parameters`` cell) as they stand in
    `namespace` (the notebook's globals, after papermill injected its own)."""
    import papermill

    names = papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{notebook}.ipynb"))
    return {name: namespace[name] for name in names}


@dataclass
class StudyPage:
    """One study notebook's run: where it writes, what it reads, and how."""

    notebook: str
    params: dict[str, Any]
    out: Path
    runs_root: Path
    configs: dict[str, SweepConfig]
    synthetic: dict[str, bool]
    facts: dict[str, dict[str, Any]]

    @property
    def recompute(self) -> bool:
        return bool(self.params.get("recompute"))

    @property
    def update_store(self) -> bool:
        return bool(self.params.get("update_store"))

    def read_or_run(self) -> StoreView:
        """The studies' rows: trained now into ``runs_dir`` (``recompute``) or into the store
        (``update_store``), else read from the committed store."""
        if self.recompute or self.update_store:
            return run_studies(self.configs, workers=self.params.get("workers", 1))
        return read_store(self.configs, allow_missing=True)

    def stamp(self, store: StoreView, checks: pd.DataFrame | None = None, **extra: Any) -> dict[str, Any]:
        """The keyword arguments of `save_figure` / `save_table` / `sidecar` for this page: its parameters,
        the data's hashes, whether they are synthetic, and where the numbers come from."""
        source = (
            "recomputed" if self.recompute else "results store" + (" (updated)" if self.update_store else "")
        )
        provenance = {
            **extra,
            "source": source,
            "spot_check": [] if checks is None else checks.to_dict("records"),
            "stale_rows": store.stale[["run_id", "why"]].to_dict("records") if len(store.stale) else [],
            "missing_runs": store.missing,
        }
        hashes = store.rows.groupby("dataset")["data_sha256"].first().to_dict() if len(store.rows) else {}
        synthetic = any(self.synthetic.values())
        return {"params": self.params, "data": hashes, "synthetic": synthetic, "extra": provenance}


def study_page(notebook: str, namespace: Mapping[str, Any], overrides: Mapping[str, list[str]]) -> StudyPage:
    """The page of `notebook` from its parameters in `namespace`: each study of `overrides` (its name, and
    the overrides it runs with) loaded as the parameters say (size, data and run folders, device,
    precision), the output folder ``figures/<profile>`` unless ``out_dir``."""
    params = notebook_params(notebook, namespace)
    profile = params["profile"]
    out = Path(params.get("out_dir") or FIGURES_DIR / profile)
    runs_root = Path(params.get("runs_dir") or RUNS_DIR / notebook / profile)
    runs_root.mkdir(parents=True, exist_ok=True)
    configs = {
        name: load_study(
            name,
            overrides=list(extra),
            n=params.get("n", 0),
            data_dir=params.get("data_dir") or None,
            runs_dir=runs_root if params.get("recompute") else None,
            device=params.get("device", "auto"),
            precision=params.get("precision", "auto"),
        )
        for name, extra in overrides.items()
    }
    facts = study_facts(configs)
    synthetic = {name: bool(f["synthetic"]) for name, f in facts.items()}
    for name, cfg in configs.items():
        print(f"{name}: results in {cfg.results_path}")
    return StudyPage(notebook, params, out, runs_root, configs, synthetic, facts)
