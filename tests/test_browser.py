"""The reports and the Grad-CAM viewer in a real browser: Playwright driving Debian's chromium.

`.ci/run` installs chromium with apt when it is missing; these tests skip, saying why, only where no browser
can be had. Screenshots are kept in test-artifacts/ (or $PEAKMIXER_ARTIFACTS).
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (`apt-get install chromium`; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.mark.timeout(1500)
def test_the_index_and_a_report_open_and_every_link_resolves(smoke, browser, artifacts):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((smoke / "index.html").as_uri())
    assert "PeakMixer companion" in page.title()
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    assert images and all(width > 0 for _, width in images), [src for src, w in images if not w]
    links = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
    assert links and all((smoke / link).exists() for link in links)
    page.screenshot(path=str(artifacts / "index.png"), full_page=True)
    report = next(link for link in links if link.endswith(".html"))
    page.goto((smoke / report).as_uri())
    page.wait_for_selector(".jp-Notebook, .jp-Cell, body", timeout=30_000)
    assert page.locator("img").count() > 0  # the report carries its figures
    page.screenshot(path=str(artifacts / f"report_{Path(report).stem}.png"))
    page.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plotted_spectrum(page) -> list[float]:
    """The y data of the viewer's spectrum trace, read from the plotly graph div in the DOM."""
    return page.evaluate(
        "() => { const p = [...document.querySelectorAll('.js-plotly-plot')].pop();"
        " return Array.from(p.data[1].y).slice(0, 20); }"
    )


@pytest.mark.timeout(1500)
def test_the_viewer_runs_in_jupyterlab_and_follows_its_slider(tmp_path, browser, artifacts):
    import papermill as pm

    from peakmixer.report.notebooks import NOTEBOOK_DIR

    pm.execute_notebook(
        str(NOTEBOOK_DIR / "04_gradcam.ipynb"),
        str(tmp_path / "04_gradcam.ipynb"),
        prepare_only=True,
        kernel_name="python3",
        parameters={
            "interactive": True,
            "ir_n": 400,
            "bac_n": 600,
            "data_seed": 1,  # spectra the shipped models never saw (seed 0 at n = 400 holds training ones)
            "per_class": 2,
            "data_dir": str(tmp_path / "data"),
            "out_dir": str(tmp_path / "out"),
        },
    )
    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        stdout=open(tmp_path / "server.log", "w"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, MPLBACKEND="agg"),
    )
    try:
        for _ in range(240):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/lab/tree/04_gradcam.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        # "Run All" before the kernel is up runs nothing: wait for the status bar's "Idle" (slow when busy)
        page.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=300_000)
        page.keyboard.press("Escape")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        page.wait_for_selector(".widget-slider", timeout=600_000)
        page.wait_for_function(
            "() => { const p = [...document.querySelectorAll('.js-plotly-plot')].pop();"
            " return p && p.data && p.data[1] && p.data[1].y && p.data[1].y.length > 0; }",
            timeout=120_000,
        )
        before = plotted_spectrum(page)
        page.locator(".widget-slider").last.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "viewer_before.png"))
        handle = page.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle").first
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(
            "(old) => { const p = [...document.querySelectorAll('.js-plotly-plot')].pop();"
            " return JSON.stringify(Array.from(p.data[1].y).slice(0, 20)) !== JSON.stringify(old); }",
            arg=before,
            timeout=120_000,
        )
        after = plotted_spectrum(page)
        page.screenshot(path=str(artifacts / "viewer_after.png"))
        assert after != before  # the slider moved the viewer to another spectrum
        title = page.evaluate(
            "() => [...document.querySelectorAll('.js-plotly-plot')].pop().layout.title.text"
        )
        assert re.search(r"synth-ir17-s1-\d+", title)
        page.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
