"""The widgets as a learner meets them: real JupyterLab, real (headless) Chromium, real keyboard.

Starts JupyterLab on 127.0.0.1 with a random token and throwaway settings/runtime folders,
drives Debian's Chromium with Playwright, opens a notebook, runs all cells, and checks that
every cell ran without an error output or a JavaScript console error; then moves the
"time step" slider with the keyboard and checks that its readout and the ipympl figure changed,
and records the time from a key press to the changed canvas (``redraw_times``). It also opens
each notebook as stored, before running, and checks that every stored picture is shown and no
widget repr text (``VBox(``) is. Server and browser are shut down whatever happens. Skips only
where Chromium is absent.

The helpers (``output_area_overflows``, ``install_redraw_probe``, ``redraw_times``,
``shown_before_running``) take a Playwright page and are meant for more tests of the widgets.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LSTM_STATES_CHROMIUM", "/usr/bin/chromium")
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# the chapters whose time-step slider is the heart of the lesson: it must be there
SLIDER_REQUIRED = {"02_every_layer_every_step.ipynb", "05_inside_a_trained_lstm.ipynb"}
RUN_TIMEOUT_S = 180

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab on a copy of the notebooks with outputs cleared: (base_url, token)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    stored = root / "stored"  # the notebooks as a reader gets them: outputs kept
    stored.mkdir()
    for path in root.glob("*.ipynb"):
        shutil.copy(path, stored / path.name)
    for path in root.glob("*.ipynb"):  # a learner opens them fresh: no stored outputs
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, path)
    settings = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none", "autoStartDefaultKernel": True}))
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_CONFIG_DIR=str(tmp / "config"),
               MPLBACKEND="module://ipympl.backend_nbagg")
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp / "jupyterlab.log").read_text()) from None
                time.sleep(0.5)
        yield base, token, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


NOTEBOOK_STATE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  return {
    kernel: kernel ? kernel.connectionStatus + '/' + kernel.status : 'none',
    counts: cells.map(c => c.model.executionCount),
    errors: cells.flatMap(c => c.model.outputs.toJSON()
        .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)),
    empty: cells.map(c => c.model.sharedModel.getSource().trim() === ''),
  };
}"""


def _wait(page, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE_JS)
        if state and predicate(state):
            return state
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last state {state}")


def test_the_chapters_with_sliders_exist():
    assert SLIDER_REQUIRED <= set(NOTEBOOKS), SLIDER_REQUIRED - set(NOTEBOOKS)


# JupyterLab at 1280x900 with the file browser open: the output area is about 848 px wide
VIEWPORT = {"width": 1280, "height": 900}

OVERFLOW_JS = """() => {
  // every ipympl figure (canvas and toolbar) whose right edge passes its output area's
  const out = [];
  for (const fig of document.querySelectorAll('.jupyter-matplotlib')) {
    const area = fig.closest('.jp-OutputArea-output');
    if (!area) continue;
    const a = area.getBoundingClientRect(), f = fig.getBoundingClientRect();
    const canvas = fig.querySelector('.jupyter-matplotlib-canvas-div canvas');
    const c = canvas ? canvas.getBoundingClientRect() : f;
    const inWidget = !!fig.closest('.widget-vbox') &&
        !!fig.closest('.widget-vbox').querySelector('.widget-slider, .widget-dropdown, .widget-checkbox');
    out.push({canvas: Math.round(c.width), figure: Math.round(f.right - a.left),
              area: Math.round(a.width), over: Math.max(c.right, f.right) - a.right > 0.5,
              widget: inWidget});
  }
  return out;
}"""


def output_area_overflows(page):
    """[{canvas, figure, area, over, widget}] for every ipympl figure of the open notebook:
    canvas width, figure right edge (canvas + toolbar) from the area's left, area width (px),
    whether it passes the area's right edge, and whether it belongs to a widget with controls."""
    return page.evaluate(OVERFLOW_JS)


PROBE_JS = """(canvas) => {
  // times of key presses and of drawing on this canvas (ipympl draws each new image with
  // drawImage on the visible canvas's 2d context)
  if (!window.__redrawProbe) {
    window.__redrawProbe = {key: 0, draw: 0};
    document.addEventListener('keydown', () => { window.__redrawProbe.key = performance.now(); },
                              true);
  }
  const ctx = canvas.getContext('2d');
  if (!ctx.__probed) {
    const draw = ctx.drawImage.bind(ctx);
    ctx.drawImage = (...args) => { window.__redrawProbe.draw = performance.now();
                                   return draw(...args); };
    ctx.__probed = true;
  }
}"""


def install_redraw_probe(page, canvas) -> None:
    """Records the time of every key press on the page and of every image drawn on ``canvas``
    (a Playwright locator of an ipympl ``canvas`` element)."""
    canvas.evaluate(PROBE_JS)


