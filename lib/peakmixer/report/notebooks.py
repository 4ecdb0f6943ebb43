"""Run the paper notebooks headless with papermill: params/<profile>/<name>.yaml -> figures/<profile>/.

Every notebook receives, besides its YAML parameters, ``profile`` and ``out_dir`` (absolute), so paths never
depend on the working directory. Each notebook writes into a staging folder first; only when it has run to
the end are its outputs (figures, tables, sidecars, the executed notebook and its HTML report) moved into
``figures/<profile>/``, so a failed run never clobbers the outputs of an earlier good one. ``index.html``
links every report, figure and table with the one-line caption of its sidecar.
"""

from __future__ import annotations

import html
import json
import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from peakmixer.config import MissingFile
from peakmixer.files import write_text
from peakmixer.paths import FIGURES_DIR, NOTEBOOK_DIR, PARAMS_DIR

PROFILES = ("smoke", "default", "full", "paper")
# Per-cell time limit by profile (seconds; None: none). `full` and `paper` train for hours in one cell.
CELL_TIMEOUT = {"smoke": 900, "default": 3600, "full": None, "paper": None}
MANIFEST = "manifest.json"


class NotebookFailed(RuntimeError):
    """A notebook stopped with an error: names the notebook, the cell and the error."""


def available_notebooks() -> list[str]:
    """Notebook names (without ``.ipynb``) in run order."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(profile: str, name: str, out_dir: Path) -> dict[str, Any]:
    """The parameters papermill injects: the profile's YAML plus ``profile`` and ``out_dir``."""
    path = PARAMS_DIR / profile / f"{name}.yaml"
    params = yaml.safe_load(path.read_text()) if path.exists() else {}
    return {**(params or {}), "profile": profile, "out_dir": str(Path(out_dir).resolve())}


def _declared(name: str, params: dict[str, Any]) -> dict[str, Any]:
    import papermill as pm

    declared = pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    return {k: v for k, v in params.items() if k in declared}


def _say(text: str) -> None:
    print(f"[run_all] {text}", flush=True)


def _progress(name: str, t0: float, cells: int):
    """nbclient's cell-start hook: which code cell runs, of how many, how long the notebook has run."""

    def hook(cell: Any, cell_index: int, **_: Any) -> None:
        if cell.cell_type != "code":
            return
        first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
        _say(f"{name}: cell {cell_index + 1}/{cells} at {time.perf_counter() - t0:.0f} s: {first[:60]}")

    return hook


class _CellOutput(logging.Filter):
    """Keep what cells print (papermill logs it with `log_output`); drop papermill's own bookkeeping."""

    NOISE = (
        "Executing Cell",
        "Ending Cell",
        "Input Notebook",
        "Output Notebook",
        "Working directory",
        "Executing notebook with kernel",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().strip()
        return bool(message) and not message.startswith(self.NOISE)


def _cells(name: str) -> int:
    import nbformat

    return len(nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4).cells) + 1  # + injected parameters


