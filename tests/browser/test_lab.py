"""A real browser drives JupyterLab: the notebooks' sliders work for a person, not only headless.

Playwright (from PyPI) drives the system's Chromium (Debian's ``chromium`` package;
Playwright's own browser download is not used) against a JupyterLab server this test
starts on a copy of ``notebooks/``, with outputs in a temporary folder. For each explorer it
runs every cell of the notebook (smoke profile), moves a slider, and checks that the
figure's data changed to the new temperature, with no widget error and no console error.

Run it with ``make browser-test`` (CI does, after ``make test``). It is not part of
``make test``: it needs Chromium and JupyterLab, which ``make browser-test`` installs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tcsd-browser-test"
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the visible tab
RUN_ALL_TIMEOUT_S = 600  # notebook 01 runs in about 35 s (smoke) on a 2-core CPU; slack for a busy machine


def chromium() -> str:
    """The system Chromium; the error says how to get one."""
    from tcsd_utils.render import chromium as find  # the one the PNG figures use

    path = find()
    if path:
        return path
    pytest.fail("no Chromium found: install Debian's `chromium` (sudo apt-get install chromium), "
                "or set TCSD_CHROMIUM to a Chrome/Chromium binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the notebooks; yields its base URL."""
    pytest.importorskip("jupyterlab", reason="make browser-test installs JupyterLab")
    work = tmp_path_factory.mktemp("lab")
    (work / "notebooks").mkdir()
    for path in (ROOT / "notebooks").glob("*.ipynb"):  # unrun copies, as a person who clears them sees them
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (work / "notebooks" / path.name).write_text(json.dumps(nb))
    settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the page, not only those in view (JupyterLab 4 renders a window of them)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    news = work / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)  # no "get news?" pop-up over the notebook
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = _free_port()
    env = {**os.environ, "TCSD_OUTPUTS": str(work / "outputs"), "JUPYTER_CONFIG_DIR": str(work / "config"),
           "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"), "HF_HUB_OFFLINE": "1"}
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={work / 'notebooks'}", f"--IdentityProvider.token={TOKEN}",
         "--ServerApp.allow_root=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(work / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="make browser-test installs Playwright")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Page:
    """One notebook open in JupyterLab, with the console errors seen so far."""

    def __init__(self, browser, url: str, notebook: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        workspace = re.sub(r"\W", "-", notebook)  # its own workspace: no tab of another test reopens
        self.page.goto(f"{url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={TOKEN}")
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

    def run_all(self) -> None:
        """Run > Run All Cells once the kernel is idle, then wait until every code cell has
        run (the copies start with no outputs and no execution counts). A cell that raises
        stops the run: its traceback is the failure message."""
        self.page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=120_000)
        for _ in range(3):  # a click that lands before the kernel is connected runs nothing: try again
            self.page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            self.page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            try:
                self.page.wait_for_function(
                    f"() => [...document.querySelectorAll('{SHOWN} .jp-CodeCell .jp-InputArea-prompt')]"
                    ".some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))", timeout=20_000)
                break
            except Exception:
                continue
        deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
        while time.monotonic() < deadline:
            prompts = self.page.eval_on_selector_all(f"{SHOWN} .jp-CodeCell .jp-InputArea-prompt",
                                                     "els => els.map(e => e.textContent)")
            tracebacks = self.page.eval_on_selector_all(f"{SHOWN} [data-mime-type='application/vnd.jupyter.error']",
                                                         "els => els.map(e => e.textContent)")
            if tracebacks:
                raise AssertionError("a cell raised:\n" + tracebacks[0][-3000:])
            if prompts and all(re.search(r"\[\d+\]", p) for p in prompts):
                return
            if prompts and not any("*" in p for p in prompts) and any(re.search(r"\[\d+\]", p) for p in prompts):
                time.sleep(2)  # between two cells, or stopped: look again before deciding
                prompts = self.page.eval_on_selector_all(f"{SHOWN} .jp-CodeCell .jp-InputArea-prompt",
                                                         "els => els.map(e => e.textContent)")
                if not any("*" in p for p in prompts) and not all(re.search(r"\[\d+\]", p) for p in prompts):
                    raise AssertionError(f"the run stopped before the end: {prompts}")
            time.sleep(1)
        raise AssertionError(f"not every cell ran within {RUN_ALL_TIMEOUT_S} s")

    def run_to_panel(self, control: str):
        """Run every cell, then the first widget panel holding ``control`` (a CSS selector),
        scrolled into view once its figure is drawn."""
        self.run_all()
        panel = self.page.locator(f".widget-vbox:has({control})").first
        panel.scroll_into_view_if_needed()
        panel.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        return panel

    def assert_no_errors(self) -> None:
        """No error output, no widget error and no console error so far."""
        shown = self.errors_shown()
        assert not shown, shown
        assert not self.errors, self.errors

    def errors_shown(self) -> list[str]:
        """Error outputs and widget errors on the page."""
        return self.page.eval_on_selector_all(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], .jupyter-widgets-error-widget,"
            " .jp-OutputArea-output.jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
            "els => els.map(e => e.textContent.slice(0, 300))")