def redraw_times(page, canvas, key="ArrowRight", presses=8, timeout_ms=20_000):
    """Milliseconds from each key press (to the focused control) to the next image drawn on
    ``canvas``: what a learner waits for a step. Focus the slider's handle first."""
    install_redraw_probe(page, canvas)
    times = []
    for _ in range(presses):
        page.evaluate("() => { window.__redrawProbe.draw = 0; }")
        page.keyboard.press(key)
        page.wait_for_function("() => window.__redrawProbe.draw > window.__redrawProbe.key",
                               timeout=timeout_ms)
        times.append(page.evaluate("() => window.__redrawProbe.draw - window.__redrawProbe.key"))
        page.wait_for_timeout(150)  # let the kernel settle before the next press
    return times


SHOWN_JS = """() => {
  // per code cell: the number of images shown in its outputs and its outputs' text
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.filter(c => c.model.type === 'code').map(c => ({
    images: c.node.querySelectorAll('.jp-OutputArea-output img').length,
    text: Array.from(c.node.querySelectorAll('.jp-OutputArea-output')).map(o => o.innerText)
               .join('\\n'),
  }));
}"""


def shown_before_running(page):
    """What the open notebook shows before anything runs: per code cell, images and text."""
    return page.evaluate(SHOWN_JS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_pictures_show_before_running(lab, browser, name):
    """Opened as stored, with no kernel run: every stored PNG is shown, and no widget repr text
    stands where a picture with a PNG is."""
    base, token, root = lab
    nb = nbformat.read(root / "stored" / name, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    pngs = [sum("image/png" in o.get("data", {}) for o in c.outputs) for c in cells]
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{base}/lab/tree/stored/{name}?token={token}&reset", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.content"
                               " && window.jupyterapp.shell.currentWidget.content.widgets"
                               ".length > 0", timeout=60_000)
        page.wait_for_timeout(1500)  # let the outputs render
        shown = shown_before_running(page)
        assert len(shown) == len(cells)
        for k, (n, cell) in enumerate(zip(pngs, shown, strict=True)):
            assert cell["images"] >= n, (k, n, cell)
            if n:
                assert "VBox(" not in cell["text"] and "Canvas(" not in cell["text"], (k, cell)
    finally:
        page.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_slider_redraws_figure(lab, browser, name, record_property):
    base, token, root = lab
    page = browser.new_page(viewport=VIEWPORT)
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    try:
        page.goto(f"{base}/lab/tree/{name}?token={token}&reset", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
        _wait(page, lambda s: s["kernel"] == "connected/idle", 60, "the kernel to be idle")
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        state = _wait(page, lambda s: s["errors"] or all(
            n is not None or empty for n, empty in zip(s["counts"], s["empty"], strict=True)),
            RUN_TIMEOUT_S, "every cell to run")
        assert state["errors"] == [], state["errors"]
        _wait(page, lambda s: s["kernel"] == "connected/idle", 60, "the kernel to be idle")

        assert console_errors == [], console_errors
        page.wait_for_timeout(500)  # let the figures reach their size
        figures = output_area_overflows(page)
        record_property("figures", figures)
        # the package's widgets fit the output area (plain figures made in a notebook are
        # checked once the notebooks use the package's sizes)
        assert not [f for f in figures if f["widget"] and f["over"]], figures
        slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="time step")).first
        if name not in SLIDER_REQUIRED and slider.count() == 0:
            return  # this chapter has no time-step slider: running cleanly is what it must do
        slider.scroll_into_view_if_needed()
        readout = slider.locator(".widget-readout")
        # the figure the slider drives: in the nearest widget box that holds an ipympl canvas
        box = slider.locator("xpath=ancestor::div[contains(@class, 'widget-box')]"
                             "[.//div[contains(@class, 'jupyter-matplotlib-canvas-div')]][1]")
        canvas = box.locator(".jupyter-matplotlib-canvas-div canvas").first

        def press_and_read(key):
            before = readout.inner_text()
            page.keyboard.press(key)
            page.wait_for_timeout(300)
            return before, readout.inner_text()

        slider.locator(".noUi-handle").focus()
        press_and_read("Home")  # step 0 (a later cell may have moved it)
        assert readout.inner_text() == "0"
        page.wait_for_timeout(1000)  # let the redraw for step 0 land
        pixels0 = canvas.evaluate("c => c.toDataURL()")
        assert press_and_read("ArrowRight") == ("0", "1")
        _, last = press_and_read("End")
        assert int(last) > 1, last
        page.wait_for_function("([c, d]) => c.toDataURL() !== d", arg=[canvas.element_handle(), pixels0],
                               timeout=20_000)
        press_and_read("Home")
        page.wait_for_timeout(1000)
        times = redraw_times(page, canvas, "ArrowRight", presses=8)
        record_property("redraw_ms", times)
        print(f"{name}: key press -> changed canvas, ms: {[round(t) for t in times]}")
        assert readout.inner_text() == "8"
        assert console_errors == [], console_errors
    finally:
        page.close()