def _export_html(notebook: Path) -> Path:
    """The executed notebook as an HTML report beside it (outputs, figures embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    out = notebook.with_suffix(".html")
    return write_text(out, body)


def _promote(staging: Path, final: Path) -> list[str]:
    """Move every file of `staging` into `final` (replacing older versions); returns their names."""
    final.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in sorted(staging.iterdir()):
        if path.is_file():
            os.replace(path, final / path.name)
            moved.append(path.name)
    return moved


def run_notebooks(
    profile: str = "default",
    only: list[str] | None = None,
    *,
    out_root: Path = FIGURES_DIR,
    extra: dict[str, Any] | None = None,
    execution_timeout: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Execute notebooks in order (one after the other: parallel kernels starve 2 cores).

    `extra` parameters override the profile's, in each notebook that declares them (e.g. ``data_dir``,
    ``device``). `execution_timeout` limits each cell in seconds (default: `CELL_TIMEOUT` of the profile;
    0 for none). Returns the executed notebooks in ``figures/<profile>/``; raises `NotebookFailed` (after
    keeping what earlier notebooks of this run made) when one fails.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")
    names = available_notebooks()
    if only:
        wanted = [n.removesuffix(".ipynb") for n in only]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise MissingFile(f"no notebook {missing} in {NOTEBOOK_DIR}; available: {names}")
        names = [n for n in names if n in wanted]
    timeout = CELL_TIMEOUT[profile] if execution_timeout is None else (execution_timeout or None)
    final = (out_root / profile).resolve()
    final.mkdir(parents=True, exist_ok=True)
    if progress:  # stream what cells print (e.g. a sweep's progress) while they run
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("    %(message)s"))
        handler.addFilter(_CellOutput())
        logging.getLogger("papermill").handlers = [handler]
        logging.getLogger("papermill").setLevel(logging.INFO)
    done, timings = [], {}
    for name in names:
        t0 = time.perf_counter()
        _say(f"{name} (profile {profile}) ...")
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=final.parent) as tmp:
            staging = Path(tmp)
            target = staging / f"{name}.ipynb"
            try:
                with _inline_figures():
                    pm.execute_notebook(
                        str(NOTEBOOK_DIR / f"{name}.ipynb"),
                        str(target),
                        parameters=notebook_parameters(profile, name, staging) | _declared(name, extra or {}),
                        kernel_name="python3",
                        start_timeout=120,
                        execution_timeout=timeout,
                        cwd=str(NOTEBOOK_DIR),
                        progress_bar=False,
                        log_output=progress,
                        **({"on_cell_start": _progress(name, t0, _cells(name))} if progress else {}),
                    )
            except pm.PapermillExecutionError as e:
                raise NotebookFailed(
                    f"{name} failed in cell {e.cell_index + 1} ({e.ename}: {e.evalue}); the outputs of "
                    f"earlier runs in {final} are untouched"
                ) from None
            except (CellTimeoutError, DeadKernelError, TimeoutError) as e:  # the same promise holds
                raise NotebookFailed(
                    f"{name} stopped ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); the "
                    f"outputs of earlier runs in {final} are untouched"
                ) from None
            _export_html(target)
            files = _promote(staging, final)
        timings[name] = time.perf_counter() - t0
        _record(final, name, files, timings[name], profile)
        _say(f"{name} done in {timings[name]:.0f} s: {len(files)} files -> {final}")
        done.append(final / f"{name}.ipynb")
    index = write_index(final)
    total = sum(timings.values())
    _say("summary: " + ", ".join(f"{n} {s:.0f} s" for n, s in timings.items()) + f"; total {total:.0f} s")
    _say(f"open {index}")
    return done


@contextmanager
def _inline_figures():
    """Kernels inherit the environment: the inline backend, so each report shows its figures (an ``agg`` set
    by a CI shell shows none); restored afterwards, for the caller's own matplotlib."""
    before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = before


def _record(final: Path, name: str, files: list[str], seconds: float, profile: str) -> None:
    """The manifest: which notebook made which files, when, in how long (read by `write_index`)."""
    path = final / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest[name] = {
        "files": files,
        "seconds": round(seconds, 1),
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": profile,
    }
    write_text(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _caption(folder: Path, name: str) -> str:
    """The one-line caption in a file's sidecar (``NAME.json``), marked when its data are synthetic."""
    side = folder / f"{Path(name).stem}.json"
    if not side.exists() or side.name == name:
        return ""
    info = json.loads(side.read_text())
    if Path(info.get("file", "")).stem != Path(name).stem:
        return ""
    return (info.get("caption") or "") + (" [synthetic data]" if info.get("synthetic_data") else "")


def write_index(folder: Path) -> Path:
    """``index.html``: per notebook, its HTML report, figures and tables, each with its sidecar caption."""
    manifest = json.loads((folder / MANIFEST).read_text()) if (folder / MANIFEST).exists() else {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>PeakMixer companion: "
        + html.escape(folder.name)
        + " figures</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:420px;"
        "border:1px solid #ddd}td{vertical-align:top;padding:4px 10px}h2{margin-top:1.6em}</style>",
        "</head><body>",
        f"<h1>PeakMixer companion: {html.escape(folder.name)} profile</h1>",
        "<p>Every figure and table has a JSON sidecar beside it (parameters, git SHA, data hashes, package "
        "versions). Reports are the executed notebooks.</p>",
    ]
    for name, entry in sorted(manifest.items()):
        files = [f for f in entry["files"] if (folder / f).exists()]
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(
            f"<p>Ran {entry['finished']} in {entry['seconds']:.0f} s. <a href='{html.escape(name)}.html'>"
            f"Report</a> · <a href='{html.escape(name)}.ipynb'>notebook</a></p>"
        )
        rows = []
        for f in files:
            kind = Path(f).suffix
            if kind not in (".png", ".csv", ".txt"):
                continue
            link = html.escape(f)
            shown = f"<img src='{link}' alt='{link}'>" if kind == ".png" else f"<a href='{link}'>{link}</a>"
            svg = f"{Path(f).stem}.svg"
            svg = f" · <a href='{html.escape(svg)}'>SVG</a>" if (folder / svg).exists() else ""
            caption = html.escape(_caption(folder, f) or f)
            rows.append(f"<tr><td>{shown}</td><td>{caption}<br><a href='{link}'>{link}</a>{svg}</td></tr>")
        parts.append("<table>" + "".join(rows) + "</table>")
    parts.append("</body></html>")
    out = folder / "index.html"
    write_text(out, "\n".join(parts))
    return out
