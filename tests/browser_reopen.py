"""Manual browser check: does a saved, reopened notebook show its widgets?

Runs a notebook in JupyterLab (from the course's .venv, with its settings), saves it,
shuts the kernel down, reopens it in JupyterLab and in Notebook 7, and counts
"Error displaying widget" messages and the widget controls shown. Not part of `bin/test`
(it needs a browser): Debian's `chromium` (apt) and `playwright` from PyPI, in any Python:

    python tests/browser_reopen.py /path/to/folder notebook.ipynb

The folder is served as JupyterLab's root; screenshots are written next to the notebook.
Measured for notebook 01 (built from solutions/): without the settings file,
1 widget error after reopening; with it, 0 errors and the slider and plot shown.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
FOLDER, NB = Path(sys.argv[1]).resolve(), sys.argv[2]
PORT = 8911
env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:" + os.environ["PATH"])
server = subprocess.Popen(["jupyter", "lab", "--no-browser", f"--port={PORT}", "--allow-root",
                           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={FOLDER}",
                           "--LabApp.expose_app_in_browser=True"], env=env,
                          stdout=open(FOLDER / "jupyter-server.log", "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://localhost:{PORT}/api/status"); break
        except Exception:
            time.sleep(0.5)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://localhost:{PORT}/lab/tree/{NB}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=120000)
        for _ in range(240):  # the kernel has started and is idle
            ks = json.load(urllib.request.urlopen(f"http://localhost:{PORT}/api/kernels"))
            if ks and all(k["execution_state"] == "idle" for k in ks):
                break
            time.sleep(0.5)
        page.wait_for_timeout(1000)
        t = time.time()
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # wait until the last code cell has an execution count, and nothing is running
        page.wait_for_function("""(() => { const p = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'));
            return p.length && /\[\d+\]/.test(p[p.length - 1].textContent) && !p.some(e => e.textContent.includes('*')); })()""",
            timeout=600000, polling=1000)
        print(f"ran in {time.time() - t:.0f} s")
        live_errors = page.locator("text=Error displaying widget").count()
        sliders = page.locator(".widget-slider, .widget-dropdown").count()
        print("live: widget errors", live_errors, "controls", sliders)
        page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_timeout(3000)
        page.evaluate("window.jupyterapp.commands.execute('kernelmenu:shutdown')")
        page.wait_for_timeout(2000)
        page.close()
        saved = json.loads((FOLDER / NB).read_text())
        print("saved widget state in metadata:", "widgets" in saved["metadata"],
              "models:", len(saved["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})))
        for url in (f"/lab/tree/{NB}", f"/notebooks/{NB}"):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://localhost:{PORT}{url}")
            page.wait_for_selector(".jp-Notebook", timeout=120000)
            page.wait_for_timeout(8000)
            # scroll through so lazily rendered outputs render
            for _ in range(40):
                page.mouse.wheel(0, 2000)
                page.wait_for_timeout(150)
            errors = page.locator("text=Error displaying widget").count()
            controls = page.locator(".widget-slider, .widget-dropdown").count()
            print(f"reopened {url}: widget errors {errors}, controls shown {controls}")
            w = page.locator(".widget-slider, .widget-dropdown").first
            if w.count():
                w.scroll_into_view_if_needed(); page.wait_for_timeout(500)
            page.screenshot(path=str(FOLDER / f"{NB}-{url.split('/')[1]}.png"))
            page.close()
        browser.close()
finally:
    server.terminate()