def plot_state(panel) -> dict:
    """The title and the last trace's y values (the slider's tau; a reference trace comes
    first) of the plotly figure inside ``panel``."""
    return panel.locator(".js-plotly-plot").first.evaluate(
        "el => ({title: el.layout.title && el.layout.title.text, y: Array.from(el.data[el.data.length - 1].y || []),"
        " yaxis: el.layout.yaxis.type})")


def set_slider(panel, value: float) -> None:
    """Type a value into the slider's readout, as a person can, and commit it with Enter."""
    readout = panel.locator(".widget-readout").first
    readout.click()
    readout.press("Control+a")
    readout.type(f"{value:.2f}")
    readout.press("Enter")


def wait_for_change(panel, before: dict, timeout_s: float = 30.0) -> dict:
    """The figure's state once it differs from ``before`` (the output area redraws the plot
    as a new element, so it is looked up afresh each time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = plot_state(panel)
        if state != before:
            return state
        time.sleep(0.25)
    raise AssertionError(f"the figure did not change within {timeout_s} s: {before}")


def test_notebook_01_tau_slider(browser, lab):
    nb = Page(browser, lab, "01_temperature_and_distributions.ipynb")
    panel = nb.run_to_panel(".widget-slider")
    before = plot_state(panel)
    set_slider(panel, 1.7)
    after = wait_for_change(panel, before)
    assert after["y"] != before["y"]
    assert max(after["y"]) < max(before["y"]), "a hotter tau flattens the distribution: its top bar falls"
    assert "1.70" in (after["title"] or ""), f"the figure names the new tau: {after['title']!r}"
    panel.locator(".widget-checkbox input").first.check()
    logged = wait_for_change(panel, after)
    assert logged["yaxis"] == "log" and logged["y"] == after["y"]
    nb.assert_no_errors()


def test_notebook_02_overlap_explorer(browser, lab):
    nb = Page(browser, lab, "02_knowledge_distillation.ipynb")
    panel = nb.run_to_panel(".widget-dropdown")
    before = plot_state(panel)
    assert "τ = 1.00" in before["title"] and "α = Σ min(p, q)" in before["title"]
    set_slider(panel, 1.9)
    hot = wait_for_change(panel, before)
    assert "τ = 1.90" in hot["title"] and hot["y"] != before["y"]
    select = panel.locator(".widget-dropdown select").first
    options = select.locator("option").all_text_contents()
    assert len(options) >= 2, options
    select.select_option(label=options[1])
    other = wait_for_change(panel, hot)
    assert options[1].replace("\xa0", " ") in other["title"], other["title"]  # the drop-down shows spaces as nbsp
    nb.assert_no_errors()
