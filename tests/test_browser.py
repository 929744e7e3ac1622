"""In a real browser: the course's widgets render as controls, respond, and survive save and reopen.

For one notebook of each widget kind (01: ``quadratic_explorer``; 04: ``schedule_explorer``;
10: ``sharpness_explorer``), built with its solutions, this serves a temporary folder with
``bin/lab`` (the course's settings; loopback only, a free port, a random token, its own
workspaces and user settings),
opens the notebook in headless Chromium and:

1. runs every cell (quick mode), and checks that no cell raised, that plots appear, and that
   the widgets are controls (a slider or dropdown), not "Error displaying widget",
   "Loading widget..." or their text form ``VBox(children=...)``;
2. moves the first slider with the keyboard and checks that the plot image changes;
3. saves, shuts the kernel down, checks that the file holds the widget state, then reopens
   it in JupyterLab and in Notebook 7 (``/notebooks/...``) and checks the same again.

The browser is the system's Chromium (Debian's ``chromium``: ``bin/setup-browser``, run by
``bin/test``, installs it as root), driven by the pinned ``playwright`` through
``executable_path``; ``playwright install`` (a browser download) is never run. Without
Chromium the test is skipped, saying how to install it; in CI it fails instead.

Screenshots of each step go to ``tests/screenshots/`` (git-ignored), for a person to look at
what the test saw: ``NN-topic-1-ran.png``, ``-2-moved.png``, ``-3-lab-reopened.png``,
``-4-notebook7-reopened.png`` (and ``-failed-*.png`` when a check fails).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from lrgrade.notebooks import build_notebook, source_path, write_notebook

pytestmark = pytest.mark.slow

# One notebook per kind of explorer: a log slider (01), a dropdown with sliders (04), a
# selection slider over trained runs (10).
NOTEBOOKS = ["01-why-lr-matters", "04-warmup", "10-sharpness-and-warmup"]
SCREENSHOTS = ROOT / "tests" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
# Bounded waits (seconds), generous for a busy 2-core machine.
SERVER_START_S, PAGE_LOAD_S, RUN_ALL_S, WIDGETS_S, REDRAW_S, SAVE_S = 180, 120, 600, 90, 60, 60

# What the outputs of the open notebook show: widget errors, placeholders, text forms of
# widgets, controls and images. Only outputs are read (the notebook's prose could quote them).
OUTPUT_STATE_JS = """() => {
  const outputs = Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'));
  const text = outputs.map(o => o.textContent).join('\\n');
  const count = re => (text.match(re) || []).length;
  const within = sel => outputs.reduce((n, o) => n + o.querySelectorAll(sel).length, 0);
  return {
    widget_errors: count(/Error displaying widget/g),
    loading_widget: count(/Loading widget/g),
    widget_as_text: count(/[HV]Box\\(children/g),
    controls: within('.widget-slider, .widget-dropdown'),
    images: within('img'),
    notebook: !!document.querySelector('.jp-Notebook'),
  };
}"""
# For a screenshot: the first widget's plot at the bottom of the window, its controls above
# it; without a control, the first widget error or placeholder.
SCROLL_TO_WIDGET_JS = r"""() => {
  const outputs = Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'));
  const control = outputs.find(o => o.querySelector('.widget-slider, .widget-dropdown'));
  if (control) {
    const images = control.closest('.jp-CodeCell').querySelectorAll('.jp-OutputArea-output img');
    (images.length ? images[images.length - 1] : control).scrollIntoView({block: 'end'});
    return;
  }
  const bad = outputs.find(o => /Error displaying widget|Loading widget|[HV]Box\(children/.test(o.textContent));
  if (bad) bad.scrollIntoView({block: 'center'});
}"""
# The notebook panel JupyterLab shows, once its kernel is idle (window.jupyterapp is exposed
# by --LabApp.expose_app_in_browser).
KERNEL_IDLE_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(kernel && kernel.status === 'idle' && w.context.isReady && document.querySelector('.jp-Notebook'));
}"""
# Errors in the notebook's cells, from its model: "ename: evalue" each.
CELL_ERRORS_JS = """() => {
  const model = window.jupyterapp.shell.currentWidget.content.model, errors = [];
  for (const cell of model.cells) {
    if (cell.type !== 'code') continue;
    for (const out of cell.outputs.toJSON()) {
      if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
    }
  }
  return errors;
}"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server started with bin/lab on a folder of solved notebooks."""

    def __init__(self, folder: Path):
        self.folder, self.notebooks = folder, folder / "notebooks"
        for a in NOTEBOOKS:
            write_notebook(build_notebook(source_path(a), a), self.notebooks / f"{a}.ipynb")
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        # No news prompt over the notebook in the screenshots, and no update check (no network).
        notification = folder / "user-settings" / "@jupyterlab" / "apputils-extension"
        notification /= "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.log = folder / "jupyter-server.log"
        env = dict(os.environ, LRCOURSE_QUICK="1",  # short experiments, whatever CI says
                   JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                   # fresh workspaces (a restored workspace reopens other notebooks) and user
                   # settings: the course's settings (.venv, from bin/setup) apply, not yours
                   JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
                   JUPYTERLAB_SETTINGS_DIR=str(folder / "user-settings"))
        # Not grading (the explorers would draw a static plot, no widget), and the kernel
        # picks its own inline plotting backend (conftest sets Agg for the test process).
        for var in ("NBGRADER_EXECUTION", "MPLBACKEND"):
            env.pop(var, None)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [str(ROOT / "bin" / "lab"), "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={self.port}",
                 "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                 "--LabApp.expose_app_in_browser=True",
                 # a folder given by position replaces bin/lab's course/ (a second root_dir is refused)
                 str(self.notebooks)],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def page_url(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"bin/lab exited with code {self.proc.returncode} before answering; its log:\n"
                            f"{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(1)
        pytest.fail(f"bin/lab did not answer on {self.url} within {SERVER_START_S} s; its log:\n{self.log_tail()}")

    def shut_down_kernels(self) -> None:
        """Close every session (and so its kernel), and wait until no kernel is left."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")
        deadline = time.monotonic() + 60
        while self.api("/api/kernels") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not self.api("/api/kernels"), "kernels still running 60 s after their sessions were closed"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.shut_down_kernels()
            except Exception:  # noqa: BLE001 - the server is stopped below whatever happened
                pass
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        how = ("Chromium is not installed (neither chromium nor chromium-browser is on PATH): run "
               "bin/setup-browser (as root on Debian it installs Debian's chromium package), or "
               "'sudo apt-get install chromium'")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{how}; in CI the browser test must run (bin/test runs bin/setup-browser)")
        pytest.skip(how)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    server = Lab(tmp_path_factory.mktemp("browser"))
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # The system's Chromium: playwright never downloads one. --no-sandbox: CI runs as root.
        b = p.chromium.launch(executable_path=chromium, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


class Visit:
    """One browser page on the server, with what the page reported and screenshots."""

    def __init__(self, browser, lab: Lab, assignment: str, url: str, label: str):
        self.lab, self.assignment, self.label = lab, assignment, label
        self.page = browser.new_page(viewport=VIEWPORT)
        self.page.set_default_timeout(30_000)
        self.page_errors: list[str] = []
        self.page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        self.page.goto(lab.page_url(url), timeout=PAGE_LOAD_S * 1000)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.assignment}-{name}.png"
        try:  # twice: cells drawn as they scroll into view shift the layout
            for _ in range(2):
                self.page.evaluate(SCROLL_TO_WIDGET_JS)
                self.page.wait_for_timeout(500)
        except Exception:  # noqa: BLE001 - a screenshot of wherever the page is, then
            pass
        self.page.screenshot(path=str(path))
        return path

    def fail(self, message: str) -> None:
        shot = self.screenshot("failed-" + self.label.lower().replace(" ", "-"))
        details = f"\npage errors: {self.page_errors[-5:]}" if self.page_errors else ""
        pytest.fail(f"{self.assignment} ({self.label}): {message}{details}\nscreenshot: {shot}\n"
                    f"server log (end):\n{self.lab.log_tail(1500)}")

    def state(self) -> dict:
        return self.page.evaluate(OUTPUT_STATE_JS)

    def wait_for(self, js: str, seconds: float, what, arg=None) -> None:
        """Wait until ``js`` is true in the page, or fail saying ``what`` (a string, or a
        function that returns one when it is needed) did not happen."""
        try:
            self.page.wait_for_function(js, arg=arg, timeout=seconds * 1000, polling=500)
        except Exception as err:  # noqa: BLE001 - playwright's TimeoutError, or the page went away
            what = what() if callable(what) else what
            self.fail(f"{what} did not happen within {seconds:.0f} s ({type(err).__name__})")

    def widgets_settled(self) -> dict:
        """Wait until the outputs show controls and no placeholder (or a widget error); the state."""
        deadline, state = time.monotonic() + WIDGETS_S, {}
        while time.monotonic() < deadline:
            state = self.state()
            if state["widget_errors"] or (state["controls"] and not state["loading_widget"]):
                self.page.wait_for_timeout(1000)  # let the other widgets finish too
                return self.state()
            self.page.wait_for_timeout(500)
        return state

    def check_widgets(self, state: dict) -> None:
        problems = []
        if state["widget_errors"]:
            problems.append(f"{state['widget_errors']} 'Error displaying widget'")
        if state["loading_widget"]:
            problems.append(f"{state['loading_widget']} 'Loading widget...' still shown after {WIDGETS_S} s")
        if state["widget_as_text"]:
            problems.append(f"{state['widget_as_text']} widgets shown as text (HBox(children=...))")
        if not state["controls"]:
            problems.append("no widget control (slider or dropdown) in the outputs")
        if not state["images"]:
            problems.append("no plot image in the outputs")
        if problems:
            self.fail("; ".join(problems) + f" (state: {state})")

    def close(self) -> None:
        self.page.close()


def _run_all_and_move_a_slider(browser, lab: Lab, assignment: str) -> None:
    visit = Visit(browser, lab, assignment, f"/lab/workspaces/run-{assignment}/tree/{assignment}.ipynb", "run")
    try:
        visit.wait_for(KERNEL_IDLE_JS, PAGE_LOAD_S, "the notebook opening with an idle kernel")
        print(f"{assignment}: opened, kernel idle")
        visit.page.evaluate("""() => {
          window.__lrRun = 'running';
          window.jupyterapp.commands.execute('notebook:run-all-cells').then(
            ok => { window.__lrRun = ok ? 'ok' : 'failed'; }, err => { window.__lrRun = 'error: ' + err; });
        }""")
        started = time.monotonic()
        visit.wait_for("() => window.__lrRun !== 'running'", RUN_ALL_S, "running all cells")
        outcome, errors = visit.page.evaluate("window.__lrRun"), visit.page.evaluate(CELL_ERRORS_JS)
        if outcome != "ok" or errors:
            visit.fail(f"running all cells: {outcome}; cell errors: {errors}")
        print(f"{assignment}: all cells ran in {time.monotonic() - started:.0f} s")
        visit.check_widgets(visit.widgets_settled())
        visit.screenshot("1-ran")

        # Move the first slider with the keyboard, as a person would; its plot must change.
        cell = visit.page.locator(".jp-CodeCell", has=visit.page.locator(".jp-OutputArea-output .widget-slider")).first
        handle = cell.locator(".widget-slider .noUi-handle").first
        readout = cell.locator(".widget-slider .widget-readout").first
        image = cell.locator(".jp-OutputArea-output img").first
        before_src, before_value = image.get_attribute("src"), readout.text_content()
        handle.scroll_into_view_if_needed()
        handle.focus()
        for key in ("ArrowLeft", "ArrowRight"):  # right only if the slider started at its left end
            for _ in range(8):
                visit.page.keyboard.press(key)
                visit.page.wait_for_timeout(100)
            visit.page.wait_for_timeout(300)
            if readout.text_content() != before_value:
                break
        visit.wait_for("""([cell, before]) => {
          const img = cell.querySelector('.jp-OutputArea-output img');
          return !!img && img.complete && img.getAttribute('src') !== before;
        }""", REDRAW_S, lambda: (f"the plot redrawing after the slider moved (its readout: {before_value!r} "
                                 f"before, {readout.text_content()!r} now)"), arg=[cell.element_handle(), before_src])
        assert readout.text_content() != before_value, "the plot changed but the slider's readout did not"
        visit.wait_for(KERNEL_IDLE_JS, REDRAW_S, "the kernel finishing the redraws")
        visit.check_widgets(visit.widgets_settled())
        visit.screenshot("2-moved")

        visit.page.evaluate("""() => {
          window.__lrSave = 'saving';
          window.jupyterapp.commands.execute('docmanager:save').then(
            () => { window.__lrSave = 'saved'; }, err => { window.__lrSave = 'error: ' + err; });
        }""")
        visit.wait_for("""() => window.__lrSave !== 'saving'
                          && !window.jupyterapp.shell.currentWidget.context.model.dirty""",
                       SAVE_S, "saving the notebook")
        assert visit.page.evaluate("window.__lrSave") == "saved", visit.page.evaluate("window.__lrSave")
    finally:
        visit.close()


def _check_saved_file(lab: Lab, assignment: str) -> None:
    nb = json.loads((lab.notebooks / f"{assignment}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "the saved notebook has code cells that did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"the saved notebook has errors: {[(o['ename'], o['evalue']) for o in errors]}"
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    assert state, ("the saved notebook holds no widget state: is saveState set (lrcourse/jupyter_overrides.json, "
                   "copied by bin/setup to .venv/share/jupyter/lab/settings/overrides.json)?")


def _reopen(browser, lab: Lab, assignment: str, url: str, label: str, shot: str) -> None:
    visit = Visit(browser, lab, assignment, url, label)
    try:
        visit.wait_for("() => !!document.querySelector('.jp-Notebook .jp-Cell')", PAGE_LOAD_S,
                       "the saved notebook opening")
        visit.check_widgets(visit.widgets_settled())
        visit.screenshot(shot)
    finally:
        visit.close()


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_widgets_work_in_a_browser_and_survive_reopening(lab, browser, assignment):
    started = time.monotonic()

    def took(step: str) -> None:  # shown with a failure (or with -s): where the time went
        print(f"{assignment}: {step} done at {time.monotonic() - started:.0f} s")

    try:
        _run_all_and_move_a_slider(browser, lab, assignment)
        took("run, slider, save")
        lab.shut_down_kernels()
        _check_saved_file(lab, assignment)
        _reopen(browser, lab, assignment, f"/lab/workspaces/reopen-{assignment}/tree/{assignment}.ipynb",
                "JupyterLab reopened", "3-lab-reopened")
        took("reopened in JupyterLab")
        _reopen(browser, lab, assignment, f"/notebooks/{assignment}.ipynb", "Notebook 7 reopened",
                "4-notebook7-reopened")
        took("reopened in Notebook 7")
    finally:
        lab.shut_down_kernels()
