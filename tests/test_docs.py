"""The README as a front door, the pages under docs/ and the API page: links resolve, names import."""

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from peakmixer.paths import REPO_ROOT

PAGES = sorted(
    {*REPO_ROOT.glob("*.md"), *(REPO_ROOT / "docs").glob("*.md"), *REPO_ROOT.glob("*/README.md")}
    - {*REPO_ROOT.glob(".venv/**/*.md")}
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: another site's business
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor})")
    assert broken == [], f"{page.relative_to(REPO_ROOT)}: {broken}"


def test_the_link_check_sees_a_broken_link_and_a_missing_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](page.md#title) [gone](nowhere.md) [bad anchor](page.md#no-such)\n")
    targets = LINK.findall(page.read_text())
    assert targets == ["page.md#title", "nowhere.md", "page.md#no-such"]
    assert "title" in _anchors(page) and "no-such" not in _anchors(page)
    assert not (tmp_path / "nowhere.md").exists()


def test_the_readme_is_a_front_door():
    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for command in ("./run_all.sh", "./run_tests.sh"):
        assert command in text
    linked = {
        (REPO_ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(text) if not re.match("[a-z]+:", t)
    }
    assert {p.resolve() for p in (REPO_ROOT / "docs").glob("*.md")} <= linked, "a docs page the README omits"
    assert (
        "headline:start" in text
        and (REPO_ROOT / "CITATION.cff").is_file()
        and (REPO_ROOT / "LICENSE").is_file()
    )


def test_every_name_on_the_api_page_imports():
    text = (REPO_ROOT / "docs" / "api.md").read_text()
    current = text.split("## Moved in this version")[0]
    missing = []
    for dotted in set(re.findall(r"`(peakmixer(?:\.\w+)+)`", current)):
        module, _, name = dotted.rpartition(".")
        try:  # a module, or a name in one
            importlib.import_module(dotted)
        except ModuleNotFoundError:
            if not hasattr(importlib.import_module(module), name):
                missing.append(dotted)
    for row in re.findall(r"^\| (`[^|]+) \| `(peakmixer[\w.]*)` \|$", current, flags=re.M):
        names, module = re.findall(r"`(\w+)`", row[0]), importlib.import_module(row[1])
        missing += [f"{row[1]}.{n}" for n in names if not hasattr(module, n)]
    assert missing == []
    assert len(re.findall(r"^\| `", current, flags=re.M)) >= 15  # the tables were read


def test_the_readme_headline_numbers_are_the_stores_and_the_papers():
    # the numbers, not the wording: every cell of the headline against what the store and the paper give
    from peakmixer.report.docs import readme_headline
    from peakmixer.studies.claims import claims
    from peakmixer.studies.ipeval import PAPER_DATASETS, PAPER_TABLE1, table1, table1_beside_paper
    from peakmixer.studies.results import FIG1_STUDIES, load_study, outcomes_of, read_store
    from peakmixer.studies.results_section import fig1_rows

    # the paper's Table 1 as printed (NIST-IR, bacteria)
    assert PAPER_TABLE1[("infidelity", "trainable")] == (0.6813, 8.5290)
    assert PAPER_TABLE1[("infidelity", "frozen")] == (0.7183, 9.0944)
    assert PAPER_TABLE1[("sensitivity", "trainable")] == (0.1069, 0.2831)
    assert PAPER_TABLE1[("sensitivity", "frozen")] == (0.9682, 1.3614)
    text = readme_headline()
    studies = {name: load_study(name) for name in FIG1_STUDIES}
    _, facts, main = fig1_rows(studies)
    claim_table = claims(
        main, {k: f["classes"] for k, f in facts.items()}, outcomes=outcomes_of(studies, main)
    )
    fair = claim_table[claim_table["fair"]]
    rows = [r.split(" | ") for r in text.splitlines() if r.startswith("| synth-") and " beats " in r]
    assert len(rows) == len(fair) > 0
    for cells, r in zip(rows, fair.itertuples(index=False), strict=True):
        assert cells[0] == f"| {r.dataset}" and cells[2] == r.claim and cells[5] == f"{r.outcome} |"
        over_spectra = [float(x) for x in re.findall(r"[+-]\d+\.\d+", cells[4])]
        if r.spectra:
            assert over_spectra == pytest.approx([r.spectra_ci_low, r.spectra_ci_high], abs=5e-5)
        else:  # runs made before their outcomes per spectrum were kept: said, never made up
            assert cells[4] == "not stored"
        numbers = [float(x) for x in re.findall(r"[+-]\d+\.\d+", cells[3])]
        if not np.isfinite(r.ci_low):  # no interval (one seed): the reason, never a NaN
            assert numbers == pytest.approx([r.difference], abs=5e-5) and f"[{r.reason}]" in cells[3]
            continue
        assert numbers == pytest.approx([r.difference, r.ci_low, r.ci_high], abs=5e-5)
    ours = table1(read_store({"ip_table1": load_study("ip_table1")}).rows)
    for (score, mode), paper in PAPER_TABLE1.items():
        name = "untrainable (frozen)" if mode == "frozen" else mode
        (line,) = [x for x in text.splitlines() if x.startswith(f"| {score} | {name} |")]
        cells = line.strip("|").split(" | ")[2:]
        for k, (_, mine) in enumerate(PAPER_DATASETS):
            assert float(cells[2 * k]) == paper[k]
            mean = _cell(ours, score, mode, mine)
            if mean is None:  # no valid run of that arm yet: said, not invented
                assert cells[2 * k + 1].strip() == "not yet"
                continue
            assert float(cells[2 * k + 1].split(" ")[0]) == pytest.approx(mean, abs=5e-5)
    # one sentence per cell, its word the verdict's beside the paper's direction
    beside = table1_beside_paper(read_store({"ip_table1": load_study("ip_table1")}).rows)
    assert set(beside["beside_paper"]) <= {"reproduced", "reversed", "not resolved", "no runs"}
    for r in beside.itertuples(index=False):
        (line,) = [x for x in text.splitlines() if x.startswith(f"- {r.score}, {r.dataset} in place of")]
        if r.beside_paper == "no runs":
            assert line.endswith("ours: no runs yet.")
            continue
        assert line.endswith(f"**{r.beside_paper}**.")
        low, high = (float(x) for x in re.search(r"\[([+-][\d.]+), ([+-][\d.]+)\]", line).groups())
        assert (low, high) == pytest.approx((r.ci_low, r.ci_high), abs=5e-5)


def _cell(table1, score: str, mode: str, dataset: str) -> float | None:
    at = (table1["score"] == score) & (table1["correlation"] == mode) & (table1["dataset"] == dataset)
    return float(table1.loc[at, "mean"].iloc[0]) if at.any() else None
