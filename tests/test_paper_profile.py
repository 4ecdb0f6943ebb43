"""The `paper` profile, checked without running it: it needs a GPU and the real data, so nothing else would
notice it rot. Every study it names builds and profiles, names datasets the downloader can fetch and prepare
with the paper's recipe, and every parameter of its params files is a notebook parameter (test_notebooks)."""

import pytest
import torch
import yaml

from peakmixer.data import download, prepare
from peakmixer.data.labels import BAC30_CLASSES, NIST17_NAMES
from peakmixer.models import profile_model
from peakmixer.report.notebooks import PARAMS_DIR
from peakmixer.studies.protocols import PROTOCOLS
from peakmixer.studies.results import load_study
from peakmixer.studies.sweep import plan, stage_configs
from peakmixer.train.checkpoint import build_from_config

CLASSES = {"qm9s": 957, "nist-ir": len(NIST17_NAMES), "bacteria": len(BAC30_CLASSES)}
TASKS = {"qm9s": "multilabel", "nist-ir": "multilabel", "bacteria": "multiclass"}


def paper_studies() -> list[str]:
    names = []
    for path in sorted((PARAMS_DIR / "paper").glob("*.yaml")):
        params = yaml.safe_load(path.read_text()) or {}
        names += params.get("studies", []) + [params[k] for k in ("study", "grid_study") if k in params]
    return sorted(set(names))


def test_the_paper_profile_names_studies():
    assert {"paper_fig1", "paper_fig1d", "paper_ip"} <= set(paper_studies())


@pytest.mark.parametrize("name", paper_studies())
def test_a_paper_study_builds_profiles_and_knows_its_data_and_recipes(name):
    cfg = load_study(name)
    for ds in cfg.datasets:
        assert ds.name in download.list_datasets() and ds.name in prepare.recipes(), ds.name
        assert ds.recipe in PROTOCOLS, f"{ds.name}: no training recipe {ds.recipe!r}"
    seen = {}
    for run in plan(cfg):
        _, tc = stage_configs(cfg, run, run.dataset.path)
        key = (run.dataset.name, run.width, run.mixer, run.layers, run.ip)
        if key in seen:
            continue
        with torch.device("meta"):
            model = build_from_config(tc, CLASSES[run.dataset.name], TASKS[run.dataset.name])
        cost = profile_model(model)
        assert cost["params"] > 0 and cost["macs"] > 0, key
        seen[key] = cost["macs"]
    # the paper's widths cost what its Fig. 1 says (ResPeak 160 + MLPMixer-4 on QM9S: 0.764 GMACs)
    if ("qm9s", 160, "mlpmixer", 4, "off") in seen:
        assert seen[("qm9s", 160, "mlpmixer", 4, "off")] / 1e9 == pytest.approx(0.7635, abs=1e-3)
